"""Which forecaster for predictive pre-scaling: accuracy and cost, measured (docs/forecasting.md).

Candidates, each forecasting the request rate 15 minutes ahead from the 7 days (plus one hour) before
the moment of the forecast, on a 5-minute grid, as the operator does:
- seasonal naive, daily lag:  y(t - 1 day)
- seasonal naive, weekly lag: y(t - 7 days)
- the operator's anchored seasonal naive (`deepseek_operator.predictive.forecast`): the weekly lag when
  the history holds it, else the daily one, scaled by the last hour's level against the same hour one
  lag earlier
- statsmodels Holt-Winters (ExponentialSmoothing: additive damped trend, multiplicative daily season of
  288 steps), fitted anew at each forecast (a weekly season of 2016 steps cannot be fitted from 7 days:
  it needs two full seasons)
- statsmodels SARIMA (SARIMAX (1,0,1)x(0,1,1) with the daily season), at most a few fits: its cost
  decides it

Accuracy: MAPE on the 7 held-out days (the last week of 5 weeks of synthetic history: a morning ramp,
a quieter weekend, 1 %/day growth, 8 % noise, unforeseen spikes; a second series adds gaps), forecasts
made every hour for the next 15 minutes, over points above 5 % of the day's peak (as the operator's
own error). Cost: fit time per forecast, peak memory of one fit (tracemalloc), import time and memory,
installed size of the library with its dependencies.

Run it where statsmodels is installed (it is not an operator dependency), e.g.:

    python3 -m venv /tmp/forecast && /tmp/forecast/bin/pip install statsmodels kopf kubernetes pydantic pyyaml prometheus-client
    PYTHONPATH=operator:e2e /tmp/forecast/bin/python hack/forecast_comparison.py
"""

from __future__ import annotations

import argparse
import importlib.metadata
import statistics
import subprocess
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from deepseek_operator.predictive.forecast import MAPE_FLOOR_SHARE, Seasons, Series, fit, forecast_at
from localcluster.history import DAY, WEEK, Spike, TrafficPattern

STEP = 300.0
HORIZON = 900.0
HISTORY = WEEK + 3600.0
DAY_STEPS = int(DAY // STEP)

Forecaster = Callable[[Series, float], list[float] | None]


def grid(pattern: TrafficPattern, days: int, gaps: bool) -> Series:
    values: list[float | None] = [pattern.rate(k * STEP) for k in range(int(days * DAY // STEP))]
    if gaps:
        for k in range(len(values)):
            if k % 37 == 0 or ((k % DAY_STEPS) in range(100, 124) and (k // DAY_STEPS) % 9 == 4):
                values[k] = None  # scattered lost scrapes, and a 2-hour outage every 9th day
    return Series(0.0, STEP, tuple(values))


def window(series: Series, origin: float) -> Series:
    """What the operator would read at ``origin``: the history before it, never after."""
    first = max(0, series.index(origin - HISTORY))
    last = series.index(origin)
    return Series(series.start + first * STEP, STEP, series.values[first : last + 1])


def filled(values: Sequence[float | None]) -> list[float]:
    out: list[float] = []
    for value in values:
        out.append(value if value is not None else (out[-1] if out else 0.0))
    return out


def naive(lag: float) -> Forecaster:
    def forecast(history: Series, origin: float) -> list[float] | None:
        points = [history.at(origin + k * STEP - lag) for k in (1, 2, 3)]
        return None if any(p is None for p in points) else [p for p in points if p is not None]

    return forecast


def anchored(history: Series, origin: float) -> list[float] | None:
    made = forecast_at(history, origin, HORIZON, Seasons())
    if not hasattr(made, "points"):
        return None
    return [value for _, value in made.points]  # type: ignore[union-attr]


def holt_winters(history: Series, origin: float) -> list[float] | None:
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    values = [max(v, 1e-3) for v in filled(history.values)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ExponentialSmoothing(
            values, trend="add", damped_trend=True, seasonal="mul", seasonal_periods=DAY_STEPS
        ).fit()
    return [float(v) for v in model.forecast(3)]


def sarima(history: Series, origin: float) -> list[float] | None:
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    values = filled(history.values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = SARIMAX(values, order=(1, 0, 1), seasonal_order=(0, 1, 1, DAY_STEPS)).fit(disp=False)
    return [float(v) for v in model.forecast(3)]


@dataclass
class Result:
    name: str
    errors: list[float]
    fit_seconds: list[float]
    peak_bytes: int = 0
    skipped: str = ""

    @property
    def mape(self) -> float:
        return 100 * statistics.fmean(self.errors) if self.errors else float("nan")


def evaluate(name: str, forecaster: Forecaster, series: Series, origins: list[float]) -> Result:
    result = Result(name, [], [])
    for index, origin in enumerate(origins):
        history = window(series, origin)
        # The second fit's peak: the first one also pays for importing the library.
        if index == 1:
            tracemalloc.start()
        started = time.perf_counter()
        try:
            predicted = forecaster(history, origin)
        except ImportError as error:
            return replace(result, skipped=f"not installed ({error.name})")
        result.fit_seconds.append(time.perf_counter() - started)
        if index == 1:
            result.peak_bytes = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        if predicted is None:
            continue
        day = int(origin // DAY)
        peak = max(v for v in series.values[day * DAY_STEPS : (day + 1) * DAY_STEPS] if v is not None)
        for k, value in enumerate(predicted, start=1):
            actual = series.at(origin + k * STEP)
            if actual is not None and actual > 0 and actual >= MAPE_FLOOR_SHARE * peak:
                result.errors.append(abs(value - actual) / actual)
    return result


def sarima_cost(limit: int) -> str:
    """Time and peak memory (max RSS) of one SARIMA fit on 7 days, in a child process given ``limit`` s."""
    code = (
        "import re, sys, time\n"
        "sys.path[:0] = " + repr(sys.path) + "\n"
        "import forecast_comparison as c\n"
        "from localcluster.history import TrafficPattern\n"
        "series = c.grid(TrafficPattern(peak=20.0, growth_per_day=0.01, noise=0.08), 9, False)\n"
        "origin = 8 * c.DAY + 10 * 3600\n"
        "t = time.perf_counter(); c.sarima(c.window(series, origin), origin)\n"
        "hwm = int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)) / 1024\n"
        "print(f'{time.perf_counter() - t:.0f} s, peak resident memory {hwm:.0f} MB')\n"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=limit,
            check=False,
            cwd=Path(__file__).parent,
        )
    except subprocess.TimeoutExpired:
        return f"did not finish within {limit} s"
    return done.stdout.strip() or f"failed: {done.stderr.strip()[-200:]}"


def installed_megabytes(distribution: str, seen: set[str] | None = None) -> float:
    """Size on disk of a distribution and of what it requires (extras aside), each counted once."""
    seen = set() if seen is None else seen
    key = distribution.lower().replace("_", "-")
    if key in seen:
        return 0.0
    seen.add(key)
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return 0.0
    size = sum((f.size or 0) for f in dist.files or [])
    for requirement in dist.requires or []:
        if "extra ==" in requirement:
            continue
        name = requirement.split(";")[0].strip().split(" ")[0]
        for separator in "<>=!~[(":
            name = name.split(separator)[0]
        size += installed_megabytes(name, seen) * 1e6
    return size / 1e6


def import_cost(module: str) -> str:
    # Resident memory from /proc (ru_maxrss of a child would include its parent's, copied at fork).
    code = (
        "import re, time\n"
        "def rss(): return int(re.search(r'VmRSS:\\s+(\\d+)', open('/proc/self/status').read()).group(1)) / 1024\n"
        "before = rss(); t = time.perf_counter()\n"
        f"import {module}\n"
        "print(f'{time.perf_counter() - t:.2f} s, resident memory +{rss() - before:.0f} MB')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "not installed"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--every-hours", type=int, default=2, help="hours between two forecasts")
    parser.add_argument(
        "--sarima-seconds", type=int, default=300, help="time one SARIMA fit may take (0: skip SARIMA)"
    )
    args = parser.parse_args()
    base = TrafficPattern(
        peak=20.0,
        growth_per_day=0.01,
        noise=0.08,
        spikes=(Spike(31 * DAY + 14 * 3600, 1800, 0.6), Spike(33 * DAY + 10 * 3600, 3600, 0.4)),
    )
    days = 35
    origins = [(days - 7) * DAY + h * 3600.0 for h in range(0, 7 * 24, args.every_hours)]
    methods: list[tuple[str, Forecaster]] = [
        ("seasonal naive, daily lag", naive(DAY)),
        ("seasonal naive, weekly lag", naive(WEEK)),
        ("anchored seasonal naive (operator)", anchored),
        ("statsmodels Holt-Winters (daily season)", holt_winters),
    ]
    print(f"python {sys.version.split()[0]}; 7 held-out days, {len(origins)} forecasts of 15 min each")
    for label, gaps in (("weekly pattern, trend, noise, spikes", False), ("the same with gaps", True)):
        series = grid(base, days, gaps)
        print(f"\nseries: {label}")
        print(f"  {'method':<42} {'MAPE':>7} {'fit (median)':>14} {'one fit, peak memory':>22}")
        for name, forecaster in methods:
            result = evaluate(name, forecaster, series, origins)
            if result.skipped:
                print(f"  {name:<42} {result.skipped}")
                continue
            print(
                f"  {name:<42} {result.mape:6.1f}% {statistics.median(result.fit_seconds) * 1000:11.1f} ms "
                f"{result.peak_bytes / 1e6:18.1f} MB"
            )
        if not gaps and args.sarima_seconds > 0:
            print(f"  {'statsmodels SARIMA (daily season)':<42} one fit: {sarima_cost(args.sarima_seconds)}")
    # What the operator does at each look: the forecast and its error over the most recent day.
    series = grid(base, days, False)
    seconds = []
    for origin in origins[:24]:
        started = time.perf_counter()
        fit(window(series, origin), origin, HORIZON, Seasons())
        seconds.append(time.perf_counter() - started)
    tracemalloc.start()
    fit(window(series, origins[0]), origins[0], HORIZON, Seasons())
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(
        f"\nthe operator's whole look (forecast + its error over the most recent day): "
        f"{statistics.median(seconds) * 1000:.1f} ms, peak memory {peak / 1e3:.0f} kB"
    )
    print("\nlibrary cost (this interpreter):")
    for distribution, module in (
        ("prometheus-api-client", "prometheus_api_client.prometheus_connect"),
        ("numpy", "numpy"),
        ("statsmodels", "statsmodels.tsa.holtwinters"),
    ):
        size = installed_megabytes(distribution)
        shown = f"{size:6.1f} MB installed with its dependencies" if size else "not installed"
        print(f"  {distribution:<24} {shown}; import: {import_cost(module)}")
    here = Path(__file__).resolve().parents[1] / "operator" / "deepseek_operator" / "predictive"
    print(
        f"  {'the operator forecaster':<24} {sum(p.stat().st_size for p in here.glob('*.py')) / 1e3:.0f} kB of Python, no dependency"
    )


if __name__ == "__main__":
    main()
