"""scripts/build_corpus.py on the small sources installed by the dev extra (bokeh stocks, vega temperatures)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import bokeh_sampledata
import numpy as np
import pandas as pd
import pytest
from datasets import load_dataset, load_from_disk
from script_loader import load_script

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["bokeh_stocks", "vega_temps_hourly", "vega_seattle_weather"]


@pytest.fixture(scope="module")
def builder() -> ModuleType:
    return load_script("build_corpus")


def test_sources_become_univariate_series_with_frequency_and_license(builder: ModuleType) -> None:
    corpus, dropped = builder.build_corpus(sources=SMALL)

    assert dropped == []
    frame = corpus.to_pandas()
    assert set(frame["source"]) == set(SMALL)
    hourly = frame[frame["item_id"] == "vega_temps_hourly/seattle-temps"].iloc[0]
    assert (hourly["freq"], hourly["license"], len(hourly["target"])) == ("h", "MIT", 8760)  # all of 2010
    assert hourly["start"] == pd.Timestamp("2010-01-01 00:00")
    assert set(frame.loc[frame["source"] == "bokeh_stocks", "freq"]) == {"B"}
    assert all(np.isfinite(t).any() for t in frame["target"])


def test_exclusion_and_held_out_data(builder: ModuleType) -> None:
    corpus, _ = builder.build_corpus(sources=SMALL, exclude=["bokeh_stocks"])
    assert "bokeh_stocks" not in set(corpus["source"])
    for held_out in ("bokeh_sea_surface_temperature", "bokeh_cgm"):
        with pytest.raises(ValueError, match="held out"):
            builder.build_corpus(sources=[*SMALL, held_out])
    with pytest.raises(ValueError, match="unknown source"):
        builder.build_corpus(sources=["no_such_source"])
    with pytest.raises(ValueError, match="empty"):
        builder.build_corpus(sources=["bokeh_stocks"], exclude=["bokeh_stocks"])


def test_duplicates_are_dropped_across_sources(builder: ModuleType, tmp_path: Path) -> None:
    corpus, _ = builder.build_corpus(sources=["vega_temps_hourly"])
    copy = corpus.select([0]).select_columns(["target", "start", "freq", "item_id"])
    copy.save_to_disk(str(tmp_path / "mine"))

    merged, dropped = builder.build_corpus(sources=["vega_temps_hourly"], extra=[str(tmp_path / "mine")])

    assert len(merged) == len(corpus)
    assert dropped == [(f"mine/{corpus[0]['item_id']}", corpus[0]["item_id"])]


def test_user_file_joins_the_corpus_with_its_license(builder: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "load.csv"
    times = pd.date_range("2024-01-01", periods=200, freq="15min")
    pd.DataFrame({"time": times, "load": np.sin(np.arange(200) / 7)}).to_csv(path, index=False)

    corpus, _ = builder.build_corpus(sources=["vega_temps_hourly"], extra=[str(path)], extra_license="CC-BY-4.0")

    row = corpus.to_pandas().set_index("source").loc["load.csv"]
    assert (row["freq"], row["license"], len(row["target"])) == ("15min", "CC-BY-4.0", 200)


def test_command_line_writes_arrow_or_parquet_and_prints_the_summary(
    builder: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    builder.main(["--output", str(tmp_path / "arrow"), "--sources", *SMALL])
    table = capsys.readouterr().out
    corpus = load_from_disk(str(tmp_path / "arrow"))
    total = int(sum(np.isfinite(np.asarray(t, dtype=float)).sum() for t in corpus["target"]))
    assert f"{total}" in table and "MIT" in table and "BSD-3-Clause" in table
    assert "sea_surface_temperature" in table  # the held-out data is named

    builder.main(
        ["--output", str(tmp_path / "parquet"), "--sources", *SMALL, "--format", "parquet", "--num-shards", "3"]
    )
    shards = sorted((tmp_path / "parquet").glob("*.parquet"))
    assert len(shards) == 3
    parquet = load_dataset("parquet", data_files=[str(s) for s in shards], split="train")
    assert sorted(parquet["item_id"]) == sorted(corpus["item_id"])


def test_a_copy_of_held_out_data_is_refused(builder: ModuleType, tmp_path: Path) -> None:
    original = Path(bokeh_sampledata.__file__).parent / "_data" / "sea_surface_temperature.csv.gz"
    copy = tmp_path / "my_temperatures.csv.gz"
    copy.write_bytes(original.read_bytes())
    with pytest.raises(ValueError, match="held-out evaluation data"):
        builder.build_corpus(sources=["vega_temps_hourly"], extra=[str(copy)])


def test_a_subset_source_is_left_out_when_its_superset_is_in(
    builder: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(builder, "SUBSET_OF", {"vega_seattle_weather": "vega_temps_hourly"})

    both, _ = builder.build_corpus(sources=["vega_temps_hourly", "vega_seattle_weather"])
    alone, _ = builder.build_corpus(sources=["vega_seattle_weather"])

    assert set(both["source"]) == {"vega_temps_hourly"}
    assert set(alone["source"]) == {"vega_seattle_weather"}
