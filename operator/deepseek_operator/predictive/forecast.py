"""The forecaster: a seasonal-naive forecast anchored to the current level (pure, no I/O, no clock).

For a time ``tau`` ahead of the origin ``o`` (the last moment with data)::

    forecast(tau) = y(tau - S) * r(o)
    r(o)          = sum of y over (o - A, o]  /  sum of y(t - S) over the same t      (clipped)

with the season ``S`` one week when the history holds the anchor window one week back, else one day.
``r`` carries the level and the trend: traffic that grew 20 % since last week is forecast 20 % higher,
and a Monday after a weekend forecast from Sunday (the daily lag) is scaled to Monday's level. Why this
and not Holt-Winters or SARIMA: docs/forecasting.md (accuracy and cost, measured by
hack/forecast_comparison.py).

The error the operator gates the floor on is the same rule applied at every past origin of the most
recent day (each point forecast ``horizon`` ahead, from data before it only): its mean absolute
percentage error, over the points whose rate is at least ``MAPE_FLOOR_SHARE`` of that day's peak
(percentages of near-zero night-time rates say nothing about the capacity a floor provides).

Series are regular grids (a Prometheus range query's steps), with gaps as None; gaps up to
``MAX_INTERPOLATED_GAP_SECONDS`` are filled linearly, longer ones stay gaps.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

DAY_SECONDS = 86_400.0
WEEK_SECONDS = 7 * DAY_SECONDS
ANCHOR_SECONDS = 3_600.0
# The level ratio is clipped: a week-on-week change beyond these is a fault, not a trend.
MIN_LEVEL_RATIO = 0.25
MAX_LEVEL_RATIO = 4.0
# An anchor window or a horizon needs at least this share of its points.
MIN_COVERAGE = 0.5
MAPE_FLOOR_SHARE = 0.05
MAX_INTERPOLATED_GAP_SECONDS = 1_800.0


@dataclass(frozen=True)
class Seasons:
    """The calendar the forecast uses; shorter than real only in the benchmark (a compressed day)."""

    day: float = DAY_SECONDS
    week: float = WEEK_SECONDS
    anchor: float = ANCHOR_SECONDS

    def scaled(self, factor: float) -> Seasons:
        """Every period divided by ``factor`` (bench/predictive.py compresses a day)."""
        return Seasons(self.day / factor, self.week / factor, self.anchor / factor)


@dataclass(frozen=True)
class Series:
    """Values on a regular grid: ``values[i]`` is the rate at ``start + i * step`` (None: no data)."""

    start: float
    step: float
    values: tuple[float | None, ...]

    @property
    def end(self) -> float:
        """Time of the last grid point."""
        return self.start + (len(self.values) - 1) * self.step

    def index(self, time: float) -> int:
        return round((time - self.start) / self.step)

    def at(self, time: float) -> float | None:
        index = self.index(time)
        if 0 <= index < len(self.values):
            return self.values[index]
        return None

    def covers(self, time: float) -> bool:
        return 0 <= self.index(time) < len(self.values)

    @classmethod
    def from_samples(
        cls, samples: Iterable[tuple[float, float]], start: float, end: float, step: float
    ) -> Series:
        """A grid from (time, value) samples (a range query's answer), each put on its nearest step;
        non-finite and negative values are gaps, short gaps are interpolated."""
        count = max(0, math.floor((end - start) / step + 1e-9) + 1)
        values: list[float | None] = [None] * count
        for time, value in samples:
            index = round((time - start) / step)
            if 0 <= index < count and math.isfinite(value) and value >= 0:
                values[index] = float(value)
        return cls(start, step, tuple(fill_gaps(values, int(MAX_INTERPOLATED_GAP_SECONDS // step))))

    def first_data_time(self) -> float | None:
        for index, value in enumerate(self.values):
            if value is not None:
                return self.start + index * self.step
        return None


def fill_gaps(values: Sequence[float | None], longest: int) -> list[float | None]:
    """Linear interpolation across gaps of at most ``longest`` points between two known values."""
    filled = list(values)
    known = [(i, value) for i, value in enumerate(values) if value is not None]
    for (left, low), (right, high) in itertools.pairwise(known):
        gap = right - left - 1
        if 0 < gap <= longest:
            for offset in range(1, gap + 1):
                filled[left + offset] = low + (high - low) * offset / (gap + 1)
    return filled


@dataclass(frozen=True)
class Forecast:
    """Forecast rates at the grid points after the origin, up to the horizon."""

    method: str
    lag: float
    level_ratio: float
    origin: float
    points: tuple[tuple[float, float], ...]

    @property
    def peak(self) -> float:
        """The highest forecast rate within the horizon (what the floor must carry)."""
        return max(value for _, value in self.points)


@dataclass(frozen=True)
class NoForecast:
    """Why there is no forecast; ``reason`` is one CamelCase word, ``message`` for people."""

    reason: str
    message: str


def _level_ratio(series: Series, origin: float, lag: float, anchor: float) -> float | None:
    """Actual over seasonal rate in the anchor window before ``origin``; None without enough data."""
    points = max(1, round(anchor / series.step))
    actual = seasonal = 0.0
    found = 0
    for k in range(points):
        time = origin - k * series.step
        value, before = series.at(time), series.at(time - lag)
        if value is None or before is None:
            continue
        actual += value
        seasonal += before
        found += 1
    if found < MIN_COVERAGE * points:
        return None
    if seasonal <= 0:
        return 1.0 if actual <= 0 else MAX_LEVEL_RATIO
    return min(MAX_LEVEL_RATIO, max(MIN_LEVEL_RATIO, actual / seasonal))


def _method(lag: float, seasons: Seasons) -> str:
    return "SeasonalNaiveWeekly" if lag == seasons.week else "SeasonalNaiveDaily"


def _season(series: Series, origin: float, horizon: float, seasons: Seasons) -> tuple[float, float] | None:
    """(lag, level ratio) the rule picks at ``origin``: the weekly lag when the history holds its anchor
    window and the horizon one week back, else the daily one; None when neither is held."""
    steps = max(1, math.ceil(horizon / series.step - 1e-9))
    for lag in (seasons.week, seasons.day):
        if not series.covers(origin - lag - seasons.anchor + series.step):
            continue
        ratio = _level_ratio(series, origin, lag, seasons.anchor)
        if ratio is None:
            continue
        held = sum(1 for k in range(1, steps + 1) if series.at(origin + k * series.step - lag) is not None)
        if held < MIN_COVERAGE * steps:
            continue
        return lag, ratio
    return None


def forecast_at(series: Series, origin: float, horizon: float, seasons: Seasons) -> Forecast | NoForecast:
    """The forecast made at ``origin`` (the last time whose data it may use) for (origin, origin+horizon]."""
    chosen = _season(series, origin, horizon, seasons)
    if chosen is None:
        return NoForecast(
            "NotEnoughHistory",
            f"the forecast needs the request rate of one day and {_duration(seasons.anchor)} before now "
            f"(one week and {_duration(seasons.anchor)} for the weekly pattern); Prometheus has "
            f"{_history_span(series, origin)}",
        )
    lag, ratio = chosen
    steps = max(1, math.ceil(horizon / series.step - 1e-9))
    points = []
    for k in range(1, steps + 1):
        time = origin + k * series.step
        before = series.at(time - lag)
        if before is not None:
            points.append((time, before * ratio))
    return Forecast(_method(lag, seasons), lag, ratio, origin, tuple(points))


def day_error_percent(series: Series, now: float, horizon: float, seasons: Seasons) -> float | None:
    """MAPE of the forecasts ``horizon`` ahead over the day before ``now``, each from the data before it.

    None when less than half the day could be forecast (not enough history for a backtest).
    """
    day_points = max(1, round(seasons.day / series.step))
    lead = max(1, math.ceil(horizon / series.step - 1e-9))
    pairs: list[tuple[float, float]] = []
    for k in range(day_points):
        time = now - k * series.step
        actual = series.at(time)
        if actual is None:
            continue
        chosen = _season(series, time - lead * series.step, lead * series.step, seasons)
        if chosen is None:
            continue
        lag, ratio = chosen
        before = series.at(time - lag)
        if before is not None:
            pairs.append((actual, before * ratio))
    if len(pairs) < MIN_COVERAGE * day_points:
        return None
    peak = max(actual for actual, _ in pairs)
    considered = [(a, p) for a, p in pairs if a > 0 and a >= MAPE_FLOOR_SHARE * peak]
    if not considered:
        return 0.0
    return 100.0 * sum(abs(p - a) / a for a, p in considered) / len(considered)


@dataclass(frozen=True)
class Fit:
    """What the operator records of one fit: the forecast and its error on the most recent day."""

    forecast: Forecast
    error_percent: float | None


def fit(series: Series, now: float, horizon: float, seasons: Seasons) -> Fit | NoForecast:
    """The forecast from ``now`` (the series' last point) and the error of the same rule over the
    most recent day."""
    made = forecast_at(series, now, horizon, seasons)
    if isinstance(made, NoForecast):
        return made
    return Fit(made, day_error_percent(series, now, horizon, seasons))


def _duration(seconds: float) -> str:
    if seconds >= DAY_SECONDS and seconds % DAY_SECONDS == 0:
        days = int(seconds // DAY_SECONDS)
        return f"{days} day{'s' if days != 1 else ''}"
    if seconds >= 3600 and seconds % 3600 == 0:
        hours = int(seconds // 3600)
        return f"{hours} hour{'s' if hours != 1 else ''}"
    if seconds >= 60:
        return f"{seconds / 60:g} minutes"
    return f"{seconds:g} s"


def _history_span(series: Series, origin: float) -> str:
    first = series.first_data_time()
    if first is None or first > origin:
        return "no request-rate data"
    span = origin - first
    days, rest = divmod(span, DAY_SECONDS)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    return f"{int(days)} d {int(hours)} h {int(minutes)} min of it"


def learned_capacity(samples: Sequence[float], minimum_samples: int = 3) -> float | None:
    """Requests per second one replica serves at the queue target: the median per-replica rate over the
    moments the queue was at or above its target (the replicas were then serving all they could).
    None with fewer than ``minimum_samples`` such moments."""
    usable = sorted(value for value in samples if math.isfinite(value) and value > 0)
    if len(usable) < minimum_samples:
        return None
    middle = len(usable) // 2
    if len(usable) % 2:
        return usable[middle]
    return (usable[middle - 1] + usable[middle]) / 2
