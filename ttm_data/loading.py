"""CSV / parquet files to the long-series layout of the Hub's time-series datasets.

One row per series: `target` (1-D for one target column, else channels x time), `start`, `freq`, `item_id` (with an
id column), `feat_dynamic_real` (exogenous channels x time) and `feat_static_cat` (integer codes). Every series is
laid on a regular grid of `freq`; a missing timestamp becomes NaN (unobserved). The column roles and category
vocabularies travel in `dataset.info.description` (see `series_schema`).
"""

from __future__ import annotations

import datetime
import difflib
import json
import logging
import re
import warnings
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from datasets import Dataset, DatasetInfo, Features, List, Value
from pandas.tseries.offsets import BaseOffset, Day

from .frequency import MOST, fixed_step, grid_positions, infer_offset, parse_freq

logger = logging.getLogger(__name__)

_CSV_SUFFIXES = (".csv", ".tsv", ".txt")
_COMPRESSIONS = ("", ".gz", ".bz2", ".zip", ".xz", ".zst")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_MAX_GAP_FACTOR = 10  # a grid more than 10x longer than the rows means the frequency is wrong
_CHUNK_ROWS = 1_000_000  # rows parsed at a time: a file is never in memory whole, only its compact parsed columns
_SCHEMA_KEY = "ttm_data_schema"


@dataclass
class SeriesSchema:
    """Column roles of a series dataset: channel names in channel order (targets first, then exogenous)."""

    target_columns: list[str]
    exogenous_columns: list[str] = field(default_factory=list)
    static_categorical_columns: list[str] = field(default_factory=list)
    categories: dict[str, list[str]] = field(default_factory=dict)  # code i of column c means categories[c][i]
    timestamp_column: str | None = None
    id_column: str | None = None

    @property
    def channel_names(self) -> list[str]:
        return [*self.target_columns, *self.exogenous_columns]

    @property
    def columns(self) -> list[str]:
        """Every column with a role."""
        ids = [self.id_column] if self.id_column else []
        return [self.timestamp_column, *ids, *self.channel_names, *self.static_categorical_columns]


def series_schema(dataset: Dataset) -> SeriesSchema:
    """The column roles `load_series` recorded, or generic names for a series dataset from elsewhere."""
    try:
        return SeriesSchema(**json.loads(dataset.info.description or "{}")[_SCHEMA_KEY])
    except (json.JSONDecodeError, KeyError, TypeError):
        pass
    first = dataset.with_format("numpy")[0]
    num_targets = 1 if first["target"].ndim == 1 else len(first["target"])
    num_exogenous = len(first["feat_dynamic_real"]) if "feat_dynamic_real" in first else 0
    num_static = len(first["feat_static_cat"]) if "feat_static_cat" in first else 0
    return SeriesSchema(
        target_columns=["target"] if first["target"].ndim == 1 else [f"target_{i}" for i in range(num_targets)],
        exogenous_columns=[f"feat_dynamic_real_{i}" for i in range(num_exogenous)],
        static_categorical_columns=[f"feat_static_cat_{i}" for i in range(num_static)],
    )


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV / TSV (optionally compressed) or parquet file whole; the file is only read."""
    return _with_rows(next(_read_chunks(path, chunk_rows=None)), path)


def _read_chunks(path: str | Path, chunk_rows: int | None, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
    """The rows of a file (only `columns` if given), `chunk_rows` at a time (all at once if None); a file without
    rows gives one empty frame with its columns."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file {str(path)!r} does not exist")
    name = path.name.lower()
    try:
        if name.endswith(_PARQUET_SUFFIXES):
            with pq.ParquetFile(path) as parquet:
                if chunk_rows is None or parquet.metadata.num_rows == 0:
                    yield parquet.read(columns=columns, use_pandas_metadata=True).to_pandas()  # as pd.read_parquet
                else:
                    yield from (b.to_pandas() for b in parquet.iter_batches(batch_size=chunk_rows, columns=columns))
        elif any(name.endswith(s + c) for s in _CSV_SUFFIXES for c in _COMPRESSIONS):
            sep = "\t" if ".tsv" in name else ","
            if chunk_rows is None:
                yield pd.read_csv(path, sep=sep, usecols=columns)
            else:
                with pd.read_csv(path, sep=sep, usecols=columns, chunksize=chunk_rows) as reader:
                    yield from reader
        else:
            raise ValueError(
                f"{path}: unsupported file type; expected .csv / .tsv (optionally .gz, .bz2, .zip, .xz, .zst) or "
                ".parquet"
            )
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path} is empty: it has no header and no rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as error:
        raise ValueError(f"cannot read {path}: {error}") from error


def _with_rows(frame: pd.DataFrame, path: str | Path) -> pd.DataFrame:
    if frame.empty:
        raise ValueError(f"{path} has no data rows (columns: {list(frame.columns)})")
    return frame


# The keyword options of `load_series`, which the command-line scripts expose under the same names.
LOAD_OPTIONS = (
    "timestamp_column",
    "id_column",
    "target_columns",
    "exogenous_columns",
    "static_categorical_columns",
    "freq",
    "resample",
)


def load_series(
    path: str | Path,
    timestamp_column: str | None = None,
    id_column: str | None = None,
    target_columns: list[str] | None = None,
    exogenous_columns: list[str] | None = None,
    static_categorical_columns: list[str] | None = None,
    freq: str | None = None,
    resample: bool = False,
) -> Dataset:
    """Load a CSV / parquet file into a `datasets.Dataset` with one row per series (see the module docstring).

    Args:
        path: `.csv` / `.tsv` (optionally compressed) or `.parquet` file, wide (one series) or long (an id column
            separates the series). Never modified.
        timestamp_column: Timestamp column; by default the only column whose values parse as dates.
        id_column: Column naming the series of each row, for files that stack several series.
        target_columns: Columns to forecast; by default every numeric column without another role.
        exogenous_columns: Numeric columns known in the future too (weather forecasts, prices, holidays).
        static_categorical_columns: Columns constant within a series (store, region), encoded as integer codes.
        freq: Pandas frequency alias ("15min", "h", "D", "W-SUN", ...); inferred from the timestamps by default.
        resample: Average rows into `freq` periods. Needed for irregular, duplicate or unsorted timestamps, which
            are refused otherwise.

    Missing grid points (gaps) become NaN, i.e. unobserved values. The file is read a chunk of rows at a time (the
    column roles are resolved on the first chunk), so only the parsed columns of a large file are held in memory.
    """
    head = _with_rows(next(_read_chunks(path, _CHUNK_ROWS)), path)
    schema = _resolve_columns(
        head, timestamp_column, id_column, target_columns, exogenous_columns, static_categorical_columns, str(path)
    )
    chunks = _read_chunks(path, _CHUNK_ROWS, schema.columns)
    return _series(chunks, head, schema, freq, resample, str(path), inferred_targets=target_columns is None)


def series_from_frame(
    frame: pd.DataFrame,
    timestamp_column: str | None = None,
    id_column: str | None = None,
    target_columns: list[str] | None = None,
    exogenous_columns: list[str] | None = None,
    static_categorical_columns: list[str] | None = None,
    freq: str | None = None,
    resample: bool = False,
    source: str = "the data frame",
) -> Dataset:
    """`load_series` for a `pandas.DataFrame` already in memory (which is not modified)."""
    if frame.empty:
        raise ValueError(f"{source} has no data rows")
    schema = _resolve_columns(
        frame, timestamp_column, id_column, target_columns, exogenous_columns, static_categorical_columns, source
    )
    return _series([frame], frame, schema, freq, resample, source)


def _series(
    chunks: Iterable[pd.DataFrame],
    head: pd.DataFrame,
    schema: SeriesSchema,
    freq: str | None,
    resample: bool,
    source: str,
    inferred_targets: bool = False,
) -> Dataset:
    """The dataset of the rows in `chunks`, whose first rows with every column are `head`."""
    columns = _Columns(schema, source, head, inferred_targets)
    for chunk in chunks:
        columns.append(chunk)
    work, names = columns.frame()
    channels = schema.channel_names
    _check_static(work, names, schema.static_categorical_columns, source)
    offset = parse_freq(freq) if freq is not None else None
    if resample:
        offset = offset or _infer_offset(work.sort_values(["__series", "__time"]), names, True, source)
        work = _resample(work, offset, channels, schema.static_categorical_columns)
    else:
        _check_order(work, names, schema, head, source)
        if not work["__series"].is_monotonic_increasing:  # interleaved series
            work = work.sort_values("__series", kind="stable")
        offset = offset or _infer_offset(work, names, False, source)
    return _build_dataset(work, names, offset, schema, source)


class _Codes:
    """Integer codes of the (string) values of a column read in chunks, numbered in order of first appearance."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self.codes = {name: code for code, name in enumerate(names)}

    def encode(self, values: pd.Series) -> np.ndarray:
        """The codes of `values` (-1 where missing); values with the same text (1 and "1") share a code."""
        array = values.to_numpy()
        if len(array) == 0:
            return np.empty(0, dtype=np.int32)
        # Long-format files hold each series in runs of rows: factorise the first value of every run only (NaN,
        # unequal to itself, makes runs of one and a code of -1).
        starts = np.flatnonzero(np.concatenate([[True], array[1:] != array[:-1]]))
        local, uniques = pd.factorize(array[starts], sort=False)  # the raw values first: far faster than text
        known = [self.codes.setdefault(name, len(self.codes)) for name in map(str, uniques)]
        run_codes = np.array([*known, -1], dtype=np.int32)[local]
        return np.repeat(run_codes, np.diff(np.append(starts, len(array))))

    @property
    def names(self) -> pd.Index:
        return pd.Index(list(self.codes))


class _Columns:
    """The columns of a schema, parsed and checked a chunk at a time into compact arrays (rows in file order)."""

    def __init__(self, schema: SeriesSchema, source: str, head: pd.DataFrame, inferred_targets: bool) -> None:
        self.schema, self.source, self.head, self.rows = schema, source, head, 0
        self.inferred_targets = list(schema.target_columns) if inferred_targets else []
        self.series = _Codes() if schema.id_column else _Codes(["0"])
        self.categories = {column: _Codes() for column in schema.static_categorical_columns}
        self.timezones: list[datetime.tzinfo | None] = []
        self.parts: dict[str, list[np.ndarray]] = defaultdict(list)

    def append(self, chunk: pd.DataFrame) -> None:
        """Parse and check the next rows of the file."""
        schema, source, first = self.schema, self.source, self.rows
        times = _parse_timestamps(chunk[schema.timestamp_column], schema.timestamp_column, source, first)
        self.timezones.append(times.dt.tz)
        self.parts["__time"].append((times if times.dt.tz is None else times.dt.tz_convert(None)).to_numpy())  # UTC
        for column in schema.channel_names:
            values = chunk[column]
            if column in self.inferred_targets and not pd.api.types.is_numeric_dtype(values):
                self._ignore(column)  # text further down the file: the column is not numeric after all
            else:
                self.parts[column].append(_numeric(values, column, _role_argument(schema, column), source, first))
        for column, codes in self.categories.items():
            self.parts[column].append(codes.encode(_categorical(chunk[column], column, source, first)))
        if schema.id_column:
            codes = self.series.encode(chunk[schema.id_column])
            if (codes < 0).any():
                raise ValueError(
                    f"`id_column`: column {schema.id_column!r} of {source} is empty in row "
                    f"{first + int(np.argmax(codes < 0))}"
                )
            self.parts["__series"].append(codes)
        self.rows += len(chunk)

    def _ignore(self, column: str) -> None:
        _warn_ignored(self.source, [column])
        self.schema.target_columns.remove(column)
        self.parts.pop(column, None)
        if not self.schema.target_columns:
            raise _no_targets(self.source, [str(c) for c in self.head.columns])

    def frame(self) -> tuple[pd.DataFrame, pd.Index]:
        """The rows as one frame of series codes, times, float32 channels and category codes; the series names."""
        columns = {name: np.concatenate(self.parts.pop(name)) for name in list(self.parts)}
        columns.setdefault("__series", np.zeros(self.rows, dtype=np.int32))  # no id column: one series
        times = pd.DatetimeIndex(columns.pop("__time"))
        zone = self.timezones[0]
        if any(zone != other for other in self.timezones):
            zone = "UTC"  # timestamps with several UTC offsets are UTC, as when parsed at once
        if zone is not None:
            times = times.tz_localize("UTC").tz_convert(zone)
        for column, codes in self.categories.items():
            self.schema.categories[column] = sorted(codes.names)
            columns[column] = pd.Index(self.schema.categories[column]).get_indexer(codes.names)[columns[column]]
        return pd.DataFrame({"__time": times, **columns}, copy=False), self.series.names


def _suggest(name: str, columns: list[str]) -> str:
    close = difflib.get_close_matches(name, columns, n=1) or [c for c in columns if c.lower() == name.lower()]
    return f"; did you mean {close[0]!r}?" if close else ""


def _resolve_columns(
    frame: pd.DataFrame,
    timestamp_column: str | None,
    id_column: str | None,
    target_columns: list[str] | None,
    exogenous_columns: list[str] | None,
    static_categorical_columns: list[str] | None,
    source: str,
) -> SeriesSchema:
    columns = [str(c) for c in frame.columns]
    named = {
        "timestamp_column": [timestamp_column] if timestamp_column is not None else [],
        "id_column": [id_column] if id_column is not None else [],
        "target_columns": list(target_columns or []),
        "exogenous_columns": list(exogenous_columns or []),
        "static_categorical_columns": list(static_categorical_columns or []),
    }
    roles: dict[str, str] = {}
    for argument, names in named.items():
        for name in names:
            if name not in columns:
                raise ValueError(
                    f"`{argument}`: no column {name!r} in {source}{_suggest(name, columns)} (columns: {columns})"
                )
            if name in roles:
                raise ValueError(f"column {name!r} is named by both `{roles[name]}` and `{argument}`; give it one role")
            roles[name] = argument
    if timestamp_column is None:
        timestamp_column = _detect_timestamp_column(frame, [c for c in columns if c not in roles], source)
        roles[timestamp_column] = "timestamp_column"
    if target_columns is None:
        free = [c for c in columns if c not in roles]
        target_columns = [c for c in free if pd.api.types.is_numeric_dtype(frame[c])]
        ignored = [c for c in free if c not in target_columns]
        if ignored:
            _warn_ignored(source, ignored)
    if not target_columns:
        raise _no_targets(source, columns)
    return SeriesSchema(
        target_columns=list(target_columns),
        exogenous_columns=list(exogenous_columns or []),
        static_categorical_columns=list(static_categorical_columns or []),
        timestamp_column=timestamp_column,
        id_column=id_column,
    )


def _warn_ignored(source: str, columns: list[str]) -> None:
    logger.warning(
        "%s: ignoring non-numeric columns %s (name them as `id_column`, `static_categorical_columns` or "
        "`target_columns` to use them)",
        source,
        columns,
    )


def _no_targets(source: str, columns: list[str]) -> ValueError:
    return ValueError(
        f"`target_columns`: {source} has no numeric column to forecast besides the other roles (columns: {columns}); "
        "name the targets with `target_columns`"
    )


def _role_argument(schema: SeriesSchema, column: str) -> str:
    return "target_columns" if column in schema.target_columns else "exogenous_columns"


def _detect_timestamp_column(frame: pd.DataFrame, candidates: list[str], source: str) -> str:
    found = []
    for column in candidates:
        values = frame[column]
        if pd.api.types.is_datetime64_any_dtype(values):
            found.append(column)
        elif not pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            sample = values.dropna().head(50)
            try:
                with warnings.catch_warnings():  # "could not infer format" for columns that are not dates
                    warnings.simplefilter("ignore", UserWarning)
                    if len(sample) and pd.to_datetime(sample).notna().all():
                        found.append(column)
            except (ValueError, TypeError, OverflowError):
                continue
    if len(found) != 1:
        what = "no column looks" if not found else f"several columns ({found}) look"
        raise ValueError(f"`timestamp_column`: {what} like timestamps in {source}; name it with `timestamp_column`")
    return found[0]


def _parse_timestamps(values: pd.Series, column: str, source: str, first_row: int = 0) -> pd.Series:
    """Parse a column (a chunk whose first row is row `first_row` of the file) and check it has no gaps."""
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        raise ValueError(
            f"`timestamp_column`: column {column!r} of {source} holds numbers, not dates; convert it to dates "
            "(e.g. '2024-01-31 12:00') or name another column"
        )
    try:
        with warnings.catch_warnings():  # pandas 2.x warns, then returns objects, for several UTC offsets
            warnings.simplefilter("ignore", FutureWarning)
            parsed = pd.to_datetime(values)
        if not pd.api.types.is_datetime64_any_dtype(parsed):
            raise ValueError("mixed time zones")
    except (ValueError, TypeError, OverflowError) as error:
        try:  # timestamps with several UTC offsets (daylight saving time) parse as UTC
            parsed = pd.to_datetime(values, utc=True)
        except (ValueError, TypeError, OverflowError):
            message = re.sub(r"(?<=at position )\d+", lambda m: str(first_row + int(m[0])), str(error))
            raise ValueError(
                f"`timestamp_column`: cannot parse column {column!r} of {source} as timestamps: "
                f"{message.splitlines()[0]}"
            ) from None
    if parsed.isna().any():
        row = first_row + int(np.argmax(parsed.isna().to_numpy()))
        raise ValueError(
            f"`timestamp_column`: column {column!r} of {source} has an empty or invalid timestamp in row {row} "
            "(0-based, header excluded); fill or drop that row"
        )
    return parsed.reset_index(drop=True)


def _numeric(values: pd.Series, column: str, argument: str, source: str, first_row: int = 0) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        numbers = values.astype(float).to_numpy()
    else:
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        bad = np.isnan(numbers) & values.notna().to_numpy()
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(
                f"`{argument}`: column {column!r} of {source} is not numeric: row {first_row + row} (0-based, header "
                f"excluded) holds {values.iloc[row]!r}; clean the column (leave missing values empty) or drop it from "
                f"`{argument}`"
            )
    if np.isinf(numbers).any():
        row = first_row + int(np.argmax(np.isinf(numbers)))
        raise ValueError(
            f"`{argument}`: column {column!r} of {source} has an infinite value in row {row}; leave missing values "
            "empty instead"
        )
    with np.errstate(over="ignore"):
        single = numbers.astype(np.float32)
    if np.isinf(single).any():
        row = int(np.argmax(np.isinf(single)))
        raise ValueError(
            f"`{argument}`: column {column!r} of {source} holds {numbers[row]!r} in row {first_row + row}, beyond the "
            f"float32 range (+/-{np.finfo(np.float32).max:.3g}) the model computes in; rescale the column"
        )
    return single


def _categorical(values: pd.Series, column: str, source: str, first_row: int = 0) -> pd.Series:
    if values.isna().any():
        row = first_row + int(np.argmax(values.isna().to_numpy()))
        raise ValueError(
            f"`static_categorical_columns`: column {column!r} of {source} is empty in row {row}; every series needs "
            "a category"
        )
    return values


def _check_static(work: pd.DataFrame, names: pd.Index, columns: list[str], source: str) -> None:
    for column in columns:
        varying = work.groupby("__series")[column].nunique() > 1
        if varying.any():
            raise ValueError(
                f"`static_categorical_columns`: column {column!r} of {source} changes within series "
                f"{names[int(varying.idxmax())]!r}; static categories must be constant per series (name varying "
                "columns in `exogenous_columns` if numeric)"
            )


def _check_order(work: pd.DataFrame, names: pd.Index, schema: SeriesSchema, head: pd.DataFrame, source: str) -> None:
    """Duplicate and unsorted timestamps within a series stop the load (`resample=True` repairs both).

    `head` holds the first rows with every column, in which a column that may name the series is looked for.
    """
    column = schema.timestamp_column
    if _grouped_and_increasing(work):  # the common case, checked in one vectorised pass
        return
    duplicated = work.duplicated(["__series", "__time"]).to_numpy()
    if duplicated.any():
        row = int(np.argmax(duplicated))
        where = f" of series {names[work['__series'].iloc[row]]!r}" if schema.id_column else ""
        hint = ""
        candidates = [
            c for c in head.columns if c not in (column, *schema.channel_names) and head[c].nunique() <= len(head) // 2
        ]
        if not schema.id_column and candidates:
            hint = f"if the file stacks several series, name their column with `id_column` (e.g. {candidates[0]!r}); "
        raise ValueError(
            f"`timestamp_column`: timestamp {work['__time'].iloc[row]} appears more than once{where} in column "
            f"{column!r} of {source} (row {row}): {hint}pass `resample=True` to average rows per period, or drop the "
            "duplicates"
        )
    backwards = (work.groupby("__series")["__time"].diff() < pd.Timedelta(0)).to_numpy()
    if backwards.any():
        row = int(np.argmax(backwards))
        raise ValueError(
            f"`timestamp_column`: column {column!r} of {source} is not in time order: row {row} "
            f"({work['__time'].iloc[row]}) comes after a later timestamp; sort the file by time (and id) or pass "
            "`resample=True`"
        )


def _grouped_and_increasing(work: pd.DataFrame) -> bool:
    """Whether the rows of every series are contiguous with strictly increasing timestamps."""
    codes, times = work["__series"].to_numpy(), pd.DatetimeIndex(work["__time"]).asi8
    steps = np.diff(codes)
    return bool((steps >= 0).all() and ((np.diff(times) > 0) | (steps != 0)).all())


def _infer_offset(work: pd.DataFrame, names: pd.Index, resample: bool, source: str) -> BaseOffset:
    """The frequency of the longest series (rows sorted by series and time), holes allowed (see `infer_offset`).

    Without `resample`, data that no grid fits for most timestamps are refused as irregular.
    """
    codes = work["__series"].to_numpy()
    longest = int(np.bincount(codes).argmax())
    begin, end = np.searchsorted(codes, [longest, longest + 1])
    times = pd.DatetimeIndex(work["__time"].iloc[begin:end])
    repeated = np.diff(times.asi8) == 0  # rows that `resample` will average
    offset, share = infer_offset(times[np.r_[True, ~repeated]] if repeated.any() else times)
    if offset is None:
        raise ValueError(
            f"`freq`: cannot infer the frequency from {len(times)} timestamp(s) (series {names[longest]!r}); pass "
            "`freq`, e.g. 'h' or 'D'"
        )
    if share <= MOST and not resample:
        raise ValueError(
            f"`timestamp_column`: the timestamps of {source} are irregular: no frequency fits most of them (the best, "
            f"{offset.freqstr}, fits {share:.0%}). Pass `resample=True` with a `freq` such as 'h' or 'D' to average "
            "them into periods"
        )
    return offset


def _resample(work: pd.DataFrame, offset: BaseOffset, channels: list[str], static: list[str]) -> pd.DataFrame:
    aggregations = {**{c: "mean" for c in channels}, **{c: "first" for c in static}}
    grouped = work.groupby(["__series", pd.Grouper(key="__time", freq=offset)], sort=True).agg(aggregations)
    return grouped.reset_index()


def _arrow_timezone(tz: datetime.tzinfo) -> str:
    name = str(tz)
    if isinstance(tz, datetime.timezone) and name != "UTC":
        return name.removeprefix("UTC")  # "UTC+01:00" -> "+01:00", the form arrow accepts
    return name


def _positions(times: pd.DatetimeIndex, bounds: np.ndarray, offset: BaseOffset) -> np.ndarray:
    """The grid position of every row within its series (rows `bounds[i]:bounds[i + 1]` are series i); -1 when off
    the grid that starts at the series' first timestamp. Fixed steps are computed for all series at once."""
    step = fixed_step(offset)
    if step is None or (isinstance(offset, Day) and times.tz is not None):
        return np.concatenate([grid_positions(times[b:e], offset, _CHUNK_ROWS) for b, e in pairwise(bounds)])
    nanoseconds, step_ns = times.asi8, step.value
    positions = np.empty(len(times), dtype=np.int64)
    firsts = np.repeat(nanoseconds[bounds[:-1]], np.diff(bounds))
    for begin in range(0, len(times), _CHUNK_ROWS):  # small temporary arrays
        elapsed = nanoseconds[begin : begin + _CHUNK_ROWS] - firsts[begin : begin + _CHUNK_ROWS]
        positions[begin : begin + _CHUNK_ROWS] = np.where(elapsed % step_ns == 0, elapsed // step_ns, -1)
    return positions


def _check_grid(
    times: pd.DatetimeIndex, positions: np.ndarray, bounds: np.ndarray, names: pd.Index, offset: BaseOffset,
    named: bool, source: str,
) -> np.ndarray:  # fmt: skip
    """The number of grid steps of every series; refuses rows off the grid and grids far longer than their rows."""
    if (positions < 0).any():
        row = int(np.argmax(positions < 0))
        series = int(np.searchsorted(bounds, row, side="right")) - 1
        where = f" (series {names[series]!r})" if named else ""
        raise ValueError(
            f"`timestamp_column`: timestamp {times[row]}{where} of {source} is not on the {offset.freqstr} grid that "
            f"starts at {times[bounds[series]]}: the timestamps are irregular. Pass `resample=True` to average them "
            f"into {offset.freqstr} periods, or pass the right `freq`"
        )
    lengths = positions[bounds[1:] - 1] + 1
    counts = np.diff(bounds)
    too_long = lengths > _MAX_GAP_FACTOR * counts + 100
    if too_long.any():
        series = int(np.argmax(too_long))
        raise ValueError(
            f"`freq`: at frequency {offset.freqstr} series {names[series]!r} of {source} would span {lengths[series]} "
            f"steps but has only {counts[series]} timestamps; pass the right `freq`"
        )
    return lengths


def _report_gaps(
    times: pd.DatetimeIndex, positions: np.ndarray, bounds: np.ndarray, lengths: np.ndarray, names: pd.Index,
    offset: BaseOffset, named: bool, source: str,
) -> None:  # fmt: skip
    """Missing timestamps over all series, logged in one line: how many, and where the longest gap is."""
    counts = np.diff(bounds)
    with_gaps = np.flatnonzero(lengths != counts)
    if len(with_gaps) == 0:
        return
    jumps = np.diff(positions) - 1  # missing steps after each row; meaningless at the last row of a series
    jumps[bounds[1:-1] - 1] = -1
    row = int(np.argmax(jumps))
    series = int(np.searchsorted(bounds, row, side="right")) - 1
    steps, first = int(jumps[row]), times[row] + offset
    last = first + (steps - 1) * offset
    where = f" of series {names[series]!r}" if named else ""
    in_series = f" in {len(with_gaps)} of {len(names)} series" if named else ""
    logger.warning(
        "%s: %d of %d timestamps on the %s grid are missing%s (longest gap%s: %d step%s, %s .. %s); they are "
        "missing values (NaN)",
        source,
        int((lengths - counts).sum()),
        int(lengths.sum()),
        offset.freqstr,
        in_series,
        where,
        steps,
        "s" if steps > 1 else "",
        first,
        last,
    )


def _build_dataset(
    work: pd.DataFrame, names: pd.Index, offset: BaseOffset, schema: SeriesSchema, source: str
) -> Dataset:
    """One row per series, every series on its grid (NaN where a timestamp is missing), built for all series at once."""
    num_targets = len(schema.target_columns)
    times = pd.DatetimeIndex(work["__time"])
    codes = work["__series"].to_numpy()
    bounds = np.searchsorted(codes, np.arange(len(names) + 1))
    named = bool(schema.id_column)
    positions = _positions(times, bounds, offset)
    lengths = _check_grid(times, positions, bounds, names, offset, named, source)
    _report_gaps(times, positions, bounds, lengths, names, offset, named, source)

    starts = np.concatenate([[0], np.cumsum(lengths)])  # the series' first step in the flat grid
    flat = starts[:-1].repeat(np.diff(bounds)) + positions
    grid = np.full((len(schema.channel_names), int(starts[-1])), np.nan, dtype=np.float32)
    for channel, column in zip(grid, schema.channel_names, strict=True):
        channel[flat] = work[column].to_numpy(dtype=np.float32)

    zone = _arrow_timezone(times.tz) if times.tz is not None else None
    columns: dict[str, pa.Array] = {
        "target": _grid_lists(grid[:num_targets], starts, nested=num_targets > 1),
        "start": pa.array(times.asi8[bounds[:-1]]).cast(pa.timestamp("ns", tz=zone)),  # UTC nanoseconds
        "freq": pa.array([offset.freqstr] * len(names), pa.string()),
    }
    if named:
        columns["item_id"] = pa.array(names.astype(str), pa.string())
    if schema.exogenous_columns:
        columns["feat_dynamic_real"] = _grid_lists(grid[num_targets:], starts, nested=True)
    if schema.static_categorical_columns:
        columns["feat_static_cat"] = pa.array(
            [[int(c) for c in row] for row in work[schema.static_categorical_columns].to_numpy()[bounds[:-1]]],
            pa.list_(pa.int64()),
        )

    float_list = List(Value("float32"))
    features = {
        "target": float_list if num_targets == 1 else List(float_list),
        "start": Value("timestamp[ns]" if zone is None else f"timestamp[ns, tz={zone}]"),
        "freq": Value("string"),
        "item_id": Value("string"),
        "feat_dynamic_real": List(float_list),
        "feat_static_cat": List(Value("int64")),
    }
    info = DatasetInfo(
        description=json.dumps({_SCHEMA_KEY: asdict(schema)}),
        features=Features({name: features[name] for name in columns}),
    )
    return Dataset.from_dict(columns, info=info)


def _grid_lists(grid: np.ndarray, starts: np.ndarray, nested: bool) -> pa.ListArray:
    """Channels x flat steps (series after series, `starts` their first steps) as an arrow list per series: of the
    values (one channel, `nested` False) or of one list per channel."""
    if not nested:
        return pa.ListArray.from_arrays(pa.array(starts, pa.int32()), pa.array(grid[0]))
    channels, lengths = len(grid), np.diff(starts)
    inner_starts = np.concatenate([[0], np.cumsum(np.repeat(lengths, channels))])
    values = np.concatenate([grid[:, b:e].reshape(-1) for b, e in pairwise(starts)])  # series, channel, step
    inner = pa.ListArray.from_arrays(pa.array(inner_starts, pa.int32()), pa.array(values))
    return pa.ListArray.from_arrays(pa.array(np.arange(len(lengths) + 1) * channels, pa.int32()), inner)
