"""ttm_data loading: files to the long-series layout, frequencies, chronological splits without leakage."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from datasets import Dataset

from ttm_data import (
    EvalWindows,
    TrainWindows,
    chronological_split,
    fewshot_subset,
    freq_token,
    load_series,
    seasonal_period,
    series_lengths,
    series_schema,
    split_starts,
)

SAMPLEDATA = Path(importlib.util.find_spec("bokeh_sampledata").origin).parent / "_data"


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path


def hourly_frame(hours: int = 48, start: str = "2024-03-01") -> pd.DataFrame:
    steps = np.arange(hours)
    return pd.DataFrame(
        {
            "date": pd.date_range(start, periods=hours, freq="h").strftime("%Y-%m-%d %H:%M"),
            "load": 100 + 10 * np.sin(2 * np.pi * steps / 24),
            "temp": 15 + np.cos(2 * np.pi * steps / 24),
        }
    )


@pytest.fixture
def stacked_csv(tmp_path: Path) -> Path:
    """Two stores, daily, with a target, an exogenous price and a static region; store B has a gap."""
    parts = []
    for store, region, days in (("A", "north", 30), ("B", "south", 20)):
        dates = pd.date_range("2024-01-01", periods=days, freq="D")
        part = pd.DataFrame(
            {"store": store, "day": dates.strftime("%Y-%m-%d"), "sales": np.arange(days) + (0 if store == "A" else 100)}
        )
        part["price"] = part["sales"] / 10
        part["region"] = region
        parts.append(part.drop(index=5) if store == "B" else part)
    return write_csv(tmp_path / "stores.csv", pd.concat(parts))


def test_freq_tokens_follow_ibm_mapping() -> None:
    table = {"oov": 0, "min": 1, "2min": 2, "5min": 3, "10min": 4, "15min": 5, "30min": 6, "h": 7, "H": 7}
    table.update({"d": 8, "D": 8, "W": 9})
    assert {alias: freq_token(alias) for alias in table} == table
    # Equivalent spellings share a token; weekly anchored on any day is weekly; other frequencies are out of vocab.
    assert [freq_token(f) for f in ("1min", "60min", "1h", "24h", "W-MON", "15T")] == [1, 7, 7, 8, 9, 5]
    assert [freq_token(f) for f in ("3h", "B", "MS", "2W", "s")] == [0, 0, 0, 0, 0]
    with pytest.raises(ValueError, match="`freq`: unknown frequency '15minutes'"):
        freq_token("15minutes")


def test_seasonal_periods() -> None:
    expected = {"5min": 288, "10min": 144, "15min": 96, "30min": 48, "h": 24, "D": 7, "W": 52, "MS": 12, "M": 12}
    expected.update({"QS": 4, "Q-DEC": 4, "B": 5, "2h": 12, "s": 3600, "YE": 1, "7h": 1, "3D": 1})
    assert {freq: seasonal_period(freq) for freq in expected} == expected


def test_wide_csv_becomes_one_multichannel_series(tmp_path: Path) -> None:
    frame = hourly_frame().drop(index=[10, 11])  # a two-hour gap
    frame.loc[20, "load"] = np.nan  # an empty cell
    dataset = load_series(write_csv(tmp_path / "wide.csv", frame), exogenous_columns=["temp"])
    assert len(dataset) == 1 and set(dataset.column_names) == {"target", "start", "freq", "feat_dynamic_real"}
    row = dataset.with_format("numpy")[0]
    assert row["freq"] == "h" and pd.Timestamp(dataset[0]["start"]) == pd.Timestamp("2024-03-01")
    assert row["target"].shape == (48,) and row["feat_dynamic_real"].shape == (1, 48)  # 1-D target: one column
    assert np.isnan(row["target"][[10, 11, 20]]).all() and np.isnan(row["feat_dynamic_real"][0, [10, 11]]).all()
    expected = hourly_frame()["load"].to_numpy(dtype=np.float32)
    keep = np.setdiff1d(np.arange(48), [10, 11, 20])
    np.testing.assert_allclose(row["target"][keep], expected[keep], rtol=1e-6)
    schema = series_schema(dataset)
    assert (schema.target_columns, schema.exogenous_columns, schema.timestamp_column) == (["load"], ["temp"], "date")


def test_long_csv_with_ids_exogenous_and_static_columns(stacked_csv: Path) -> None:
    dataset = load_series(
        stacked_csv,
        id_column="store",
        target_columns=["sales"],
        exogenous_columns=["price"],
        static_categorical_columns=["region"],
    )
    assert dataset["item_id"] == ["A", "B"] and dataset["freq"] == ["D", "D"]
    assert [list(c) for c in dataset["feat_static_cat"]] == [[0], [1]]
    assert series_schema(dataset).categories == {"region": ["north", "south"]}
    rows = dataset.with_format("numpy")
    assert rows[1]["target"].shape == (20,) and np.isnan(rows[1]["target"][5])  # the gap, on the daily grid
    np.testing.assert_allclose(rows[0]["feat_dynamic_real"][0], np.arange(30) / 10, rtol=1e-6)


def test_two_target_columns_give_a_channels_by_time_target(tmp_path: Path) -> None:
    dataset = load_series(write_csv(tmp_path / "wide.csv", hourly_frame()), target_columns=["temp", "load"])
    target = dataset.with_format("numpy")[0]["target"]
    assert target.shape == (2, 48)
    np.testing.assert_allclose(target[1], hourly_frame()["load"], rtol=1e-6)  # channel order = the order named


def test_parquet_and_timezones(tmp_path: Path) -> None:
    frame = hourly_frame()
    frame["date"] = pd.to_datetime(frame["date"]).dt.tz_localize("Europe/Berlin")
    path = tmp_path / "data.parquet"
    frame.to_parquet(path)
    dataset = load_series(path, target_columns=["load"])
    assert pd.Timestamp(dataset[0]["start"]) == pd.Timestamp("2024-03-01", tz="Europe/Berlin")


@pytest.mark.parametrize(
    ("dates", "freq"),
    [
        (pd.date_range("2024-01-01", periods=12, freq="W-MON"), "W-MON"),
        (pd.date_range("2020-01-01", periods=12, freq="MS"), "MS"),
        (pd.date_range("2024-01-01", periods=30, freq="B").delete([7, 15]), "B"),  # business days with holidays
        (pd.date_range("2024-01-01", periods=30, freq="15min").delete([3]), "15min"),
    ],
)
def test_frequency_inference(tmp_path: Path, dates: pd.DatetimeIndex, freq: str) -> None:
    frame = pd.DataFrame({"t": dates.strftime("%Y-%m-%d %H:%M"), "y": np.arange(len(dates), dtype=float)})
    assert load_series(write_csv(tmp_path / "f.csv", frame))[0]["freq"] == freq


def test_real_files_load() -> None:
    sea = load_series(SAMPLEDATA / "sea_surface_temperature.csv.gz", resample=True)  # one duplicate timestamp
    assert (sea[0]["freq"], len(sea), str(pd.Timestamp(sea[0]["start"]).tz)) == ("30min", 1, "UTC")
    stocks = load_series(SAMPLEDATA / "stocks.csv.gz", id_column="Ticker", target_columns=["Close"])
    assert stocks["item_id"] == ["AAPL", "FB", "GOOG", "IBM", "MSFT"] and set(stocks["freq"]) == {"B"}
    glucose = load_series(SAMPLEDATA / "CGM.csv.gz", target_columns=["glucose"], resample=True)  # 4 and 6 minute steps
    assert glucose[0]["freq"] == "5min" and series_lengths(glucose)[0] > 50_000


def test_resample_averages_duplicates_and_sorts(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"t": ["2024-01-01 02:00", "2024-01-01 00:00", "2024-01-01 00:20", "2024-01-01 01:00"], "y": [4.0, 1, 3, 2]}
    )
    dataset = load_series(write_csv(tmp_path / "r.csv", frame), freq="h", resample=True)
    np.testing.assert_allclose(dataset[0]["target"], [2.0, 2.0, 4.0])


def bad_inputs(tmp_path: Path) -> list[tuple[Path, dict, str]]:
    good = hourly_frame()
    cases = []

    def case(name: str, frame: pd.DataFrame | None, kwargs: dict, message: str, text: str | None = None) -> None:
        path = tmp_path / f"{name}.csv"
        if text is not None:
            path.write_text(text)
        else:
            write_csv(path, frame)
        cases.append((path, kwargs, message))

    case("misspelled", good, {"target_columns": ["lod"]}, "`target_columns`: no column 'lod'.*did you mean 'load'")
    case("no_timestamp", good, {"timestamp_column": "time"}, "`timestamp_column`: no column 'time'")
    text = good.assign(load=good["load"].astype(object).where(good.index != 3, "n/a?"))
    case("text", text, {"target_columns": ["load"]}, "`target_columns`: column 'load' .* not numeric: row 3")
    case("empty", None, {}, "is empty", text="")
    case("header_only", None, {}, "no data rows", text="date,load\n")
    case("duplicate", pd.concat([good, good.iloc[[5]]]), {}, "timestamp .* appears more than once.*`resample=True`")
    case("unsorted", good.iloc[[0, 2, 1, *range(3, 48)]], {}, "not in time order.*sort the file")
    irregular = good.assign(date=pd.to_datetime(good["date"]) + pd.to_timedelta(np.r_[0, 0, 7, [0] * 45], "min"))
    case("irregular", irregular, {}, "not on the h grid.*irregular.*`resample=True`")
    case("unknown_freq", good, {"freq": "fortnightly"}, "`freq`: unknown frequency 'fortnightly'")
    bad_dates = good.assign(date=good["date"].where(good.index != 4, "31.02.2024"))
    case("bad_dates", bad_dates, {"timestamp_column": "date"}, "`timestamp_column`: cannot parse column 'date'")
    case("no_dates", good.assign(date="x"), {}, "`timestamp_column`: no column looks like timestamps")
    case("numbers", good.assign(date=np.arange(48)), {"timestamp_column": "date"}, "holds numbers, not dates")
    case("two_roles", good, {"target_columns": ["load"], "exogenous_columns": ["load"]}, "both `target_columns` and")
    case("inf", good.assign(temp=good["temp"].where(good.index != 2, np.inf)), {}, "column 'temp' .* infinite")
    varying = good.assign(region=["a"] * 20 + ["b"] * 28)
    case("static", varying, {"static_categorical_columns": ["region"]}, "'region' .* changes within series")
    return cases


def test_bad_inputs_fail_with_a_message_naming_the_problem(tmp_path: Path) -> None:
    for path, kwargs, message in bad_inputs(tmp_path):
        before = hashlib.sha256(path.read_bytes()).hexdigest()
        with pytest.raises(ValueError, match=message):
            load_series(path, **kwargs)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == before, f"{path.name} was modified"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_series(tmp_path / "missing.csv")


def test_duplicate_timestamps_suggest_the_id_column(tmp_path: Path) -> None:
    stocks = pd.read_csv(SAMPLEDATA / "stocks.csv.gz").head(4000)
    with pytest.raises(ValueError, match="name their column with `id_column` \\(e.g. 'Ticker'\\)"):
        load_series(write_csv(tmp_path / "stocks.csv", stocks), target_columns=["Close"])


def test_a_file_read_in_small_chunks_loads_as_if_read_whole(
    tmp_path: Path, stacked_csv: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """`load_series` parses a file a chunk of rows at a time; with chunks of 13 rows instead of a million, ids,
    categories, UTC offsets that change between chunks and a column that turns out not to be numeric further down give
    the same dataset as one chunk, and errors cite rows of the file."""
    clock_change = pd.date_range("2024-03-30", periods=72, freq="h", tz="Europe/Berlin")
    offsets = pd.DataFrame({"t": clock_change.astype(str), "y": np.arange(72.0)})  # +01:00 in rows 0-25
    note = np.arange(48).astype(str)
    note[40] = "n/a?"
    cases = [
        (stacked_csv, {"id_column": "store", "exogenous_columns": ["price"], "static_categorical_columns": ["region"]}),
        (write_csv(tmp_path / "offsets.csv", offsets), {"timestamp_column": "t"}),
        (write_csv(tmp_path / "note.csv", hourly_frame().assign(note=note)), {}),
    ]
    whole = [load_series(path, **kwargs) for path, kwargs in cases]
    caplog.clear()
    monkeypatch.setattr("ttm_data.loading._CHUNK_ROWS", 13)
    for (path, kwargs), expected in zip(cases, whole, strict=True):
        chunked = load_series(path, **kwargs)
        assert (chunked.info.description, chunked.features) == (expected.info.description, expected.features)
        np.testing.assert_equal(chunked[:], expected[:])
    assert "ignoring non-numeric columns ['note']" in caplog.text
    assert str(pd.Timestamp(whole[1][0]["start"]).tz) == "UTC"  # several offsets in the file, as when read whole
    good = hourly_frame()
    for frame, message in (
        (good.assign(load=good["load"].astype(object).where(good.index != 30, "x")), "not numeric: row 30 "),
        (good.assign(date=good["date"].where(good.index != 25, "")), "invalid timestamp in row 25 "),
    ):
        with pytest.raises(ValueError, match=message):
            load_series(write_csv(tmp_path / "bad.csv", frame), target_columns=["load"])


def test_chronological_split_by_fraction_does_not_leak(stacked_csv: Path) -> None:
    dataset = load_series(stacked_csv, id_column="store", target_columns=["sales"], exogenous_columns=["price"])
    splits = chronological_split(dataset, validation_fraction=0.2, test_fraction=0.3)
    lengths = series_lengths(dataset)
    test_cut = lengths - np.round(lengths * 0.3).astype(int)
    validation_cut = test_cut - np.round(lengths * 0.2).astype(int)
    np.testing.assert_array_equal(series_lengths(splits["train"]), validation_cut)
    np.testing.assert_array_equal(series_lengths(splits["validation"]), test_cut)
    np.testing.assert_array_equal(split_starts(splits["validation"]), validation_cut)
    np.testing.assert_array_equal(split_starts(splits["test"]), test_cut)
    full = dataset.with_format("numpy")
    for split in splits.values():  # every split is a prefix of the series, exogenous channels included
        for i, row in enumerate(split.with_format("numpy")):
            n = row["target"].shape[-1]
            np.testing.assert_array_equal(row["target"], full[i]["target"][:n])
            np.testing.assert_array_equal(row["feat_dynamic_real"], full[i]["feat_dynamic_real"][:, :n])
    horizon = 3
    train = TrainWindows(splits["train"], horizon)
    rng = np.random.default_rng(0)
    for series in range(2):
        ends = train.sample_ends(np.full(500, series), rng)
        assert ends.max() <= validation_cut[series]  # no training window reads a validation or test point
    for split, (low, high) in (("validation", (validation_cut, test_cut)), ("test", (test_cut, lengths))):
        for series, end in EvalWindows(splits[split], horizon):
            assert low[series] <= end - horizon and end <= high[series]  # forecasts lie inside the split


def test_chronological_split_by_timestamp() -> None:
    sea = load_series(SAMPLEDATA / "sea_surface_temperature.csv.gz", resample=True)
    splits = chronological_split(sea, validation_start="2017-01-01", test_start="2017-02-01 12:00")
    start = pd.Timestamp(sea[0]["start"])
    for split, boundary in (("train", "2017-01-01"), ("validation", "2017-02-01 12:00")):
        first_excluded = start + series_lengths(splits[split])[0] * pd.Timedelta("30min")
        assert first_excluded == pd.Timestamp(boundary, tz="UTC")
    with pytest.raises(ValueError, match="`validation_start` .* must not come after `test_start`"):
        chronological_split(sea, validation_start="2017-03-01", test_start="2017-02-01")
    with pytest.raises(ValueError, match="`validation_fraction` \\+ `test_fraction` must be below 1"):
        chronological_split(sea, validation_fraction=0.5, test_fraction=0.5)


def test_fewshot_keeps_the_latest_targets_and_their_context(stacked_csv: Path) -> None:
    dataset = load_series(stacked_csv, id_column="store", target_columns=["sales"])
    train = chronological_split(dataset, validation_fraction=0.1, test_fraction=0.1)["train"]
    subset = fewshot_subset(train, fraction=0.25, context_length=4)
    lengths = series_lengths(train)
    kept = np.ceil(0.25 * lengths).astype(int)
    np.testing.assert_array_equal(series_lengths(subset), kept + 4)
    np.testing.assert_array_equal(split_starts(subset), [4, 4])
    for full, part in zip(train, subset, strict=True):
        assert part["target"] == full["target"][-len(part["target"]) :]
        moved = len(full["target"]) - len(part["target"])
        assert pd.Timestamp(part["start"]) == pd.Timestamp(full["start"]) + moved * pd.Timedelta("1D")


def test_schema_of_a_dataset_from_elsewhere() -> None:
    dataset = Dataset.from_dict({"target": [[[1.0, 2.0], [3.0, 4.0]]], "start": ["2024-01-01"], "freq": ["h"]})
    assert series_schema(dataset).target_columns == ["target_0", "target_1"]


@pytest.mark.parametrize(
    ("freq", "periods", "holes"),
    [
        ("MS", 526, 10),  # monthly, like the CO2 record with 10 of 526 months missing
        ("ME", 120, 6),
        ("QS-JAN", 60, 4),
        ("W-SUN", 300, 12),
        ("W-WED", 200, 8),
        ("B", 400, 20),  # business days with holidays
        ("D", 400, 20),
        ("15min", 500, 25),
    ],
)
def test_missing_timestamps_become_missing_values_on_the_inferred_grid(
    tmp_path: Path, freq: str, periods: int, holes: int, caplog: pytest.LogCaptureFixture
) -> None:
    grid = pd.date_range("1958-03-01" if freq != "15min" else "2024-01-01", periods=periods, freq=freq)
    missing = np.sort(np.random.default_rng(periods).choice(np.arange(2, periods - 2), holes, replace=False))
    missing[-3:] = missing[-3] + np.arange(3)  # one gap of three steps, the longest
    values = np.arange(periods, dtype=float)
    frame = pd.DataFrame({"date": grid, "co2": values}).drop(index=missing)

    dataset = load_series(write_csv(tmp_path / "holes.csv", frame))

    target = np.asarray(dataset[0]["target"], dtype=float)
    inferred = pd.date_range(pd.Timestamp(dataset[0]["start"]), periods=len(target), freq=dataset[0]["freq"])
    pd.testing.assert_index_equal(inferred, grid, exact=False, check_names=False)  # QS-JAN is inferred as QS-OCT
    np.testing.assert_array_equal(np.flatnonzero(np.isnan(target)), missing)
    np.testing.assert_array_equal(target[~np.isnan(target)], np.delete(values, missing))
    report = [r.getMessage() for r in caplog.records if "missing" in r.getMessage()]
    assert len(report) == 1, report  # one line for the whole file
    first, last = grid[missing[-3]], grid[missing[-1]]
    assert f"{holes} of {periods} timestamps" in report[0]
    assert f"longest gap: 3 steps, {first} .. {last}" in report[0]


def test_gaps_in_several_series_are_reported_in_one_line(stacked_csv: Path, caplog: pytest.LogCaptureFixture) -> None:
    load_series(stacked_csv, id_column="store")
    lines = [r.getMessage() for r in caplog.records if "missing" in r.getMessage()]
    assert len(lines) == 1
    assert "1 of 50 timestamps on the D grid are missing in 1 of 2 series (longest gap of series 'B'" in lines[0]


def test_truly_irregular_timestamps_are_refused_with_the_flag_that_fixes_them(tmp_path: Path) -> None:
    seconds = np.sort(np.random.default_rng(0).uniform(0, 90 * 86_400, 300))
    times = pd.Timestamp("2024-01-01") + pd.to_timedelta(seconds.round(), unit="s")
    path = write_csv(tmp_path / "irregular.csv", pd.DataFrame({"time": times, "y": np.arange(300.0)}))

    with pytest.raises(ValueError, match="irregular: no frequency fits most of them.*`resample=True` with a `freq`"):
        load_series(path)
    daily = load_series(path, freq="D", resample=True)
    assert daily[0]["freq"] == "D" and len(daily[0]["target"]) == 90
