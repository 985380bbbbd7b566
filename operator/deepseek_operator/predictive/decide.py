"""One look of the predictive pre-scaler, as a pure function: from what Prometheus answered (or why it
did not), the spec and the previous status, to the new status, its condition and the floor.

The reasons the condition gives (``PredictiveScaling``):
- True ``FloorApplied``: ForecastAndScale, the forecast needs more than the autoscaler's minimum.
- True ``NoFloorNeeded``: ForecastAndScale, the minimum carries the forecast.
- True ``ForecastOnly``: the forecast and the floor it would set are in status; nothing else changes.
- False ``PrometheusUnreachable``, ``NotEnoughHistory``, ``CapacityUnknown``, ``ForecastErrorTooHigh``:
  no forecast to act on; the floor (if any) is released at the scale-down pace and the autoscaler
  scales on its reactive metrics only.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from deepseek_operator.api import (
    Condition,
    ConditionStatus,
    DeepSeekDeploymentSpec,
    PredictiveMode,
    PredictiveStatus,
)
from deepseek_operator.conditions import transition
from deepseek_operator.predictive.floor import (
    NO_FLOOR,
    Bounds,
    FloorState,
    Pace,
    next_floor,
    replicas_needed,
)
from deepseek_operator.predictive.forecast import (
    DAY_SECONDS,
    Fit,
    NoForecast,
    Seasons,
    Series,
    fit,
    learned_capacity,
)

CONDITION_TYPE = "PredictiveScaling"
CAPACITY_FROM_SPEC = "Spec"
CAPACITY_FROM_HISTORY = "History"

_SUFFIXES = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}
_QUANTITY = re.compile(r"^([0-9.]+)([eE][-+]?[0-9]+|[numkMGTPE]i?|)$")


def quantity(text: str) -> float:
    """A Kubernetes Quantity as a number: "2.5" -> 2.5, "2500m" -> 2.5, "1k" -> 1000."""
    match = _QUANTITY.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a quantity")
    number, suffix = match.groups()
    try:
        if suffix[:1] in ("e", "E"):
            return float(Decimal(number + suffix))
        return float(Decimal(number) * _SUFFIXES[suffix])
    except (InvalidOperation, KeyError) as error:
        raise ValueError(f"{text!r} is not a quantity") from error


def rate_text(rate: float) -> str:
    """A rate for status (no floats in the API): two decimals, trailing zeros dropped."""
    text = f"{rate:.2f}".rstrip("0").rstrip(".")
    return text or "0"


@dataclass(frozen=True)
class History:
    """What Prometheus answered: the request-rate series up to ``now`` (epoch seconds), and the
    per-replica rates at the moments the queue was at or above its target (for a learned capacity)."""

    series: Series
    now: float
    saturated_rates: tuple[float, ...] = ()


@dataclass(frozen=True)
class Unreachable:
    message: str


@dataclass(frozen=True)
class Decision:
    status: PredictiveStatus
    condition: Condition
    forecast_rate: float | None
    error_percent: float | None
    floor: int | None


def floor_state(previous: PredictiveStatus | None) -> FloorState:
    if previous is None:
        return NO_FLOOR
    return FloorState(previous.floor_replicas, previous.floor_changed_at, previous.lower_since)


def _condition(
    status: ConditionStatus,
    reason: str,
    message: str,
    previous: Condition | None,
    generation: int | None,
    now: datetime,
) -> Condition:
    return transition(CONDITION_TYPE, status, reason, message, generation, previous, now)


def decide(
    spec: DeepSeekDeploymentSpec,
    observed: History | Unreachable,
    previous: PredictiveStatus | None,
    previous_condition: Condition | None,
    generation: int | None,
    now: datetime,
    seasons: Seasons,
) -> Decision:
    autoscaling = spec.autoscaling
    predictive = autoscaling.predictive
    bounds = Bounds.of(autoscaling)
    # Real minutes, but for the benchmark's compressed days (Seasons.scaled): the horizon shrinks with them.
    horizon = timedelta(minutes=predictive.horizon_minutes) * (seasons.day / DAY_SECONDS)
    scale_mode = predictive.mode is PredictiveMode.FORECAST_AND_SCALE

    made: Fit | None = None
    capacity: float | None = None
    capacity_source: str | None = None
    failure: tuple[str, str] | None = None
    if isinstance(observed, Unreachable):
        failure = ("PrometheusUnreachable", observed.message)
    else:
        # The series ends at its last grid point, up to one step before now: the horizon counts from now.
        # Each point is the rate over the step before it, so the forecast takes every point whose step
        # overlaps the horizon (one step more, less a hair).
        step = observed.series.step
        ahead = horizon.total_seconds() + max(0.0, now.timestamp() - observed.now) + 0.999 * step
        outcome = fit(observed.series, observed.now, ahead, seasons)
        if isinstance(outcome, NoForecast):
            failure = (outcome.reason, outcome.message)
        else:
            made = outcome
            if predictive.requests_per_second_per_replica is not None:
                capacity, capacity_source = (
                    quantity(predictive.requests_per_second_per_replica),
                    CAPACITY_FROM_SPEC,
                )
            else:
                capacity = learned_capacity(observed.saturated_rates)
                capacity_source = CAPACITY_FROM_HISTORY
            if capacity is None or capacity <= 0:
                failure = (
                    "CapacityUnknown",
                    "the history has no moment when the queue was at or above "
                    f"autoscaling.queueDepthTargetPerReplica ({autoscaling.queue_depth_target_per_replica}), "
                    "so the rate one replica serves is unknown: set "
                    "autoscaling.predictive.requestsPerSecondPerReplica",
                )
            elif made.error_percent is None:
                failure = (
                    "NotEnoughHistory",
                    "the forecast's error cannot be measured yet: it needs the request rate of the "
                    "most recent day and of the day (or week) before it",
                )
            elif made.error_percent > predictive.max_forecast_error_percent:
                failure = (
                    "ForecastErrorTooHigh",
                    f"the forecast missed by {made.error_percent:.0f}% on average over the most recent "
                    f"day, above autoscaling.predictive.maxForecastErrorPercent "
                    f"({predictive.max_forecast_error_percent}%)",
                )

    wanted: int | None = None
    if made is not None and capacity is not None and capacity > 0:
        wanted = replicas_needed(made.forecast.peak, capacity, bounds)

    state = FloorState()
    if scale_mode:
        state = next_floor(
            floor_state(previous), wanted if failure is None else None, bounds, Pace.of(autoscaling), now
        )
    horizon_end = now + horizon
    status = PredictiveStatus(
        mode=predictive.mode,
        method=made.forecast.method if made is not None else None,
        forecast_requests_per_second=rate_text(made.forecast.peak) if made is not None else None,
        horizon_end=horizon_end if made is not None else None,
        requests_per_second_per_replica=rate_text(capacity) if capacity is not None else None,
        capacity_source=capacity_source if capacity is not None else None,
        wanted_replicas=wanted,
        floor_replicas=state.floor,
        floor_changed_at=state.changed_at,
        lower_since=state.lower_since,
        last_fit_time=now if made is not None else (previous.last_fit_time if previous else None),
        forecast_error_percent=(
            round(made.error_percent)
            if made is not None and made.error_percent is not None and math.isfinite(made.error_percent)
            else None
        ),
    )

    if failure is not None:
        reason, why = failure
        if state.floor is not None:
            after = (
                f"; the floor of {state.floor} replicas is released at the scale-down pace "
                "(autoscaling.scaleDown), then the autoscaler scales on its reactive metrics only"
            )
        else:
            after = "; no floor: the autoscaler scales on its reactive metrics only"
        condition = _condition(
            ConditionStatus.FALSE, reason, why + after, previous_condition, generation, now
        )
    else:
        assert made is not None
        assert wanted is not None
        assert capacity is not None
        told = (
            f"forecast {rate_text(made.forecast.peak)} req/s by {horizon_end.astimezone(UTC):%H:%M:%S}Z "
            f"({made.forecast.method}, {made.error_percent:.0f}% error over the most recent day) needs "
            f"{wanted} replicas at {rate_text(capacity)} req/s each"
        )
        if not scale_mode:
            reason, message = "ForecastOnly", f"{told}; mode ForecastOnly: the autoscaler is left alone"
        elif state.floor is None:
            reason, message = "NoFloorNeeded", f"{told}; minReplicas {bounds.min_replicas} carries it"
        elif state.floor > wanted:
            reason = "FloorApplied"
            message = (
                f"{told}; floor {state.floor}, falling to {max(wanted, bounds.min_replicas)} at the "
                "scale-down pace (autoscaling.scaleDown)"
            )
        else:
            reason, message = "FloorApplied", f"{told}; floor {state.floor}"
        condition = _condition(ConditionStatus.TRUE, reason, message, previous_condition, generation, now)
    return Decision(
        status=status,
        condition=condition,
        forecast_rate=made.forecast.peak if made is not None else None,
        error_percent=made.error_percent if made is not None else None,
        floor=state.floor,
    )
