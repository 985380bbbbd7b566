"""The forecaster on synthetic series: a daily peak, a weekly pattern, a trend, noise and gaps."""

from __future__ import annotations

import pytest
from deepseek_operator.predictive.forecast import (
    DAY_SECONDS,
    Forecast,
    NoForecast,
    Seasons,
    Series,
    day_error_percent,
    fill_gaps,
    fit,
    forecast_at,
    learned_capacity,
)
from localcluster.history import DAY, TrafficPattern

STEP = 300.0
HORIZON = 900.0


def grid(pattern: TrafficPattern, start: float, end: float, drop: set[int] | None = None) -> Series:
    samples = [
        (start + k * STEP, pattern.rate(start + k * STEP))
        for k in range(int((end - start) // STEP) + 1)
        if k not in (drop or set())
    ]
    return Series.from_samples(samples, start, end, STEP)


def at_hour(day: int, hour: float) -> float:
    return day * DAY + hour * 3600


def test_a_daily_peak_is_forecast_before_it_starts() -> None:
    """Three weekdays of history, ten minutes before the ramp: the horizon already holds the peak."""
    pattern = TrafficPattern(peak=20, ramp_hours=0.25, weekend_share=1.0)
    now = at_hour(3, 7) - 600
    made = forecast_at(grid(pattern, now - 3 * DAY, now), now, HORIZON, Seasons())
    assert isinstance(made, Forecast)
    assert made.method == "SeasonalNaiveDaily"
    current = pattern.rate(now)
    assert current < 3  # night time now
    assert made.peak == pytest.approx(pattern.rate(now + HORIZON), rel=0.05)
    assert made.peak > 3 * current


def test_the_weekly_pattern_forecasts_monday_from_last_monday_not_from_sunday() -> None:
    pattern = TrafficPattern(peak=20, weekend_share=0.3)
    monday_morning = at_hour(14, 9)  # day 14 is a Monday (the origin is a Monday)
    series = grid(pattern, monday_morning - 8 * DAY, monday_morning)
    made = forecast_at(series, monday_morning, HORIZON, Seasons())
    assert isinstance(made, Forecast)
    assert made.method == "SeasonalNaiveWeekly"
    assert made.peak == pytest.approx(pattern.rate(monday_morning + HORIZON), rel=0.05)
    # Only one day of history back: the daily lag (Sunday) anchored to Monday's level still lands close.
    short = grid(pattern, monday_morning - 1 * DAY - 3600, monday_morning)
    daily = forecast_at(short, monday_morning, HORIZON, Seasons())
    assert isinstance(daily, Forecast)
    assert daily.method == "SeasonalNaiveDaily"


def test_a_trend_is_carried_by_the_level_ratio() -> None:
    pattern = TrafficPattern(peak=20, growth_per_day=0.05, weekend_share=1.0)
    now = at_hour(10, 11)
    made = forecast_at(grid(pattern, now - 7 * DAY - 3600, now), now, HORIZON, Seasons())
    assert isinstance(made, Forecast)
    assert made.level_ratio == pytest.approx(1.05**7, rel=0.02)
    assert made.peak == pytest.approx(pattern.rate(now + HORIZON), rel=0.03)
    # The plain weekly lag would be 30 % short.
    assert pattern.rate(now + HORIZON - 7 * DAY) < 0.75 * made.peak


def test_noise_shows_in_the_error_of_the_most_recent_day() -> None:
    quiet = TrafficPattern(peak=20, weekend_share=1.0)
    noisy = TrafficPattern(peak=20, weekend_share=1.0, noise=0.15)
    now = at_hour(9, 12)
    quiet_error = day_error_percent(grid(quiet, now - 8 * DAY - 3600, now), now, HORIZON, Seasons())
    noisy_error = day_error_percent(grid(noisy, now - 8 * DAY - 3600, now), now, HORIZON, Seasons())
    assert quiet_error is not None
    assert noisy_error is not None
    assert quiet_error < 2
    assert 8 < noisy_error < 40


def test_gaps_are_interpolated_when_short_and_kept_when_long() -> None:
    assert fill_gaps([1.0, None, None, 4.0], longest=2) == [1.0, 2.0, 3.0, 4.0]
    assert fill_gaps([1.0, None, None, None, 5.0], longest=2) == [1.0, None, None, None, 5.0]
    assert fill_gaps([None, 1.0, None], longest=5) == [None, 1.0, None]
    pattern = TrafficPattern(peak=20, weekend_share=1.0, noise=0.05)
    now = at_hour(9, 8)
    # Lost scrapes every hour and a 4-hour outage yesterday: the forecast and its error still stand.
    outage = set(range(int((DAY - 6 * 3600) // STEP), int((DAY - 2 * 3600) // STEP)))
    lost = {k for k in range(int(8 * DAY // STEP)) if k % 12 == 5} | {
        int((8 * DAY + 3600) // STEP) - k for k in outage
    }
    series = grid(pattern, now - 8 * DAY - 3600, now, drop=lost)
    assert None in series.values  # the long outage stayed a gap
    made = fit(series, now, HORIZON, Seasons())
    assert not isinstance(made, NoForecast)
    assert made.forecast.peak == pytest.approx(pattern.rate(now + HORIZON, noisy=False), rel=0.2)
    assert made.error_percent is not None
    assert made.error_percent < 15


def test_too_little_history_is_no_forecast_and_says_how_much_there_is() -> None:
    pattern = TrafficPattern(peak=20)
    now = at_hour(3, 9)
    made = fit(grid(pattern, now - 5 * 3600, now), now, HORIZON, Seasons())
    assert isinstance(made, NoForecast)
    assert made.reason == "NotEnoughHistory"
    assert "0 d 5 h 0 min" in made.message
    # One day and an hour forecasts, but its error over the most recent day needs one more day.
    enough = fit(grid(pattern, now - DAY - 3600, now), now, HORIZON, Seasons())
    assert not isinstance(enough, NoForecast)
    assert enough.error_percent is None


def test_a_compressed_calendar_forecasts_the_same_shape() -> None:
    """The benchmark's time scale: a day of 1440 s on a 5 s grid behaves as a real day on 5 minutes."""
    scale = 60.0
    pattern = TrafficPattern(peak=20, ramp_hours=0.5, weekend_share=1.0, time_scale=scale)
    seasons = Seasons().scaled(scale)
    assert seasons.day == DAY_SECONDS / scale
    step = STEP / scale
    now = 3 * pattern.day + 7 * 3600 / scale - 600 / scale
    start = now - 2 * pattern.day - seasons.anchor
    samples = [
        (start + k * step, pattern.rate(start + k * step)) for k in range(int((now - start) // step) + 1)
    ]
    made = forecast_at(Series.from_samples(samples, start, now, step), now, HORIZON / scale, seasons)
    assert isinstance(made, Forecast)
    assert made.peak == pytest.approx(pattern.rate(now + HORIZON / scale), rel=0.05)


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        ([2.0, 2.2, 1.8], 2.0),
        ([1.0, 3.0, 2.0, 4.0], 2.5),
        ([2.0, 0.0, float("nan"), 2.4, 2.2], 2.2),
        ([2.0, 2.2], None),
        ([], None),
    ],
)
def test_the_learned_capacity_is_the_median_of_saturated_moments(
    samples: list[float], expected: float | None
) -> None:
    assert learned_capacity(samples) == expected
