"""Fixtures shared by the tests: the loopback Hugging Face Hub of tests/hub_server.py and a tiny checkpoint."""

import os
from collections.abc import Iterator
from pathlib import Path

# One thread per process (this one and the scripts it starts): on a shared 2-core machine torch's default two threads
# ran 10-30x slower under outside load. Tests measure results, never speed, so nothing depends on the thread count.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
from hub_server import HubServer
from tiny import save_tiny_checkpoint


@pytest.fixture(scope="module")
def hub_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubServer]:
    """A loopback Hub on 127.0.0.1 (ephemeral port), storage in a temporary directory; stopped after the module."""
    server = HubServer(tmp_path_factory.mktemp("hub_storage")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny one-channel TTM (context 32, horizon 8; see tests/tiny.py), one per test module."""
    path = tmp_path_factory.mktemp("tiny-ttm")
    save_tiny_checkpoint(path)
    return path
