"""The failover state machine, table-tested: sequences of checks with an injected clock, and what status,
events and conditions each step gives. No cluster, no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from deepseek_operator.api import (
    ConditionStatus,
    ConditionType,
    DeepSeekDeploymentSpec,
    FailoverPhase,
    FailoverSignal,
    FailoverStatus,
    RegionHealthState,
)
from deepseek_operator.failover.checks import Outcome, RegionCheck, SignalResult
from deepseek_operator.failover.decision import Decision, step
from deepseek_operator.placement import failover_routing

T0 = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
EAST, WEST, NORTH = "us-east", "eu-west", "eu-north"


def make_spec(
    failover: Mapping[str, Any] | None = None, regions: Sequence[tuple[str, str]] | None = None
) -> DeepSeekDeploymentSpec:
    return DeepSeekDeploymentSpec.model_validate(
        {
            "model": {"name": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"},
            "regions": [
                {"name": name, "role": role}
                for name, role in (regions or [(EAST, "Active"), (WEST, "Standby")])
            ],
            "replicas": 2,
            "failover": {
                "probeIntervalSeconds": 1,
                "failureThreshold": 3,
                "successThreshold": 2,
                "minActiveSeconds": 30,
                "switchTimeoutSeconds": 10,
                **(failover or {}),
            },
        }
    )


def result(
    outcome: Outcome, signal: FailoverSignal = FailoverSignal.PODS_NOT_READY, message: str = ""
) -> SignalResult:
    return SignalResult(signal, outcome, message or outcome.value)


def ok(region: str, ready: int = 2, engine: Outcome | None = None) -> RegionCheck:
    results = [result(Outcome.PASS), result(Outcome.PASS, FailoverSignal.NODES_NOT_READY)]
    if engine is not None:
        results.append(result(engine, FailoverSignal.ENGINE_UNHEALTHY))
    return RegionCheck(region, tuple(results), ready_replicas=ready, serving_replicas=ready)


def bad(
    region: str,
    ready: int = 2,
    serving: int | None = None,
    signal: FailoverSignal = FailoverSignal.ERROR_RATE,
    error_ratio: float | None = 0.2,
) -> RegionCheck:
    """A failing check; by default the region still has replicas that serve (degraded, not down)."""
    return RegionCheck(
        region,
        (
            result(Outcome.FAIL, signal, "too many errors"),
            result(Outcome.PASS, FailoverSignal.NODES_NOT_READY),
        ),
        ready_replicas=ready,
        serving_replicas=ready if serving is None else serving,
        error_ratio=error_ratio,
    )


def down(region: str) -> RegionCheck:
    return RegionCheck(region, (result(Outcome.FAIL, FailoverSignal.NODES_NOT_READY, "nodes gone"),), 0, 0)


def unknown(region: str) -> RegionCheck:
    return RegionCheck(
        region, (result(Outcome.UNKNOWN, FailoverSignal.ERROR_RATE, "Prometheus: connection refused"),), 2, 2
    )


@dataclass
class Run:
    """Steps with one check per region each, one second apart (the injected clock)."""

    spec: DeepSeekDeploymentSpec
    status: FailoverStatus | None = None
    now: datetime = T0
    decisions: list[Decision] | None = None

    def step(self, *checks: RegionCheck, seconds: float = 1.0, acknowledged: int | None = None) -> Decision:
        self.now += timedelta(seconds=seconds)
        decision = step(self.spec, self.status, {c.region: c for c in checks}, self.now, acknowledged)
        assert not decision.verify, "these tables run without the engine signal"
        self.status = decision.status
        self.decisions = [*(self.decisions or []), decision]
        return decision

    def repeat(self, times: int, *checks: RegionCheck) -> Decision:
        decision = None
        for _ in range(times):
            decision = self.step(*checks)
        assert decision is not None
        return decision

    def healthy(self) -> Run:
        """Both regions healthy (successThreshold passed checks)."""
        self.repeat(self.spec.failover.success_threshold, ok(EAST), ok(WEST))
        assert self.status is not None
        assert self.status.phase is FailoverPhase.HEALTHY
        return self

    def event_reasons(self) -> list[str]:
        return [event.reason for decision in self.decisions or [] for event in decision.events]

    @property
    def current(self) -> FailoverStatus:
        assert self.status is not None
        return self.status


def health(status: FailoverStatus, region: str) -> RegionHealthState:
    return next(r.state for r in status.regions if r.name == region)


def condition(decision: Decision, kind: ConditionType) -> tuple[ConditionStatus, str, str]:
    value = next(c for c in decision.conditions if c.type is kind)
    return value.status, value.reason, value.message


# --- health of a region ------------------------------------------------------------------------------


def test_a_new_deployment_is_pending_until_its_region_passed_the_success_threshold() -> None:
    run = Run(make_spec())
    assert run.step(ok(EAST), ok(WEST)).status.phase is FailoverPhase.PENDING
    assert health(run.current, EAST) is RegionHealthState.UNKNOWN
    assert run.step(ok(EAST), ok(WEST)).status.phase is FailoverPhase.HEALTHY
    assert health(run.current, EAST) is RegionHealthState.HEALTHY
    assert run.event_reasons() == ["RegionHealthy", "RegionHealthy"]


def test_a_region_that_was_never_healthy_is_not_failed_over_from() -> None:
    """Pods still loading their model at creation fail every check: that is no outage."""
    run = Run(make_spec())
    decision = run.repeat(10, bad(EAST, ready=0, serving=0), ok(WEST))
    assert decision.status.phase is FailoverPhase.PENDING
    assert decision.status.active_region == EAST
    assert health(decision.status, EAST) is RegionHealthState.UNKNOWN
    assert decision.status.failover_count == 0


def test_failing_checks_below_the_threshold_only_degrade() -> None:
    run = Run(make_spec()).healthy()
    decision = run.repeat(2, bad(EAST), ok(WEST))
    assert decision.status.phase is FailoverPhase.DEGRADED
    assert decision.status.message is not None
    assert "failed 2 of 3 checks" in decision.status.message
    assert decision.status.failing_since == T0 + timedelta(seconds=3)
    region = decision.status.regions[0]
    assert (region.state, region.consecutive_failures, region.failing_signals) == (
        RegionHealthState.HEALTHY,
        2,
        (FailoverSignal.ERROR_RATE,),
    )


def test_unknown_checks_count_neither_as_failure_nor_as_health() -> None:
    run = Run(make_spec()).healthy()
    run.repeat(2, bad(EAST), ok(WEST))
    run.step(unknown(EAST), ok(WEST))  # interrupts the failing streak
    decision = run.repeat(2, bad(EAST), ok(WEST))
    assert decision.status.phase is FailoverPhase.DEGRADED
    assert decision.status.failover_count == 0
    # ... and a standby whose checks are all Unknown never becomes a target.
    run = Run(make_spec())
    run.repeat(2, ok(EAST), ok(WEST))
    run.repeat(5, ok(EAST), unknown(WEST))
    assert health(run.current, WEST) is RegionHealthState.HEALTHY
    decision = run.repeat(3, bad(EAST), unknown(WEST))
    assert decision.status.phase is FailoverPhase.NO_HEALTHY_TARGET
    assert condition(decision, ConditionType.SIGNALS_AVAILABLE) == (
        ConditionStatus.FALSE,
        "SignalsUnavailable",
        "not evaluated (counts neither as failure nor as health): ErrorRate in eu-west: Prometheus: connection refused",
    )


def test_an_unhealthy_region_needs_the_success_threshold_to_be_healthy_again() -> None:
    run = Run(make_spec({"successThreshold": 3})).healthy()
    run.decisions = []
    run.repeat(3, ok(EAST), bad(WEST))
    assert health(run.current, WEST) is RegionHealthState.UNHEALTHY
    run.repeat(2, ok(EAST), ok(WEST))
    assert health(run.current, WEST) is RegionHealthState.UNHEALTHY
    run.step(ok(EAST), ok(WEST))
    assert health(run.current, WEST) is RegionHealthState.HEALTHY
    assert run.event_reasons() == ["RegionUnhealthy", "RegionHealthy"]


# --- failing over ---------------------------------------------------------------------------------------


def test_the_threshold_of_failed_checks_raises_the_standby_then_moves_the_traffic_when_it_is_full() -> None:
    run = Run(make_spec()).healthy()
    run.repeat(2, bad(EAST), ok(WEST, ready=1))
    decision = run.step(bad(EAST), ok(WEST, ready=1))
    status = decision.status
    assert status.phase is FailoverPhase.FAILING_OVER
    assert (status.active_region, status.target_region) == (EAST, WEST)
    assert status.pending_switch is not None
    assert (status.pending_switch.reason, status.pending_switch.signals) == (
        "ErrorRate",
        (FailoverSignal.ERROR_RATE,),
    )
    assert status.pending_switch.detected_at == T0 + timedelta(seconds=3)
    assert status.pending_switch.decided_at == T0 + timedelta(seconds=5)
    assert [e.reason for e in decision.events] == ["RegionUnhealthy", "FailingOver"]
    # The placement raises eu-west and keeps the traffic in us-east meanwhile.
    assert failover_routing(run.spec, {"failover": status.model_dump(mode="json", by_alias=True)}) == (
        EAST,
        frozenset({WEST}),
    )

    decision = run.step(bad(EAST), ok(WEST, ready=2))
    status = decision.status
    assert status.phase is FailoverPhase.FAILED_OVER
    assert (status.active_region, status.target_region, status.pending_switch) == (WEST, None, None)
    assert status.failover_count == 1
    assert status.last_failover is not None
    assert (status.last_failover.from_region, status.last_failover.to_region) == (EAST, WEST)
    assert status.last_failover.switched_at is None  # the controller sets it once the Service is applied
    assert [e.reason for e in decision.events] == ["FailedOver"]
    assert failover_routing(run.spec, {"failover": status.model_dump(mode="json", by_alias=True)}) == (
        WEST,
        frozenset(),
    )


def test_a_region_with_nothing_left_that_serves_moves_to_the_warm_replicas_at_once() -> None:
    run = Run(make_spec()).healthy()
    run.repeat(2, down(EAST), ok(WEST, ready=1))
    decision = run.step(down(EAST), ok(WEST, ready=1))
    assert decision.status.phase is FailoverPhase.FAILED_OVER
    assert decision.status.active_region == WEST
    assert decision.status.last_failover is not None
    assert decision.status.last_failover.reason == "NodesNotReady"
    assert "no replica left that can serve" in (decision.status.last_failover.message or "")
    assert [e.reason for e in decision.events] == ["RegionUnhealthy", "FailingOver", "FailedOver"]


def test_a_region_where_most_requests_fail_moves_to_the_warm_replicas_at_once() -> None:
    """Its replicas still run, but it serves nothing worth waiting for the target to fill up."""
    run = Run(make_spec()).healthy()
    run.repeat(2, bad(EAST, error_ratio=0.3), ok(WEST, ready=1))
    decision = run.step(bad(EAST, error_ratio=0.7), ok(WEST, ready=1))
    assert decision.status.active_region == WEST
    assert decision.status.last_failover is not None
    assert "us-east serves nothing: 70% of its requests fail" in (decision.status.last_failover.message or "")


def test_the_switch_timeout_moves_the_traffic_to_a_target_that_cannot_fill_up() -> None:
    run = Run(make_spec({"switchTimeoutSeconds": 5})).healthy()
    run.repeat(3, bad(EAST), ok(WEST, ready=1))
    assert run.current.phase is FailoverPhase.FAILING_OVER
    run.repeat(4, bad(EAST), ok(WEST, ready=1))
    assert run.current.phase is FailoverPhase.FAILING_OVER
    assert run.step(bad(EAST), ok(WEST, ready=1)).status.active_region == WEST


def test_a_switch_is_dropped_when_its_target_fails_or_the_region_recovers() -> None:
    run = Run(make_spec()).healthy()
    run.repeat(3, bad(EAST), ok(WEST, ready=1))
    decision = run.step(bad(EAST), bad(WEST, ready=1))
    assert "SwitchAborted" in [e.reason for e in decision.events]
    assert decision.status.pending_switch is None
    assert failover_routing(
        run.spec, {"failover": decision.status.model_dump(mode="json", by_alias=True)}
    ) == (EAST, frozenset())

    run = Run(make_spec()).healthy()
    run.repeat(3, bad(EAST), ok(WEST, ready=1))
    run.step(ok(EAST), ok(WEST, ready=1))
    decision = run.step(ok(EAST), ok(WEST, ready=1))  # successThreshold 2: healthy again
    assert [e.reason for e in decision.events] == ["RegionHealthy", "SwitchAborted"]
    assert decision.status.phase is FailoverPhase.HEALTHY
    assert decision.status.active_region == EAST


def test_both_regions_failing_stay_and_report_once() -> None:
    run = Run(make_spec()).healthy()
    decision = run.repeat(3, bad(EAST), bad(WEST))
    assert decision.status.phase is FailoverPhase.NO_HEALTHY_TARGET
    assert decision.status.active_region == EAST
    assert decision.status.message is not None
    assert "eu-west Unhealthy" in decision.status.message
    run.repeat(5, bad(EAST), bad(WEST))
    assert run.event_reasons().count("FailoverBlocked") == 1
    assert condition(run.decisions[-1], ConditionType.FAILOVER_READY)[:2] == (
        ConditionStatus.FALSE,
        "NoHealthyStandby",
    )  # type: ignore[index]


def test_the_target_is_the_first_healthy_standby_in_spec_order() -> None:
    spec = make_spec(regions=[(EAST, "Active"), (NORTH, "Standby"), (WEST, "Standby")])
    run = Run(spec)
    run.repeat(2, ok(EAST), ok(NORTH), ok(WEST))
    run.repeat(3, ok(EAST), bad(NORTH), ok(WEST))
    decision = run.repeat(3, down(EAST), bad(NORTH), ok(WEST))
    assert decision.status.active_region == WEST


def test_no_switch_within_min_active_seconds_of_the_last_one() -> None:
    run = Run(make_spec({"minActiveSeconds": 20})).healthy()
    run.repeat(3, down(EAST), ok(WEST))
    assert run.current.active_region == WEST
    run.repeat(2, down(EAST), ok(WEST))  # us-east comes back ...
    run.repeat(2, ok(EAST), ok(WEST))
    decision = run.repeat(3, ok(EAST), down(WEST))  # ... and then eu-west fails
    assert decision.status.phase is FailoverPhase.DEGRADED
    assert decision.status.message is not None
    assert "minActiveSeconds" in decision.status.message
    assert "FailoverBlocked" in run.event_reasons()
    run.step(ok(EAST), down(WEST), seconds=15)
    assert run.current.active_region == EAST
    assert run.current.failover_count == 2


def test_blips_shorter_than_the_threshold_never_switch_and_a_sustained_fault_switches_once() -> None:
    run = Run(make_spec()).healthy()
    for _ in range(40):
        run.repeat(2, down(EAST), ok(WEST))
        run.step(ok(EAST), ok(WEST))
    assert run.current.failover_count == 0
    assert run.current.active_region == EAST
    run.repeat(30, down(EAST), ok(WEST))
    assert run.current.failover_count == 1
    assert run.event_reasons().count("FailedOver") == 1


def test_the_switch_budget_stops_switching_until_a_person_acknowledges() -> None:
    run = Run(make_spec({"maxSwitchesPerHour": 2, "minActiveSeconds": 0, "failback": "Auto"})).healthy()
    run.repeat(3, down(EAST), ok(WEST))
    assert run.current.failover_count == 1
    decision = run.repeat(3, ok(EAST), ok(WEST, ready=2))  # failback once us-east is healthy again
    assert decision.status.failover_count == 2
    assert decision.status.phase is FailoverPhase.WAITING_FOR_USER
    assert "FailoverWaitingForUser" in run.event_reasons()
    run.repeat(5, down(EAST), ok(WEST))
    assert (run.current.active_region, run.current.failover_count) == (EAST, 2)
    assert condition(run.decisions[-1], ConditionType.FAILOVER_READY)[1] == "WaitingForUser"  # type: ignore[index]
    run.step(down(EAST), ok(WEST), acknowledged=1)  # not the current count: ignored
    assert run.current.phase is FailoverPhase.WAITING_FOR_USER
    decision = run.step(down(EAST), ok(WEST), acknowledged=2)
    assert "FailoverAcknowledged" in [e.reason for e in decision.events]
    assert (decision.status.active_region, decision.status.failover_count) == (WEST, 3)


def test_the_budget_counts_switches_within_an_hour() -> None:
    run = Run(make_spec({"maxSwitchesPerHour": 2, "minActiveSeconds": 0, "failback": "Auto"})).healthy()
    run.repeat(3, down(EAST), ok(WEST))
    run.step(ok(EAST), ok(WEST), seconds=3600)
    run.repeat(2, ok(EAST), ok(WEST))
    assert run.current.active_region == EAST
    assert run.current.phase is FailoverPhase.HEALTHY
    assert len(run.current.recent_switches) == 1


# --- failback -------------------------------------------------------------------------------------------


def test_failback_auto_returns_once_home_is_healthy_and_min_active_has_passed() -> None:
    run = Run(make_spec({"failback": "Auto", "minActiveSeconds": 10})).healthy()
    run.repeat(3, down(EAST), ok(WEST))
    run.repeat(3, ok(EAST, ready=1), ok(WEST))
    assert run.current.phase is FailoverPhase.FAILED_OVER  # healthy, but within minActiveSeconds
    decision = run.step(ok(EAST, ready=1), ok(WEST), seconds=10)
    assert decision.status.phase is FailoverPhase.FAILING_BACK
    assert decision.status.target_region == EAST
    decision = run.step(ok(EAST, ready=2), ok(WEST))
    assert decision.status.phase is FailoverPhase.HEALTHY
    assert decision.status.active_region == EAST
    assert decision.status.last_failover is not None
    assert decision.status.last_failover.reason == "Failback"
    assert decision.status.failover_count == 2
    assert [e.reason for e in decision.events] == ["FailedBack"]


def test_failback_manual_stays_and_says_how_a_person_acts() -> None:
    run = Run(make_spec({"failback": "Manual", "minActiveSeconds": 0})).healthy()
    run.repeat(3, down(EAST), ok(WEST))
    decision = run.repeat(20, ok(EAST), ok(WEST))
    assert decision.status.phase is FailoverPhase.FAILED_OVER
    assert decision.status.active_region == WEST
    assert "make eu-west the Active region" in (decision.status.message or "")
    assert "set spec.failover.failback to Auto" in (decision.status.message or "")


def test_a_person_adopting_the_region_failed_over_to_ends_the_failover_without_moving_traffic() -> None:
    run = Run(make_spec()).healthy()
    run.repeat(3, down(EAST), ok(WEST))
    run.spec = make_spec(regions=[(EAST, "Standby"), (WEST, "Active")])
    decision = run.step(ok(EAST), ok(WEST))
    assert [e.reason for e in decision.events] == ["FailoverAdopted"]
    assert (decision.status.phase, decision.status.active_region, decision.status.home_region) == (
        FailoverPhase.HEALTHY,
        WEST,
        WEST,
    )
    assert decision.status.failover_count == 1


def test_a_person_making_another_region_active_resets_the_routing_to_it() -> None:
    spec = make_spec(regions=[(EAST, "Active"), (NORTH, "Standby"), (WEST, "Standby")])
    run = Run(spec)
    run.repeat(2, ok(EAST), ok(NORTH), ok(WEST))
    run.repeat(3, down(EAST), ok(NORTH), ok(WEST))
    assert run.current.active_region == NORTH
    run.spec = make_spec(regions=[(EAST, "Standby"), (NORTH, "Standby"), (WEST, "Active")])
    decision = run.step(ok(EAST), ok(NORTH), ok(WEST))
    assert [e.reason for e in decision.events] == ["RoutingReset"]
    assert decision.status.active_region == WEST


# --- engine verification, restarts, disabled -------------------------------------------------------------


def test_a_target_is_chosen_only_after_its_engines_answered() -> None:
    spec = make_spec({"signals": ["PodsNotReady", "EngineUnhealthy"]})
    skipped = result(Outcome.SKIPPED, FailoverSignal.ENGINE_UNHEALTHY)
    standby = RegionCheck(WEST, (result(Outcome.PASS), skipped), 1, 1)
    status = None
    now = T0
    for _ in range(2):
        now += timedelta(seconds=1)
        status = step(spec, status, {EAST: ok(EAST, engine=Outcome.PASS), WEST: standby}, now).status
    for _ in range(2):
        now += timedelta(seconds=1)
        status = step(spec, status, {EAST: down(EAST), WEST: standby}, now).status
    now += timedelta(seconds=1)
    checks = {EAST: down(EAST), WEST: standby}
    asked = step(spec, status, checks, now)
    assert asked.verify == (WEST,)
    assert asked.status == status  # nothing decided yet

    dead = standby.with_result(
        result(Outcome.FAIL, FailoverSignal.ENGINE_UNHEALTHY, "503"), serving_replicas=0
    )
    refused = step(spec, status, {**checks, WEST: dead}, now, verified=frozenset({WEST}))
    assert refused.status.phase is FailoverPhase.NO_HEALTHY_TARGET
    assert refused.status.regions[1].consecutive_failures == 1

    alive = standby.with_result(result(Outcome.PASS, FailoverSignal.ENGINE_UNHEALTHY))
    moved = step(spec, status, {**checks, WEST: alive}, now, verified=frozenset({WEST}))
    assert moved.status.active_region == WEST


def test_a_switch_persisted_in_status_completes_exactly_once_after_a_restart() -> None:
    """Status is all the state: a replica that starts from the JSON of a FailingOver status moves the
    traffic once, and the count goes up once."""
    run = Run(make_spec()).healthy()
    run.repeat(3, bad(EAST), ok(WEST, ready=1))
    assert run.current.phase is FailoverPhase.FAILING_OVER
    stored = run.current.model_dump(mode="json", by_alias=True, exclude_none=True)
    restarted = Run(make_spec(), status=FailoverStatus.model_validate(stored), now=run.now)
    restarted.repeat(3, bad(EAST), ok(WEST, ready=1))
    assert restarted.current.phase is FailoverPhase.FAILING_OVER
    assert restarted.current.pending_switch == run.current.pending_switch
    restarted.repeat(5, bad(EAST), ok(WEST, ready=2))
    assert restarted.current.failover_count == 1
    assert restarted.event_reasons().count("FailedOver") == 1
    assert restarted.event_reasons().count("FailingOver") == 0


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        (make_spec(regions=[(EAST, "Active")]), "NoStandbyRegion"),
        (make_spec({"enabled": False}), "FailoverDisabled"),
    ],
)
def test_without_a_standby_or_with_failover_off_nothing_is_checked(
    spec: DeepSeekDeploymentSpec, reason: str
) -> None:
    decision = step(spec, None, {}, T0)
    assert decision.status.phase is FailoverPhase.DISABLED
    assert decision.status.active_region == EAST
    assert condition(decision, ConditionType.FAILOVER_READY)[:2] == (ConditionStatus.FALSE, reason)
    if reason == "NoStandbyRegion":
        assert decision.status.message == "one region (us-east): nowhere to fail over to"


def test_signals_available_names_each_signal_and_region_it_could_not_evaluate() -> None:
    run = Run(make_spec()).healthy()
    decision = run.step(ok(EAST), ok(WEST))
    assert condition(decision, ConditionType.SIGNALS_AVAILABLE)[:2] == (
        ConditionStatus.TRUE,
        "SignalsEvaluated",
    )
    assert condition(decision, ConditionType.FAILOVER_READY) == (
        ConditionStatus.TRUE,
        "StandbyHealthy",
        "eu-west can take over from us-east",
    )
    decision = run.step(unknown(EAST), ok(WEST))
    status, reason, message = condition(decision, ConditionType.SIGNALS_AVAILABLE)
    assert (status, reason) == (ConditionStatus.FALSE, "SignalsUnavailable")
    assert "ErrorRate in us-east: Prometheus: connection refused" in message


# --- routing as the reconcile reads it ------------------------------------------------------------------


def test_routing_follows_the_spec_whenever_the_record_does_not_describe_it() -> None:
    spec = make_spec()
    moved = {"failover": {"phase": "FailedOver", "homeRegion": EAST, "activeRegion": WEST}}
    assert failover_routing(spec, moved) == (WEST, frozenset())
    assert failover_routing(spec, {}) == (EAST, frozenset())
    # A person made eu-west Active since: the record is about another home.
    assert failover_routing(make_spec(regions=[(EAST, "Standby"), (WEST, "Active")]), moved) == (
        WEST,
        frozenset(),
    )
    other = {"failover": {"phase": "FailedOver", "homeRegion": WEST, "activeRegion": EAST}}
    assert failover_routing(spec, other) == (EAST, frozenset())
    gone = {"failover": {"phase": "FailedOver", "homeRegion": EAST, "activeRegion": "ap-south"}}
    assert failover_routing(spec, gone) == (EAST, frozenset())
    assert failover_routing(make_spec({"enabled": False}), moved) == (EAST, frozenset())
