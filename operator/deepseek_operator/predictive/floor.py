"""The autoscaler's floor from a forecast (pure, table-tested; the clock is a parameter).

- What the forecast needs: ``ceil(peak rate / rate one replica serves)``, within the autoscaler's
  ``[minReplicas, maxReplicas]``.
- Up at once: a floor that rises starts replicas now, which is the point.
- Down no faster than the scale-down policy lets the autoscaler go down: a lower floor must be wanted
  for the whole ``stabilizationWindowSeconds``, then it falls by at most ``maxPodsPerPeriod`` every
  ``periodSeconds``. The same holds when the forecast is lost (no history, Prometheus unreachable, an
  error above the bound): what is wanted is then no floor, reached at that pace.
- A floor at or below ``minReplicas`` is no floor (None): the autoscaler's own minimum holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime

from deepseek_operator.api import AutoscalingSpec


@dataclass(frozen=True)
class Bounds:
    min_replicas: int
    max_replicas: int

    @classmethod
    def of(cls, autoscaling: AutoscalingSpec) -> Bounds:
        return cls(autoscaling.min_replicas, autoscaling.max_replicas)

    def clamp(self, replicas: int) -> int:
        return min(self.max_replicas, max(self.min_replicas, replicas))


@dataclass(frozen=True)
class Pace:
    """How fast the floor may fall: the autoscaler's scale-down policy."""

    stabilization_seconds: int
    pods_per_period: int
    period_seconds: int

    @classmethod
    def of(cls, autoscaling: AutoscalingSpec) -> Pace:
        down = autoscaling.scale_down
        return cls(down.stabilization_window_seconds, down.max_pods_per_period, down.period_seconds)


@dataclass(frozen=True)
class FloorState:
    """The floor and its timers, as kept in status (so any operator replica continues from there)."""

    floor: int | None = None
    changed_at: datetime | None = None
    lower_since: datetime | None = None


NO_FLOOR = FloorState()


def replicas_needed(rate: float, per_replica: float, bounds: Bounds) -> int:
    """Replicas that serve ``rate`` requests per second at ``per_replica`` each, within the bounds."""
    if per_replica <= 0 or not math.isfinite(rate):
        raise ValueError(f"cannot size replicas for {rate} req/s at {per_replica} req/s per replica")
    # A hair under an integer is that integer: 7.9999999 req/s over 1 per replica needs 8, not 9.
    return bounds.clamp(math.ceil(max(0.0, rate) / per_replica - 1e-9))


def next_floor(
    previous: FloorState, wanted: int | None, bounds: Bounds, pace: Pace, now: datetime
) -> FloorState:
    """The floor after one look, given what the forecast wants now (None: no floor wanted)."""
    target = bounds.clamp(wanted if wanted is not None else bounds.min_replicas)
    current = bounds.clamp(previous.floor if previous.floor is not None else bounds.min_replicas)
    # A floor above a maximum lowered since is cut at once: the bounds are the spec's, not a pace's.
    changed_at = previous.changed_at
    if previous.floor is not None and current != previous.floor:
        changed_at = now
    if target >= current:
        new, lower_since = target, None
    else:
        lower_since = previous.lower_since or now
        stable = (now - lower_since).total_seconds() >= pace.stabilization_seconds
        period_over = changed_at is None or (now - changed_at).total_seconds() >= pace.period_seconds
        new = max(target, current - pace.pods_per_period) if stable and period_over else current
        if new == target:
            lower_since = None
    if new != current:
        changed_at = now
    floor = new if new > bounds.min_replicas else None
    return replace(previous, floor=floor, changed_at=changed_at, lower_since=lower_since)
