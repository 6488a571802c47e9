"""A loopback Hugging Face Hub for the tests: the HTTP endpoints that `huggingface_hub` and `transformers` use to push
and load model repositories (REFERENCE.md §8), served by the standard library on 127.0.0.1.

Repositories live in memory as commits (path -> stored file) on named branches; file contents live in a temporary
directory, addressed by their sha256. Every request is appended to `HubServer.requests`, and every commit keeps the
kind of each operation it received (`file` = regular upload, `lfsFile` = uploaded through the LFS batch API), so
tests can see how each file travelled.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

USER = "loopback-user"
# What the Hub writes into every new repository: which file patterns git stores through LFS.
GITATTRIBUTES = "".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text\n"
    for pattern in ("*.safetensors", "*.bin", "*.pt", "*.pth", "*.ckpt", "*.h5", "*.onnx", "*.npy", "*.zip", "*.gz")
)
LFS_MIN_SIZE = 10 * 1024 * 1024
NAME = re.compile(r"^(?!.*(--|\.\.))[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


class HubError(Exception):
    """An error response: HTTP status, `X-Error-Code` header (RepoNotFound, RevisionNotFound, ...) and message."""

    def __init__(self, status: int, message: str, code: str | None = None, **extra: Any):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    size: int
    lfs: bool
    git_oid: str  # git blob id: of the content for a regular file, of the LFS pointer for an LFS file

    @staticmethod
    def lfs_pointer(sha256: str, size: int) -> bytes:
        return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def git_blob_id(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class Commit:
    oid: str
    message: str
    files: dict[str, StoredFile]
    operations: dict[str, str] = field(default_factory=dict)  # path -> key of its NDJSON line ("file", "lfsFile", ...)


@dataclass
class Repo:
    repo_id: str
    private: bool
    regular_only: bool
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit:
        oid = self.branches.get(revision, revision)
        if oid not in self.commits:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return self.commits[oid]


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    status: int
    client: str


class HubServer:
    """The loopback Hub. `start()` binds 127.0.0.1 on an ephemeral port; `url` is the value for HF_ENDPOINT."""

    def __init__(self, storage: Path):
        self.storage = storage
        self.storage.mkdir(parents=True, exist_ok=True)
        self.repos: dict[str, Repo] = {}
        self.requests: list[LoggedRequest] = []
        self.regular_only: set[str] = set()  # repo ids whose preupload answers "regular" for every file
        self._lock = threading.RLock()
        self._counter = 0
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.hub = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    # ---- storage ---------------------------------------------------------------------------------------------------

    def _object(self, sha256: str) -> Path:
        return self.storage / sha256

    def _store(self, content: bytes) -> str:
        sha256 = hashlib.sha256(content).hexdigest()
        self._object(sha256).write_bytes(content)
        return sha256

    def read(self, stored: StoredFile) -> bytes:
        return self._object(stored.sha256).read_bytes()

    def head(self, repo_id: str, revision: str = "main") -> Commit:
        """The commit that `revision` of `repo_id` points to (for the tests' own checks)."""
        return self.repos[repo_id].resolve(revision)

    def repo(self, repo_id: str, authorized: bool = True) -> Repo:
        repo = self.repos.get(repo_id)
        if repo is None or (repo.private and not authorized):
            raise HubError(404 if repo is None else 401, "Repository not found", "RepoNotFound")
        return repo

    def commit(self, repo: Repo, branch: str, message: str, lines: list[dict[str, Any]]) -> Commit:
        """Applies NDJSON operation lines on top of `branch` (an empty tree for a new repo); returns the new commit."""
        with self._lock:
            parent = repo.resolve(branch) if repo.branches else Commit("", "", {})
            files = dict(parent.files)
            operations = {}
            for line in lines:
                key, value = line["key"], line["value"]
                path = value["path"]
                if key == "file":
                    content = base64.b64decode(value["content"])
                    files[path] = StoredFile(self._store(content), len(content), False, git_blob_id(content))
                elif key == "lfsFile":
                    sha256 = value["oid"]
                    if not self._object(sha256).exists():
                        raise HubError(400, f"LFS object {sha256} of {path} was not uploaded")
                    size = self._object(sha256).stat().st_size
                    pointer = StoredFile.lfs_pointer(sha256, size)
                    files[path] = StoredFile(sha256, size, True, git_blob_id(pointer))
                elif key == "deletedFile":
                    if files.pop(path, None) is None:
                        raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                elif key == "deletedFolder":
                    prefix = path.rstrip("/") + "/"
                    files = {p: f for p, f in files.items() if not p.startswith(prefix)}
                else:
                    raise HubError(400, f"unknown commit operation {key!r}")
                operations[path] = key
            self._counter += 1
            oid = hashlib.sha1(f"{repo.repo_id}:{parent.oid}:{self._counter}:{message}".encode()).hexdigest()
            commit = Commit(oid, message, files, operations)
            repo.commits[oid] = commit
            repo.branches[branch] = oid
            return commit

    def create_repo(self, repo_id: str, private: bool) -> Repo:
        with self._lock:
            if repo_id in self.repos:
                raise HubError(409, "You already created this model repo", url=f"{self.url}/{repo_id}")
            repo = Repo(repo_id, private, repo_id in self.regular_only)
            content = GITATTRIBUTES.encode()
            initial = [{"key": "file", "value": {"path": ".gitattributes", "content": base64.b64encode(content)}}]
            self.commit(repo, "main", "initial commit", initial)
            self.repos[repo_id] = repo
            return repo

    def upload_mode(self, repo: Repo, commit: Commit, path: str, sample: bytes, size: int) -> str:
        if repo.regular_only:
            return "regular"
        attributes = commit.files.get(".gitattributes")
        patterns = [] if attributes is None else self.read(attributes).decode().splitlines()
        lfs_patterns = [line.split()[0] for line in patterns if "filter=lfs" in line]
        name = PurePosixPath(path).name
        if any(fnmatch.fnmatch(name, pattern) for pattern in lfs_patterns) or b"\0" in sample or size >= LFS_MIN_SIZE:
            return "lfs"
        return "regular"


def _front_matter(content: str) -> tuple[Any, list[str]]:
    """The YAML metadata block of a README.md and the errors found in it."""
    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", content, flags=re.DOTALL)
    if match is None:
        return None, []
    try:
        metadata = yaml.safe_load(match.group(1))
    except yaml.YAMLError as error:
        return None, [f"Invalid YAML in the metadata block: {error}"]
    if metadata is not None and not isinstance(metadata, dict):
        return None, ["The metadata block must be a YAML mapping"]
    return metadata, []


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the clients expect

    def log_message(self, format: str, *args: Any) -> None:  # silence the default stderr log
        pass

    @property
    def hub(self) -> HubServer:
        return self.server.hub  # type: ignore[attr-defined]

    # ---- plumbing --------------------------------------------------------------------------------------------------

    def _body(self) -> bytes:
        """The whole request body (always read, so that the connection can be reused)."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                chunk = self.rfile.read(size + 2)[:size]
                if size == 0:
                    break
                chunks.append(chunk)
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        headers = {"Content-Length": str(len(body)), **(headers or {})}
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self._status = status

    def _json(self, payload: Any, status: int = 200, content_type: str = "application/json") -> None:
        self._send(status, json.dumps(payload).encode(), {"Content-Type": content_type})

    def _authorized(self) -> bool:
        return self.headers.get("Authorization", "").startswith("Bearer ")

    def _require_token(self) -> None:
        if not self._authorized():
            raise HubError(401, "Invalid username or password.")

    def _dispatch(self) -> None:
        self._status = 500
        url = urlsplit(self.path)
        segments = [unquote(part) for part in url.path.strip("/").split("/")]
        query = parse_qs(url.query)
        body = self._body()
        try:
            self._route(segments, query, body)
        except HubError as error:
            headers = {"Content-Type": "application/json", "X-Error-Message": error.message}
            if error.code:
                headers["X-Error-Code"] = error.code
            self._send(error.status, json.dumps({"error": error.message, **error.extra}).encode(), headers)
        finally:
            with self.hub._lock:
                self.hub.requests.append(LoggedRequest(self.command, self.path, self._status, self.client_address[0]))

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _dispatch

    # ---- routes ----------------------------------------------------------------------------------------------------

    def _route(self, s: list[str], query: dict[str, list[str]], body: bytes) -> None:
        method = self.command
        if method == "POST" and s == ["api", "repos", "create"]:
            return self._create_repo(json.loads(body))
        if method == "POST" and s == ["api", "validate-yaml"]:
            return self._validate_yaml(json.loads(body))
        if method == "GET" and s == ["api", "whoami-v2"]:
            self._require_token()
            return self._json({"type": "user", "name": USER, "orgs": []})
        if len(s) >= 4 and s[:2] == ["api", "models"]:
            repo = self.hub.repo(f"{s[2]}/{s[3]}", self._authorized())
            return self._repo_api(method, repo, s[4:], query, body)
        if method == "PUT" and len(s) == 2 and s[0] == "_lfs":
            return self._lfs_upload(s[1], body)
        if method == "POST" and len(s) == 3 and s[0] == "_lfs" and s[2] == "verify":
            return self._lfs_verify(json.loads(body))
        if method == "POST" and len(s) == 6 and s[1].endswith(".git") and s[2:] == ["info", "lfs", "objects", "batch"]:
            self._require_token()
            self.hub.repo(f"{s[0]}/{s[1][: -len('.git')]}")
            return self._lfs_batch(json.loads(body))
        if method in ("GET", "HEAD") and len(s) >= 5 and s[2] == "resolve":
            repo = self.hub.repo(f"{s[0]}/{s[1]}", self._authorized())
            return self._resolve(repo, s[3], "/".join(s[4:]))
        raise HubError(404, f"no route for {method} {self.path}")

    def _create_repo(self, payload: dict[str, Any]) -> None:
        self._require_token()
        namespace, name = payload.get("organization") or USER, payload["name"]
        if not (NAME.match(namespace) and NAME.match(name)) or name.endswith(".git"):
            raise HubError(400, f"Invalid repo name {namespace}/{name}")
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        repo = self.hub.create_repo(f"{namespace}/{name}", private)
        self._json({"url": f"{self.hub.url}/{repo.repo_id}", "name": repo.repo_id})

    def _validate_yaml(self, payload: dict[str, Any]) -> None:
        metadata, errors = _front_matter(payload["content"])
        warnings = [] if metadata else [{"message": "empty or missing yaml metadata in repo card"}]
        self._json({"errors": [{"message": e} for e in errors], "warnings": warnings}, 400 if errors else 200)

    def _repo_api(self, method: str, repo: Repo, s: list[str], query: dict[str, list[str]], body: bytes) -> None:
        if method == "GET" and (not s or s[0] == "revision"):
            return self._info(repo, repo.resolve(s[1] if s else "main"))
        if method == "GET" and s[0] == "tree":
            recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
            return self._tree(repo.resolve(s[1]), "/".join(s[2:]), recursive)
        if method == "GET" and s == ["refs"]:
            branches = [
                {"name": name, "ref": f"refs/heads/{name}", "targetCommit": oid} for name, oid in repo.branches.items()
            ]
            return self._json({"branches": branches, "tags": [], "converts": []})
        self._require_token()
        if method == "POST" and s[0] == "branch":
            return self._create_branch(repo, "/".join(s[1:]), json.loads(body or b"{}"))
        if method == "POST" and s[0] == "preupload":
            return self._preupload(repo, repo.resolve("/".join(s[1:])), json.loads(body))
        if method == "POST" and s[0] == "commit":
            if "create_pr" in query:
                raise HubError(400, "pull requests are not implemented by the loopback Hub")
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
            header, operations = lines[0], lines[1:]
            commit = self.hub.commit(repo, "/".join(s[1:]), header["value"]["summary"], operations)
            url = f"{self.hub.url}/{repo.repo_id}/commit/{commit.oid}"
            return self._json({"commitOid": commit.oid, "commitUrl": url, "pullRequestUrl": None})
        raise HubError(404, f"no route for {method} {self.path}")

    def _info(self, repo: Repo, commit: Commit) -> None:
        namespace = repo.repo_id.split("/")[0]
        self._json(
            {
                "_id": repo.repo_id,
                "id": repo.repo_id,
                "modelId": repo.repo_id,
                "author": namespace,
                "sha": commit.oid,
                "private": repo.private,
                "disabled": False,
                "gated": False,
                "tags": [],
                "siblings": [{"rfilename": path} for path in sorted(commit.files)],
            }
        )

    def _tree(self, commit: Commit, folder: str, recursive: bool) -> None:
        prefix = f"{folder.rstrip('/')}/" if folder else ""
        entries, folders = [], set()
        for path, stored in sorted(commit.files.items()):
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix) :]
            if "/" in rest and not recursive:
                folders.add(prefix + rest.split("/")[0])
                continue
            entry = {"type": "file", "path": path, "size": stored.size, "oid": stored.git_oid}
            if stored.lfs:
                pointer = StoredFile.lfs_pointer(stored.sha256, stored.size)
                entry["lfs"] = {"oid": stored.sha256, "size": stored.size, "pointerSize": len(pointer)}
            entries.append(entry)
        if folder and not entries and not folders:
            raise HubError(404, f"{folder} does not exist", "EntryNotFound")
        entries += [{"type": "directory", "path": path, "oid": git_blob_id(path.encode())} for path in sorted(folders)]
        self._json(entries)

    def _create_branch(self, repo: Repo, branch: str, payload: dict[str, Any]) -> None:
        with self.hub._lock:
            if branch in repo.branches:
                raise HubError(409, f"Reference already exists: refs/heads/{branch}")
            repo.branches[branch] = repo.resolve(payload.get("startingPoint", "main")).oid
        self._json({})

    def _preupload(self, repo: Repo, commit: Commit, payload: dict[str, Any]) -> None:
        files = []
        for file in payload["files"]:
            sample = base64.b64decode(file["sample"])
            mode = self.hub.upload_mode(repo, commit, file["path"], sample, file["size"])
            existing = commit.files.get(file["path"])
            oid = None if existing is None else existing.sha256 if mode == "lfs" else existing.git_oid
            files.append({"path": file["path"], "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        self._json({"files": files, "commitOid": commit.oid})

    def _lfs_batch(self, payload: dict[str, Any]) -> None:
        if payload.get("operation") != "upload":
            raise HubError(400, "only LFS uploads are implemented by the loopback Hub")
        objects = []
        for obj in payload["objects"]:
            answer = {"oid": obj["oid"], "size": obj["size"]}
            if not self.hub._object(obj["oid"]).exists():
                answer["authenticated"] = True
                answer["actions"] = {
                    "upload": {"href": f"{self.hub.url}/_lfs/{obj['oid']}"},
                    "verify": {"href": f"{self.hub.url}/_lfs/{obj['oid']}/verify"},
                }
            objects.append(answer)
        self._json({"transfer": "basic", "objects": objects}, content_type="application/vnd.git-lfs+json")

    def _lfs_upload(self, oid: str, body: bytes) -> None:
        if hashlib.sha256(body).hexdigest() != oid:
            raise HubError(400, f"uploaded content does not match sha256 {oid}")
        self.hub._store(body)
        self._send(200)

    def _lfs_verify(self, payload: dict[str, Any]) -> None:
        stored = self.hub._object(payload["oid"])
        if not stored.exists() or stored.stat().st_size != payload["size"]:
            raise HubError(404, f"LFS object {payload['oid']} was not uploaded")
        self._json({})

    def _resolve(self, repo: Repo, revision: str, path: str) -> None:
        commit = repo.resolve(revision)
        stored = commit.files.get(path)
        if stored is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound")
        headers = {"X-Repo-Commit": commit.oid, "Content-Length": str(stored.size), "Accept-Ranges": "bytes"}
        if stored.lfs:
            headers.update({"ETag": f'"{stored.sha256}"', "X-Linked-Etag": f'"{stored.sha256}"'})
            headers["X-Linked-Size"] = str(stored.size)
        else:
            headers["ETag"] = f'"{stored.git_oid}"'
        content = b"" if self.command == "HEAD" else self.hub.read(stored)
        self._send(200, content, headers)
