"""Synthetic request-rate history, and backfilling it into the local cluster's Prometheus.

`TrafficPattern` describes a day (quiet night, a morning ramp, a plateau with a lunch dip, an evening
decline), a week (a quieter weekend), a trend (growth per day), noise and unforeseen spikes.
`openmetrics_history` writes what a deployment's engines would have exported under it (the finished
requests counter, one running-requests gauge per serving replica, the queue gauge) as OpenMetrics text,
and `backfill` turns that into TSDB blocks with `promtool tsdb create-blocks-from openmetrics` (which
Prometheus ships) in the Prometheus data directory, where Prometheus loads them on its own (it looks
for new blocks every minute).

The unit tests, hack/forecast_comparison.py, the integration tests and bench/predictive.py all draw
their series from here.
"""

from __future__ import annotations

import math
import random
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

DAY = 86_400.0
WEEK = 7 * DAY


def smoothstep(x: float) -> float:
    """0 below 0, 1 above 1, a smooth S in between."""
    x = min(1.0, max(0.0, x))
    return x * x * (3 - 2 * x)


@dataclass(frozen=True)
class Spike:
    """Extra traffic the history never had: ``extra`` times the peak rate, from ``start`` for
    ``seconds`` (times in seconds since the pattern's origin)."""

    start: float
    seconds: float
    extra: float


@dataclass(frozen=True)
class TrafficPattern:
    """Requests per second over time; ``origin`` is the epoch second of a Monday midnight."""

    origin: float = 0.0
    peak: float = 10.0
    night_share: float = 0.1
    ramp_start_hour: float = 7.0
    ramp_hours: float = 2.0
    lunch_dip: float = 0.1
    decline_start_hour: float = 18.0
    decline_hours: float = 4.0
    weekend_share: float = 0.5
    growth_per_day: float = 0.0
    noise: float = 0.0
    seed: int = 1
    spikes: tuple[Spike, ...] = ()
    # 1 for real days; bench/predictive.py compresses a day into day / time_scale seconds.
    time_scale: float = 1.0
    _noise: dict[int, float] = field(default_factory=dict, init=False, compare=False, repr=False)

    @property
    def day(self) -> float:
        return DAY / self.time_scale

    def hour_of_day(self, t: float) -> float:
        return ((t - self.origin) % self.day) / self.day * 24

    def is_weekend(self, t: float) -> bool:
        return int(((t - self.origin) // self.day) % 7) >= 5

    def shape(self, t: float) -> float:
        """The daily profile, 0..1, without trend, weekend or noise."""
        hour = self.hour_of_day(t)
        rise = smoothstep((hour - self.ramp_start_hour) / self.ramp_hours)
        fall = smoothstep((hour - self.decline_start_hour) / self.decline_hours)
        lunch = self.lunch_dip * math.exp(-(((hour - 12.5) / 0.6) ** 2))
        day = max(0.0, rise - fall - lunch * rise)
        return self.night_share + (1 - self.night_share) * day

    def rate(self, t: float, *, noisy: bool = True) -> float:
        days = (t - self.origin) / self.day
        value = self.peak * self.shape(t) * (1 + self.growth_per_day) ** days
        if self.is_weekend(t):
            value *= self.weekend_share
        for spike in self.spikes:
            if spike.start <= t - self.origin < spike.start + spike.seconds:
                value += spike.extra * self.peak
        if noisy and self.noise > 0:
            # The same noise for the same minute of the (compressed) day, whoever asks.
            minute = int((t - self.origin) // (60 / self.time_scale))
            if minute not in self._noise:
                generator = random.Random(self.seed * 1_000_003 + minute)
                self._noise[minute] = float(math.exp(generator.gauss(0, self.noise)))
            value *= self._noise[minute]
        return float(value)


def aligned_origin(now: float, pattern: TrafficPattern, ramp_in_seconds: float) -> float:
    """An origin (a Monday midnight) such that today's ramp starts ``ramp_in_seconds`` after ``now``."""
    ramp_at = now + ramp_in_seconds
    origin = ramp_at - pattern.ramp_start_hour / 24 * pattern.day
    # Back to a Monday at least a week before, so that the whole history is weekdays and weekends.
    weekday = 2  # today is a Wednesday in the pattern's calendar
    return origin - (weekday + 7) * pattern.day


def series(pattern: TrafficPattern, start: float, end: float, step: float) -> list[tuple[float, float]]:
    count = int((end - start) // step) + 1
    return [(start + k * step, pattern.rate(start + k * step)) for k in range(count)]


@dataclass(frozen=True)
class EngineSeries:
    """What one deployment's engines export, as the Prometheus series the operator reads."""

    namespace: str
    model: str
    engine: str = "vllm"

    @property
    def names(self) -> tuple[str, str, str]:
        """(finished-requests counter family, running gauge, waiting gauge)."""
        if self.engine == "sglang":
            return "sglang:num_requests", "sglang:num_running_reqs", "sglang:num_queue_reqs"
        return "vllm:request_success", "vllm:num_requests_running", "vllm:num_requests_waiting"


def openmetrics_history(
    target: EngineSeries,
    rate: Callable[[float], float],
    start: float,
    end: float,
    step: float,
    per_replica: float,
    queue_target: int,
    max_replicas: int = 64,
) -> Iterator[str]:
    """OpenMetrics lines of a deployment whose autoscaler kept just too few replicas for the demand
    ``rate`` (``floor(rate / per_replica)``, at least one), as a reactive one does while traffic rises:
    whenever the demand exceeds what they serve, each replica serves ``per_replica`` req/s and its queue
    is at ``queue_target``.

    The counter counts served requests, cumulatively (as an engine's does), so ``rate()`` over it gives
    the served rate back. Each replica is one series of the running gauge with a ``pod`` label, present
    while it serves.
    """
    counter, running, waiting = target.names
    base = f'namespace="{target.namespace}",model_name="{target.model}"'
    lines_by_family: dict[str, list[str]] = {counter: [], running: [], waiting: []}
    total = 0.0
    count = int((end - start) // step) + 1
    for k in range(count):
        t = start + k * step
        demand = max(0.0, rate(t))
        replicas = max(1, min(max_replicas, math.floor(demand / per_replica + 1e-9)))
        served = min(demand, replicas * per_replica)
        saturated = demand >= replicas * per_replica * 0.999
        total += served * step
        stamp = f"{t:.3f}"
        lines_by_family[counter].append(
            f'{counter}_total{{{base},pod="history",finished_reason="stop"}} {total:.3f} {stamp}'
        )
        for replica in range(replicas):
            lines_by_family[running].append(
                f'{running}{{{base},pod="history-{replica}"}} {served / replicas:.3f} {stamp}'
            )
        lines_by_family[waiting].append(
            f'{waiting}{{{base},pod="history-0"}} {queue_target if saturated else 0} {stamp}'
        )
    kinds = {counter: "counter", running: "gauge", waiting: "gauge"}
    for family, lines in lines_by_family.items():
        yield f"# TYPE {family} {kinds[family]}"
        if family == running:
            # Series by series, each in time order (promtool wants a series' samples in order).
            lines.sort(key=lambda line: line.split("}", 1)[0])
        yield from lines
    yield "# EOF"


def backfill(promtool: Path, data_dir: Path, lines: Iterator[str]) -> None:
    """TSDB blocks from OpenMetrics lines, written into a Prometheus data directory."""
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "history.om.txt"
        with source.open("w") as handle:
            for line in lines:
                handle.write(line + "\n")
        output = Path(scratch) / "blocks"
        result = subprocess.run(
            [str(promtool), "tsdb", "create-blocks-from", "openmetrics", str(source), str(output)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"promtool create-blocks-from openmetrics failed: {result.stderr.strip()}")
        data_dir.mkdir(parents=True, exist_ok=True)
        for block in output.iterdir():
            block.rename(data_dir / block.name)


def wait_for_history(query: Callable[[str], Sequence[object]], expression: str, timeout: float = 150) -> None:
    """Until Prometheus answers ``expression`` (e.g. the oldest sample of the backfilled series):
    it loads blocks found in its data directory at its next block reload (every minute)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if query(expression):
            return
        time.sleep(2)
    raise TimeoutError(f"Prometheus did not load the backfilled blocks within {timeout:.0f}s ({expression})")
