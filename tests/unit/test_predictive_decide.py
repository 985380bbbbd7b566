"""One look of the pre-scaler, pure: the status, the condition and the floor it decides; and the seam
through which the floor reaches the autoscaler the reconcile renders."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from deepseek_operator.api import DeepSeekDeploymentSpec, PredictiveStatus
from deepseek_operator.placement import autoscaler_floor
from deepseek_operator.predictive.decide import (
    CONDITION_TYPE,
    History,
    Unreachable,
    decide,
    quantity,
    rate_text,
)
from deepseek_operator.predictive.forecast import Seasons, Series
from deepseek_operator.render import render_children
from localcluster.history import DAY, TrafficPattern

STEP = 300.0
# 10 minutes before Thursday's ramp (day 3 of a pattern whose origin is a Monday).
NOW = 3 * DAY + 7 * 3600 - 600
PATTERN = TrafficPattern(peak=20, ramp_hours=5 / 60, night_share=0.05, weekend_share=1.0)


def spec(mode: str = "ForecastAndScale", **predictive: Any) -> DeepSeekDeploymentSpec:
    return DeepSeekDeploymentSpec.model_validate(
        {
            "model": {"name": "m"},
            "regions": [{"name": "us-east", "role": "Active"}],
            "failover": {"enabled": False},
            "autoscaling": {
                "enabled": True,
                "minReplicas": 1,
                "maxReplicas": 12,
                "scaleDown": {"stabilizationWindowSeconds": 300, "maxPodsPerPeriod": 2, "periodSeconds": 60},
                "predictive": {"enabled": True, "mode": mode, **predictive},
            },
            "monitoring": {"prometheusUrl": "http://prometheus:9090"},
        }
    )


def history(days: float = 3, saturated: tuple[float, ...] = (), pattern: TrafficPattern = PATTERN) -> History:
    start = NOW - days * DAY - 3600
    samples = [
        (start + k * STEP, pattern.rate(start + k * STEP)) for k in range(int((NOW - start) // STEP) + 1)
    ]
    return History(Series.from_samples(samples, start, NOW, STEP), NOW, saturated)


def when(seconds: float = 0) -> datetime:
    return datetime.fromtimestamp(NOW + seconds, UTC)


def test_forecast_and_scale_raises_the_floor_before_the_peak() -> None:
    decision = decide(spec(requestsPerSecondPerReplica="2"), history(), None, None, 3, when(), Seasons())
    assert decision.condition.type == CONDITION_TYPE
    assert decision.condition.status.value == "True"
    assert decision.condition.reason == "FloorApplied"
    # The peak (20 req/s) is inside the 15-minute horizon: 10 replicas at 2 req/s each.
    assert decision.status.wanted_replicas == 10
    assert decision.floor == 10
    assert decision.status.floor_replicas == 10
    assert decision.status.capacity_source == "Spec"
    assert decision.status.method == "SeasonalNaiveDaily"
    assert decision.status.last_fit_time == when()
    assert decision.status.horizon_end == when(900)
    assert decision.status.forecast_error_percent is not None
    assert decision.status.forecast_error_percent < 10
    assert "needs 10 replicas at 2 req/s each; floor 10" in (decision.condition.message or "")


def test_forecast_only_changes_nothing_but_status() -> None:
    decision = decide(
        spec("ForecastOnly", requestsPerSecondPerReplica="2"), history(), None, None, 3, when(), Seasons()
    )
    assert decision.condition.reason == "ForecastOnly"
    assert decision.status.wanted_replicas == 10
    assert decision.floor is None
    assert decision.status.floor_replicas is None
    status = {"predictive": decision.status.model_dump(mode="json", by_alias=True, exclude_none=True)}
    assert autoscaler_floor(spec("ForecastOnly"), status) is None


def test_the_capacity_is_learned_from_saturated_moments_when_not_given() -> None:
    decision = decide(spec(), history(saturated=(2.4, 2.6, 2.5, 2.5)), None, None, 3, when(), Seasons())
    assert decision.status.capacity_source == "History"
    assert decision.status.requests_per_second_per_replica == "2.5"
    assert decision.status.wanted_replicas == 8
    unknown = decide(spec(), history(saturated=(2.5,)), None, None, 3, when(), Seasons())
    assert unknown.condition.reason == "CapacityUnknown"
    assert "requestsPerSecondPerReplica" in (unknown.condition.message or "")
    assert unknown.floor is None


@pytest.mark.parametrize(
    ("observed", "reason", "says"),
    [
        (Unreachable("connection refused"), "PrometheusUnreachable", "connection refused"),
        (history(days=0.2), "NotEnoughHistory", "Prometheus has 0 d 5 h"),
        (history(days=1), "NotEnoughHistory", "error cannot be measured yet"),
    ],
)
def test_without_a_forecast_there_is_no_floor_and_the_condition_says_why(
    observed: History | Unreachable, reason: str, says: str
) -> None:
    decision = decide(spec(requestsPerSecondPerReplica="2"), observed, None, None, 3, when(), Seasons())
    assert decision.condition.status.value == "False"
    assert decision.condition.reason == reason
    assert says in (decision.condition.message or "")
    assert "no floor: the autoscaler scales on its reactive metrics only" in (
        decision.condition.message or ""
    )
    assert decision.floor is None


def test_an_error_above_the_bound_is_no_floor() -> None:
    decision = decide(
        spec(requestsPerSecondPerReplica="2", maxForecastErrorPercent=5),
        history(pattern=TrafficPattern(peak=20, weekend_share=1.0, noise=0.2)),
        None,
        None,
        3,
        when(),
        Seasons(),
    )
    assert decision.condition.reason == "ForecastErrorTooHigh"
    assert "above autoscaling.predictive.maxForecastErrorPercent (5%)" in (decision.condition.message or "")
    assert decision.floor is None


def test_a_floor_lost_with_prometheus_is_released_at_the_scale_down_pace() -> None:
    raised = decide(spec(requestsPerSecondPerReplica="2"), history(), None, None, 3, when(), Seasons())
    held = decide(spec(), Unreachable("refused"), raised.status, raised.condition, 3, when(60), Seasons())
    assert held.floor == 10
    assert held.condition.reason == "PrometheusUnreachable"
    assert "released at the scale-down pace" in (held.condition.message or "")
    # 300 s window, then 2 pods per 60 s.
    steps = [held]
    for seconds in range(120, 1200, 60):
        previous = steps[-1]
        steps.append(
            decide(
                spec(),
                Unreachable("refused"),
                previous.status,
                previous.condition,
                3,
                when(seconds),
                Seasons(),
            )
        )
    floors = [s.floor for s in steps]
    assert floors[:5] == [10, 10, 10, 10, 10]
    assert floors[5] == 8
    assert None in floors
    # The transition time is the first False, not the latest look.
    assert steps[-1].condition.last_transition_time == when(60)


@pytest.mark.parametrize(
    ("text", "value"),
    [("2", 2.0), ("2.5", 2.5), ("2500m", 2.5), ("1k", 1000.0), ("1e1", 10.0), ("0.5", 0.5)],
)
def test_quantity(text: str, value: float) -> None:
    assert quantity(text) == value


def test_rate_text_has_no_float_noise() -> None:
    assert [rate_text(v) for v in (2.0, 2.5, 12.345, 0.0)] == ["2", "2.5", "12.35", "0"]


def _floor_status(floor: int) -> dict[str, Any]:
    return {"predictive": PredictiveStatus(floor_replicas=floor).model_dump(by_alias=True, exclude_none=True)}


@pytest.mark.parametrize(
    ("the_spec", "floor", "expected"),
    [
        (spec(), 7, 7),
        (spec(), 1, None),  # at the minimum: no floor
        (spec(), 40, 12),  # bounded by the maximum
        (spec("ForecastOnly"), 7, None),
        (spec(enabled=False), 7, None),  # switched off: the floor goes at the next reconcile
    ],
)
def test_the_seam_reads_the_floor_from_status_only_when_the_spec_asks(
    the_spec: DeepSeekDeploymentSpec, floor: int, expected: int | None
) -> None:
    assert autoscaler_floor(the_spec, _floor_status(floor)) == expected
    assert autoscaler_floor(the_spec, None) is None


@pytest.mark.parametrize("provider", ["hpa", "keda"])
def test_the_floor_is_the_autoscalers_minimum(provider: str) -> None:
    document = spec().model_dump(mode="json", by_alias=True)
    document["autoscaling"]["provider"] = provider
    the_spec = DeepSeekDeploymentSpec.model_validate(document)
    key = "minReplicaCount" if provider == "keda" else "minReplicas"
    kind = "ScaledObject" if provider == "keda" else "HorizontalPodAutoscaler"

    def minimum(floor: int | None) -> int:
        (autoscaler,) = [
            c for c in render_children("r1", "ns", the_spec, autoscaler_floor=floor) if c["kind"] == kind
        ]
        value: int = autoscaler["spec"][key]
        return value

    assert minimum(None) == 1
    assert minimum(7) == 7
    assert minimum(99) == 12


def test_the_floor_reaches_the_rendered_autoscaler_through_the_reconcile_seam() -> None:
    """What the reconcile does with status: placement's seam, then rendering."""
    the_spec = spec()
    floor = autoscaler_floor(the_spec, _floor_status(6))
    (hpa,) = [
        c
        for c in render_children("r1", "ns", the_spec, autoscaler_floor=floor)
        if c["kind"] == "HorizontalPodAutoscaler"
    ]
    assert hpa["spec"]["minReplicas"] == 6
    assert hpa["spec"]["maxReplicas"] == 12


def test_status_is_written_when_something_changed_and_otherwise_every_few_minutes() -> None:
    from deepseek_operator.predictive.controller import STATUS_REFRESH_SECONDS, worth_writing

    first = decide(spec(requestsPerSecondPerReplica="2"), history(), None, None, 3, when(), Seasons())
    assert worth_writing(None, None, first.status, first.condition, when())
    # A minute later, the same floor and reason: only lastFitTime and the forecast moved.
    again = decide(
        spec(requestsPerSecondPerReplica="2"),
        history(),
        first.status,
        first.condition,
        3,
        when(60),
        Seasons(),
    )
    assert not worth_writing(first.status, first.condition, again.status, again.condition, when(60))
    later = decide(
        spec(requestsPerSecondPerReplica="2"),
        history(),
        first.status,
        first.condition,
        3,
        when(STATUS_REFRESH_SECONDS),
        Seasons(),
    )
    assert worth_writing(
        first.status, first.condition, later.status, later.condition, when(STATUS_REFRESH_SECONDS)
    )
    # Prometheus lost: the reason changes, written at once.
    lost = decide(spec(), Unreachable("refused"), first.status, first.condition, 3, when(60), Seasons())
    assert worth_writing(first.status, first.condition, lost.status, lost.condition, when(60))
    # A new generation of the spec is acknowledged at once.
    newer = decide(
        spec(requestsPerSecondPerReplica="2"),
        history(),
        first.status,
        first.condition,
        4,
        when(60),
        Seasons(),
    )
    assert worth_writing(first.status, first.condition, newer.status, newer.condition, when(60))
