"""Sampling frequencies: parsing pandas aliases, IBM's frequency tokens and seasonal periods."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset
from pandas.tseries.offsets import BaseOffset, Day, Tick, Week

# IBM's frequency-token table (granite-tsfm's default mapping), keyed by the aliases it lists.
_IBM_TOKENS = {"oov": 0, "min": 1, "2min": 2, "5min": 3, "10min": 4, "15min": 5, "30min": 6, "h": 7, "H": 7}
_IBM_TOKENS.update({"d": 8, "D": 8, "W": 9})
# The same table by step length, so that equivalent spellings ("60min", "1h") get the same token.
_STEP_TOKENS = {
    pd.Timedelta(minutes=m): t for m, t in [(1, 1), (2, 2), (5, 3), (10, 4), (15, 5), (30, 6), (60, 7), (1440, 8)]
}
_WEEKLY_TOKEN = 9

# Aliases that pandas >= 2.2 renamed; Hub datasets written earlier still use them ("1H", "15T", "M", "Q-DEC").
_LEGACY_ALIASES = {"H": "h", "T": "min", "S": "s", "L": "ms", "U": "us", "N": "ns", "M": "ME", "Q": "QE"}
_LEGACY_ALIASES.update({"A": "YE", "Y": "YE", "BM": "BME", "BQ": "BQE", "BA": "BYE", "BY": "BYE"})
_ALIAS = re.compile(r"^(\d*)([A-Za-z]+)(-[A-Za-z]+)?$")

# Frequency inference on data with holes: pandas infers the frequency of short runs of consecutive timestamps, the
# candidates are scored by how many of all timestamps lie on their grid.
_RUN = 8  # timestamps per run: a run of business days spans a weekend, one of weeks shows its anchor day
_MAX_RUNS = 200
MOST = 0.5  # a grid must hold more than this share of the timestamps, else the data are irregular

# Seasonal periods of calendar frequencies; a multiple n of the base divides it (2 months -> 12 / 2 = 6).
_CALENDAR_PERIODS = {"B": 5, "W": 52, "ME": 12, "MS": 12, "QE": 4, "QS": 4}


def parse_freq(freq: str) -> BaseOffset:
    """The pandas offset of a frequency alias ("15min", "h", "D", "W-SUN", "MS", ...).

    Aliases that pandas renamed in 2.2 ("H", "15T", "M", "Q-DEC") are accepted too. Raises a ValueError that names
    `freq` for anything else.
    """
    if not isinstance(freq, str) or not freq.strip():
        raise ValueError(f"`freq` must be a pandas frequency alias such as '15min', 'h', 'D', 'W', got {freq!r}.")
    try:
        return to_offset(freq)
    except ValueError:
        match = _ALIAS.match(freq.strip())
        if match and match.group(2) in _LEGACY_ALIASES:
            count, base, anchor = match.groups()
            return parse_freq(f"{count}{_LEGACY_ALIASES[base]}{anchor or ''}")
        raise ValueError(
            f"`freq`: unknown frequency {freq!r}. Use a pandas alias such as '5min', '15min', 'h', 'D', 'B', "
            "'W-SUN' or 'MS'."
        ) from None


def fixed_step(offset: BaseOffset) -> pd.Timedelta | None:
    """The constant step of a fixed frequency (minutes, hours, days, ...); None for calendar frequencies."""
    return pd.Timedelta(offset) if isinstance(offset, (Tick, Day)) else None


def freq_token(freq: str) -> int:
    """IBM's frequency token of `freq`, the input of TTM's resolution prefix tuning (`freq_token`).

    oov 0, min 1, 2min 2, 5min 3, 10min 4, 15min 5, 30min 6, h 7, D 8, W 9. Equivalent spellings map to the same
    token ("60min" and "1h" are 7; weekly data anchored on any weekday, "W-MON", is 9); every other valid frequency
    is out of vocabulary (0). Raises ValueError for a string that is not a frequency.
    """
    if freq in _IBM_TOKENS:
        return _IBM_TOKENS[freq]
    offset = parse_freq(freq)
    if isinstance(offset, Week) and offset.n == 1:
        return _WEEKLY_TOKEN
    step = fixed_step(offset)
    return _STEP_TOKENS.get(step, 0) if step is not None else 0


def seasonal_period(freq: str) -> int:
    """Seasonal period of `freq` for seasonal-naive baselines and MASE (GIFT-Eval convention).

    Steps under a minute cycle hourly (s 3600), steps under a day daily (5min 288, 15min 96, h 24, 2h 12), D 7,
    B 5, W 52, M 12, Q 4; every other frequency (yearly, 3 days, 7 hours, sub-second, ...) gets 1.
    """
    offset = parse_freq(freq)
    step = fixed_step(offset)
    if step is not None:
        day, hour = pd.Timedelta(days=1), pd.Timedelta(hours=1)
        if step == day:
            return 7
        cycle = hour if step < pd.Timedelta(minutes=1) else day
        whole = pd.Timedelta(seconds=1) <= step < day and cycle % step == pd.Timedelta(0)
        return cycle // step if whole else 1
    period = _CALENDAR_PERIODS.get(offset.rule_code.split("-")[0], 1)  # "W-SUN" -> "W", "QS-JAN" -> "QS"
    return period // offset.n if offset.n > 0 and period % offset.n == 0 else 1


def grid_positions(times: pd.DatetimeIndex, offset: BaseOffset, chunk: int = 1_000_000) -> np.ndarray:
    """Position of every timestamp on the grid of `offset` that starts at the first one; -1 when off the grid.

    Fixed steps are compared a `chunk` of timestamps at a time, to keep the temporary arrays small.
    """
    step = fixed_step(offset)
    if step is not None:
        if isinstance(offset, Day) and times.tz is not None:
            times = times.tz_localize(None)  # calendar days: compare wall-clock times across daylight saving changes
        nanoseconds, step_ns = times.asi8, step.value
        positions = np.empty(len(times), dtype=np.int64)
        for begin in range(0, len(times), chunk):
            elapsed = nanoseconds[begin : begin + chunk] - nanoseconds[0]
            positions[begin : begin + chunk] = np.where(elapsed % step_ns == 0, elapsed // step_ns, -1)
        return positions
    grid = pd.date_range(times[0], times[-1], freq=offset)
    if len(grid) == 0 or grid[0] != times[0]:
        return np.full(len(times), -1, dtype=np.int64)
    return grid.get_indexer(times).astype(np.int64, copy=False)


def infer_offset(times: pd.DatetimeIndex) -> tuple[BaseOffset | None, float]:
    """The frequency of sorted, unique timestamps that may have holes, and the share of them on its grid.

    `pandas.infer_freq` needs a complete run, so it is asked about up to 200 runs of 8 consecutive timestamps spread
    over the data; each frequency it answers, and the most common step as a fixed frequency, is a candidate. The
    candidate whose grid (from the first timestamp) holds the most timestamps wins, the shortest grid on a tie: with
    holes, business days beat calendar days and month starts beat any fixed step. (None, 0.0) for under 2 timestamps.
    """
    if len(times) < 2:
        return None, 0.0
    run = min(_RUN, len(times))
    starts = np.unique(np.linspace(0, len(times) - run, num=min(_MAX_RUNS, len(times) - run + 1)).astype(int))
    runs = [times[start : start + run] for start in starts]
    votes = Counter(pd.infer_freq(part) for part in runs) if run >= 3 else Counter()
    votes.pop(None, None)
    steps = np.concatenate([np.diff(part.asi8) for part in runs])  # the most common step within the runs
    values, counts = np.unique(steps, return_counts=True)
    candidates = [to_offset(alias) for alias, _ in votes.most_common(5)]
    candidates += [to_offset(pd.Timedelta(int(values[np.argmax(counts)]), unit="ns"))]
    candidates = [offset for i, offset in enumerate(candidates) if offset not in candidates[:i]]
    best, best_score = None, None
    for offset in candidates:
        positions = grid_positions(times, offset)
        on_grid = positions >= 0
        score = (on_grid.mean(), -(positions.max() + 1))  # most timestamps on the grid, then the shortest grid
        if best_score is None or score > best_score:
            best, best_score = offset, score
    return best, float(best_score[0])
