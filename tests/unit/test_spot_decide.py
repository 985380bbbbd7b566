"""The spot controller's decision, table-tested with a fixed clock (no cluster)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from deepseek_operator.api import (
    CapacityPool,
    ConditionStatus,
    SpotPhase,
    SpotRegionStatus,
    SpotSpec,
    SpotStatus,
)
from deepseek_operator.spot.decide import (
    FallbackPolicy,
    Notice,
    PoolObservation,
    RegionObservation,
    decide,
    decide_region,
    duration,
)

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
POLICY = FallbackPolicy(pending_timeout=60, quiet_period=300, step=30)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def region(spot: PoolObservation, on_demand: PoolObservation | None = None) -> RegionObservation:
    return RegionObservation("us-east", spot=spot, on_demand=on_demand or PoolObservation(target=2, ready=2))


def steady(target: int = 2) -> PoolObservation:
    return PoolObservation(target=target, ready=target, serving=target)


def pending(
    count: int,
    since: float,
    target: int = 2,
    reason: str | None = "Insufficient nvidia.com/gpu on spot nodes",
) -> PoolObservation:
    return PoolObservation(
        target=target,
        ready=target - count,
        serving=target - count,
        pending=count,
        pending_since=at(since),
        pending_reason=reason,
    )


def noticed(nodes: list[str], target: int = 2, ready: int | None = None) -> PoolObservation:
    count = len(nodes)
    return PoolObservation(
        target=target,
        ready=target - count if ready is None else ready,
        serving=target,
        interrupted=count,
        notices=tuple(Notice(node, "karpenter.sh/disrupted") for node in nodes),
    )


def spot_pool(status: SpotRegionStatus) -> tuple[int, int, int]:
    pool = next(p for p in status.pools if p.name is CapacityPool.SPOT)
    return pool.target_replicas, pool.ready_replicas, pool.pending_replicas


def run(
    observations: list[tuple[float, PoolObservation] | tuple[float, PoolObservation, PoolObservation]],
    policy: FallbackPolicy = POLICY,
    roundtrip: bool = True,
) -> list[SpotRegionStatus]:
    """Decide at each time in turn, each decision from the last one's status; with `roundtrip` the status
    goes through its JSON form in between, as it does through the API server (a restart reads only that)."""
    previous: SpotRegionStatus | None = None
    results = []
    for seconds, spot, *rest in observations:
        decided = decide_region(policy, region(spot, rest[0] if rest else None), previous, at(seconds))
        previous = decided.status
        if roundtrip:
            previous = SpotRegionStatus.model_validate(previous.model_dump(mode="json", by_alias=True))
        results.append(decided.status)
    return results


# --- falling back -------------------------------------------------------------------------------------


def test_steady_spot_needs_no_fallback() -> None:
    decided = decide_region(POLICY, region(steady()), None, T0)
    assert decided.status.phase is SpotPhase.STEADY
    assert decided.status.fallback_replicas == 0
    assert decided.status.message == "2/2 spot replicas ready"
    assert decided.events == ()
    assert decided.wake_in is None


def test_pending_within_the_timeout_waits_and_says_when_it_will_fall_back() -> None:
    decided = decide_region(POLICY, region(pending(2, since=0)), None, at(40))
    assert decided.status.fallback_replicas == 0
    assert decided.status.phase is SpotPhase.SHORTAGE
    assert decided.status.message == (
        "2 spot pods Pending: Insufficient nvidia.com/gpu on spot nodes for 40s; on-demand fallback after 1m"
    )
    # the message's duration changes at 50 s, the timeout expires at 60 s
    assert decided.wake_in == pytest.approx(10)


def test_pending_past_the_timeout_falls_back_for_every_missing_replica() -> None:
    decided = decide_region(POLICY, region(pending(2, since=0)), None, at(120))
    status = decided.status
    assert status.fallback_replicas == 2
    assert (status.phase, status.reason) == (SpotPhase.FALLEN_BACK, "SpotShortage")
    assert status.message == (
        "2 on-demand replicas in place of spot: 2 spot pods Pending: "
        "Insufficient nvidia.com/gpu on spot nodes for 2m"
    )
    assert [e.reason for e in decided.events] == ["SpotFallback"]
    # the spot Deployment keeps its target: the fallback adds on-demand replicas
    assert spot_pool(status) == (2, 0, 2)
    assert status.replacement_since == at(0)
    assert status.replacement_cause == "Shortage"


def test_an_interruption_notice_falls_back_at_once_before_the_pod_is_gone() -> None:
    decided = decide_region(POLICY, region(noticed(["spot-node-a"])), None, T0)
    assert decided.status.fallback_replicas == 1
    assert decided.status.reason == "SpotInterrupted"
    assert [e.reason for e in decided.events] == ["SpotInterrupted", "SpotFallback"]
    assert [(i.node, i.signal) for i in decided.new_interruptions] == [
        ("spot-node-a", "karpenter.sh/disrupted")
    ]
    assert decided.status.replacement_since == T0


def test_a_whole_zone_interrupted_at_once_falls_back_for_all_of_it_and_counts_once() -> None:
    decided = decide_region(POLICY, region(noticed(["a", "b", "c"], target=4)), None, T0)
    assert decided.status.fallback_replicas == 3
    assert len(decided.new_interruptions) == 3
    # correlated notices are one interruption, not three: no cooldown for one zone going at once
    assert decided.status.phase is SpotPhase.FALLEN_BACK
    later = decide_region(POLICY, region(noticed(["a", "b", "c", "d"], target=4)), decided.status, at(30))
    assert later.status.phase is SpotPhase.FALLEN_BACK


def test_the_fallback_never_exceeds_the_cap() -> None:
    capped = replace(POLICY, max_replicas=1)
    assert decide_region(capped, region(pending(2, since=0)), None, at(120)).status.fallback_replicas == 1


def test_fallback_disabled_only_reports() -> None:
    disabled = replace(POLICY, enabled=False)
    decided = decide_region(disabled, region(pending(2, since=0)), None, at(120))
    assert decided.status.fallback_replicas == 0
    assert decided.status.phase is SpotPhase.FALLBACK_DISABLED
    assert "spot.fallback.enabled is false" in decided.status.message


def test_the_fallback_follows_the_target_down_at_once() -> None:
    (_, after) = run([(120, pending(2, since=0)), (130, pending(1, since=0, target=1))])
    assert after.fallback_replicas == 1


# --- moving back ------------------------------------------------------------------------------------------


def test_moving_back_waits_for_the_quiet_period_then_goes_one_replica_per_step() -> None:
    statuses = run(
        [
            (120, pending(2, since=0)),  # fallen back: 2
            (200, pending(1, since=0)),  # one spot pod back: still 2 (partial recovery holds)
            (300, steady()),  # spot at target: the quiet period starts
            (599, steady()),  # 299 s later: not yet
            (600, steady()),  # quiet period over: 2 -> 1
            (610, steady()),  # within the step: stays
            (630, steady()),  # next step: 1 -> 0
            (700, steady()),
        ]
    )
    assert [s.fallback_replicas for s in statuses] == [2, 2, 2, 2, 1, 1, 0, 0]
    assert [s.phase for s in statuses] == [
        SpotPhase.FALLEN_BACK,
        SpotPhase.FALLEN_BACK,
        SpotPhase.RECOVERING,
        SpotPhase.RECOVERING,
        SpotPhase.RECOVERING,
        SpotPhase.RECOVERING,
        SpotPhase.STEADY,
        SpotPhase.STEADY,
    ]
    assert statuses[4].last_step_time == at(600)


def test_a_notice_during_the_quiet_period_restarts_it() -> None:
    statuses = run(
        [
            (120, pending(2, since=0)),
            (300, steady()),
            (500, noticed(["a"])),  # interrupted again
            (520, steady()),  # quiet period starts over here
            (600, steady()),  # would have been over without the notice
            (820, steady()),
        ]
    )
    assert [s.fallback_replicas for s in statuses] == [2, 2, 2, 2, 2, 1]


def test_the_step_down_names_the_pool_that_shrinks_and_wakes_for_the_next_step() -> None:
    first = decide_region(POLICY, region(steady()), None, T0)
    assert first.stepped_down is None
    recovering = SpotRegionStatus.model_validate(
        {
            **first.status.model_dump(mode="json", by_alias=True),
            "fallbackReplicas": 2,
            "pools": [
                {**p.model_dump(mode="json", by_alias=True), "readyAtTargetSince": at(-400).isoformat()}
                for p in first.status.pools
            ],
        }
    )
    decided = decide_region(POLICY, region(steady()), recovering, T0)
    assert decided.status.fallback_replicas == 1
    assert decided.stepped_down is CapacityPool.ON_DEMAND
    assert [e.reason for e in decided.events] == ["SpotMovedBack"]
    assert decided.wake_in is not None
    assert decided.wake_in <= POLICY.step


# --- flapping -----------------------------------------------------------------------------------------------


def test_repeated_interruptions_stop_spot_for_a_cooldown_that_doubles() -> None:
    policy = replace(POLICY, cooldown_interruptions=3, cooldown_window=3600, cooldown=600, max_cooldown=1500)
    od_ready = PoolObservation(target=2, ready=4, serving=4)  # base and both stand-ins are ready
    statuses = run(
        [
            (0, noticed(["a"]), od_ready),
            (60, noticed(["b"]), od_ready),
            (120, noticed(["c"]), od_ready),  # third within the window: stop for 600 s
            (130, steady(), od_ready),
            (720, steady(), od_ready),  # 600 s later: cooldown over
            (730, noticed(["d"]), od_ready),
            (800, noticed(["e"]), od_ready),
            (870, noticed(["f"]), od_ready),  # stopped again: 1200 s
            (2070, steady(), od_ready),  # over
            (2080, noticed(["g"]), od_ready),
            (2150, noticed(["h"]), od_ready),
            (2220, noticed(["i"]), od_ready),  # and again: capped at 1500 s
        ],
        policy=policy,
    )
    suppressed = [(s.phase is SpotPhase.SUPPRESSED, s.suppressions) for s in statuses]
    assert suppressed[2] == (True, 1)
    assert statuses[2].suppressed_until == at(120 + 600)
    assert statuses[2].fallback_replicas == 2, "every spot replica on on-demand"
    assert statuses[2].withheld_replicas == 2, "on-demand stand-ins ready: the spot replicas leave"
    assert statuses[3].phase is SpotPhase.SUPPRESSED
    assert statuses[4].phase is not SpotPhase.SUPPRESSED
    assert statuses[4].withheld_replicas == 0, "spot is tried again"
    assert statuses[7].suppressed_until == at(870 + 1200)
    assert statuses[8].phase is not SpotPhase.SUPPRESSED
    assert statuses[11].suppressed_until == at(2220 + 1500)
    assert statuses[11].suppressions == 3


def test_spot_is_withheld_only_once_its_on_demand_stand_ins_are_ready() -> None:
    policy = replace(POLICY, cooldown_interruptions=1)
    not_yet = PoolObservation(target=2, ready=2, serving=2)
    decided = decide_region(policy, region(noticed(["a"]), not_yet), None, T0)
    assert decided.status.phase is SpotPhase.SUPPRESSED
    assert (decided.status.fallback_replicas, decided.status.withheld_replicas) == (2, 0)
    ready = PoolObservation(target=2, ready=4, serving=4)
    again = decide_region(policy, region(steady(), ready), decided.status, at(10))
    assert again.status.withheld_replicas == 2


def test_a_node_under_a_lasting_notice_counts_once() -> None:
    policy = replace(POLICY, cooldown_interruptions=2)
    statuses = run([(seconds, noticed(["a"])) for seconds in (0, 10, 20, 30)], policy=policy)
    assert all(s.phase is not SpotPhase.SUPPRESSED for s in statuses)
    assert [len(s.interruptions) for s in statuses] == [1, 1, 1, 1]


def test_a_node_that_comes_back_under_the_same_name_and_is_interrupted_again_counts_again() -> None:
    policy = replace(POLICY, cooldown_interruptions=2)
    statuses = run([(0, noticed(["a"])), (100, steady()), (200, noticed(["a"]))], policy=policy)
    assert [[r.ongoing for r in s.interruptions] for s in statuses] == [[True], [False], [False, True]]
    assert statuses[2].phase is SpotPhase.SUPPRESSED


# --- the reverse: spill to spot -------------------------------------------------------------------------------


def od_pending(count: int, since: float, target: int = 2) -> PoolObservation:
    return PoolObservation(
        target=target,
        ready=target - count,
        pending=count,
        pending_since=at(since),
        pending_reason="Insufficient nvidia.com/gpu on on-demand nodes",
    )


def test_on_demand_shortage_without_spill_only_reports() -> None:
    decided = decide_region(POLICY, region(steady(), od_pending(1, since=0)), None, at(120))
    assert decided.status.spill_replicas == 0
    assert decided.status.phase is SpotPhase.ON_DEMAND_SHORTAGE
    assert decided.status.message.endswith("spot.fallback.spillToSpot is off")


def test_on_demand_shortage_with_spill_runs_the_missing_replicas_on_spot_until_it_returns() -> None:
    policy = replace(POLICY, spill_to_spot=True)
    statuses = run(
        [
            (30, steady(), od_pending(1, since=0)),  # within the timeout
            (60, steady(), od_pending(1, since=0)),  # spill 1
            (100, steady(), PoolObservation(target=2, ready=2)),  # on-demand back: quiet period
            (400, steady(), PoolObservation(target=2, ready=2)),  # over: back to on-demand
        ],
        policy=policy,
    )
    assert [s.spill_replicas for s in statuses] == [0, 1, 1, 0]
    assert [s.phase for s in statuses] == [
        SpotPhase.ON_DEMAND_SHORTAGE,
        SpotPhase.SPILLED,
        SpotPhase.SPILLED,
        SpotPhase.STEADY,
    ]


# --- what survives a restart, and what is measured ---------------------------------------------------------------


def test_a_restarted_operator_continues_from_status_alone() -> None:
    """Deciding from the status read back (JSON, as the API server stores it) gives what deciding from the
    in-memory one gives: every timer is in status."""
    script: list[tuple[float, PoolObservation] | tuple[float, PoolObservation, PoolObservation]] = [
        (0, pending(2, since=0)),
        (61, pending(2, since=0)),
        (200, steady()),
        (500, steady()),
        (530, steady()),
    ]
    assert run(script, roundtrip=True) == run(script, roundtrip=False)


def test_deciding_again_from_the_same_state_changes_nothing() -> None:
    """A stale read of status (the watch not caught up with the last write) repeats the same write."""
    first = decide_region(POLICY, region(pending(2, since=0)), None, at(120))
    before = SpotRegionStatus.model_validate(
        {**first.status.model_dump(mode="json", by_alias=True), "fallbackReplicas": 0}
    )
    again = decide_region(POLICY, region(pending(2, since=0)), before, at(120))
    assert again.status.fallback_replicas == first.status.fallback_replicas


def test_the_replacement_time_runs_from_the_notice_to_ready_again() -> None:
    first = decide_region(POLICY, region(noticed(["a"]), PoolObservation(target=2, ready=2)), None, T0)
    still = decide_region(
        POLICY, region(noticed(["a"]), PoolObservation(target=2, ready=2)), first.status, at(5)
    )
    assert still.replaced is None
    ready = decide_region(
        POLICY, region(noticed(["a"]), PoolObservation(target=2, ready=3)), still.status, at(31)
    )
    assert ready.replaced == (31.0, "Interruption")
    assert ready.status.replacement_since is None


# --- every region, and the conditions -----------------------------------------------------------------------------


def test_conditions_say_why_pods_are_pending_and_that_fallback_is_active() -> None:
    observations = [
        region(pending(2, since=0)),
        RegionObservation("eu-west", spot=steady(0), on_demand=steady(1)),
    ]
    decision = decide(POLICY, observations, None, (), generation=3, now=at(120))
    conditions = {c.type: c for c in decision.conditions}
    assert conditions["SpotAvailable"].status is ConditionStatus.FALSE
    assert conditions["SpotAvailable"].reason == "SpotShortage"
    assert conditions["FallbackActive"].status is ConditionStatus.TRUE
    assert conditions["FallbackActive"].reason == "SpotShortage"
    assert conditions["FallbackActive"].message == (
        "us-east: 2 on-demand replicas in place of spot: 2 spot pods Pending: "
        "Insufficient nvidia.com/gpu on spot nodes for 2m"
    )
    assert all(c.observed_generation == 3 for c in decision.conditions)
    assert decision.status.fallback_replicas == 2
    assert [r.name for r in decision.status.regions] == ["us-east", "eu-west"]


def test_conditions_keep_their_transition_time_while_their_status_holds() -> None:
    first = decide(POLICY, [region(steady())], None, (), 1, T0)
    later = decide(POLICY, [region(steady())], first.status, first.conditions, 1, at(100))
    assert [c.last_transition_time for c in later.conditions] == [T0, T0]
    assert {c.type: c.status for c in later.conditions} == {
        "SpotAvailable": ConditionStatus.TRUE,
        "FallbackActive": ConditionStatus.FALSE,
    }


def test_the_policy_comes_from_the_spec() -> None:
    spot = SpotSpec.model_validate(
        {
            "enabled": True,
            "fallback": {
                "pendingTimeoutSeconds": 10,
                "maxReplicas": 3,
                "quietPeriodSeconds": 5,
                "stepSeconds": 2,
                "spillToSpot": True,
                "cooldown": {
                    "interruptions": 2,
                    "windowSeconds": 120,
                    "seconds": 30,
                    "maxSeconds": 60,
                    "groupSeconds": 5,
                },
            },
        }
    )
    assert FallbackPolicy.of(spot) == FallbackPolicy(
        enabled=True,
        pending_timeout=10,
        max_replicas=3,
        quiet_period=5,
        step=2,
        spill_to_spot=True,
        cooldown_interruptions=2,
        cooldown_window=120,
        cooldown=30,
        max_cooldown=60,
        group=5,
    )
    assert FallbackPolicy.of(SpotSpec()) == FallbackPolicy()


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (9, "0s"),
        (45, "40s"),
        (60, "1m"),
        (150, "2m"),
        (599, "9m"),
        (899, "10m"),
        (900, "15m"),
        (3600, "1h"),
        (3725, "1h"),
        (4000, "1h5m"),
    ],
)
def test_durations_in_messages_are_coarse(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_status_serializes_within_the_api_bounds() -> None:
    decision = decide(POLICY, [region(noticed(["a", "b"], target=2))], None, (), 1, T0)
    dumped = decision.status.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert SpotStatus.model_validate(dumped) == decision.status
    assert dumped["regions"][0]["interruptions"][0]["time"] == "2026-03-01T12:00:00Z"
