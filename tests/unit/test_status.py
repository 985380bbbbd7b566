"""Status is computed from the spec and the observed Deployments (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from deepseek_operator.api import CapacityPool, ConditionStatus, DeepSeekDeploymentSpec
from deepseek_operator.status import ObservedDeployment, Problem, compute_status, invalid_spec_status

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def spec(**overrides: Any) -> DeepSeekDeploymentSpec:
    document: dict[str, Any] = {
        "model": {"name": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"},
        "regions": [{"name": "us-east", "role": "Active"}, {"name": "eu-west", "role": "Standby"}],
        "replicas": 4,
        "spot": {"enabled": True, "onDemandBase": 1, "spotPercentage": 50},
        "failover": {"standbyWarmReplicas": 1},
    }
    document.update(overrides)
    return DeepSeekDeploymentSpec.model_validate(document)


def observed(
    region: str, pool: CapacityPool, replicas: int, ready: int, rolled_out: bool = True
) -> ObservedDeployment:
    return ObservedDeployment(
        region=region,
        pool=pool,
        spec_replicas=replicas,
        replicas=replicas,
        ready_replicas=ready,
        available_replicas=ready,
        updated_replicas=replicas if rolled_out else 0,
        generation=2,
        observed_generation=2,
    )


def rolling(
    region: str,
    pool: CapacityPool,
    spec_replicas: int,
    *,
    replicas: int,
    updated: int,
    available: int,
    generation: int = 3,
    observed_generation: int = 3,
) -> ObservedDeployment:
    """A Deployment in the middle of a rollout, with the counts its status would show."""
    return ObservedDeployment(
        region=region,
        pool=pool,
        spec_replicas=spec_replicas,
        replicas=replicas,
        ready_replicas=available,
        available_replicas=available,
        updated_replicas=updated,
        generation=generation,
        observed_generation=observed_generation,
    )


ALL_READY = [
    observed("us-east", CapacityPool.ON_DEMAND, 3, 3),
    observed("us-east", CapacityPool.SPOT, 1, 1),
    observed("eu-west", CapacityPool.ON_DEMAND, 1, 1),
    observed("eu-west", CapacityPool.SPOT, 0, 0),
]


def conditions_of(status: Any) -> dict[str, Any]:
    return {condition.type: condition for condition in status.conditions}


def test_all_ready_gives_ready_true_and_every_count() -> None:
    status = compute_status("r1", spec(), 7, "us-east", ALL_READY, [], [], NOW)
    conditions = conditions_of(status)
    assert conditions["Ready"].status is ConditionStatus.TRUE
    assert conditions["Ready"].reason == "AllReplicasReady"
    assert conditions["Ready"].message == "4/4 replicas ready in us-east (on-demand 3/3, spot 1/1)"
    assert conditions["Progressing"].status is ConditionStatus.FALSE
    assert conditions["Degraded"].status is ConditionStatus.FALSE
    assert all(c.observed_generation == 7 for c in status.conditions)
    assert (status.ready, status.spot_share, status.replicas, status.desired_replicas) == ("4/4", "25%", 4, 4)
    assert (
        status.selector
        == "serving.deepseek-operator.io/deployment=r1,serving.deepseek-operator.io/region=us-east"
    )
    standby = next(r for r in status.regions if r.name == "eu-west")
    assert (
        standby.role.value if standby.role else None,
        standby.desired_replicas,
        standby.ready_replicas,
    ) == (
        "Standby",
        1,
        1,
    )


def test_missing_ready_replicas_are_reported() -> None:
    partly = [observed("us-east", CapacityPool.ON_DEMAND, 3, 2), *ALL_READY[1:]]
    conditions = conditions_of(compute_status("r1", spec(), 7, "us-east", partly, [], [], NOW))
    assert conditions["Ready"].status is ConditionStatus.FALSE
    assert conditions["Ready"].reason == "ReplicasNotReady"
    assert conditions["Ready"].message == "3/4 replicas ready in us-east (on-demand 2/3, spot 1/1)"
    # Every pod runs the current template, 2 of 3 are available: kubectl rollout status would still wait.
    assert (conditions["Progressing"].status, conditions["Progressing"].reason) == (
        ConditionStatus.TRUE,
        "ReplicasNotAvailable",
    )
    assert (
        conditions["Progressing"].message
        == "waiting for us-east/on-demand (2 of 3 updated replicas available)"
    )


def test_old_pods_that_are_still_ready_do_not_make_a_new_spec_ready() -> None:
    """maxUnavailable 0: the old pods stay ready while the new ones start; Ready waits for the new ones."""
    # 3 wanted, 1 surge pod of the new template started (not available), the 3 old ones still serve.
    held = rolling("us-east", CapacityPool.ON_DEMAND, 3, replicas=4, updated=1, available=3)
    status = compute_status("r1", spec(), 8, "us-east", [held, *ALL_READY[1:]], [], [], NOW)
    conditions = conditions_of(status)
    assert conditions["Ready"].status is ConditionStatus.FALSE
    assert conditions["Ready"].reason == "RollingOut"
    assert conditions["Ready"].message == (
        "rolling out us-east/on-demand (1 of 3 new replicas updated); "
        "1/4 replicas ready in us-east (on-demand 0/3, spot 1/1)"
    )
    assert conditions["Ready"].observed_generation == 8
    assert (conditions["Progressing"].status, conditions["Progressing"].reason) == (
        ConditionStatus.TRUE,
        "RollingOut",
    )
    assert status.ready == "1/4"


def test_ready_waits_until_the_controller_has_seen_the_new_template() -> None:
    """Right after the operator applies a new template, the Deployment's counts still describe the old one."""
    unseen = rolling(
        "us-east", CapacityPool.ON_DEMAND, 3, replicas=3, updated=3, available=3, observed_generation=2
    )
    assert unseen.current_available == 0
    conditions = conditions_of(
        compute_status("r1", spec(), 8, "us-east", [unseen, *ALL_READY[1:]], [], [], NOW)
    )
    assert (conditions["Ready"].status, conditions["Ready"].reason) == (ConditionStatus.FALSE, "RollingOut")
    assert "us-east/on-demand (waiting for the Deployment controller to observe the new spec)" in (
        conditions["Ready"].message or ""
    )


@pytest.mark.parametrize(
    ("replicas", "updated", "available", "current", "progress"),
    [
        # kubectl rollout status: "N out of M new replicas have been updated"
        (4, 1, 3, 0, "1 of 3 new replicas updated"),
        (4, 1, 4, 1, "1 of 3 new replicas updated"),
        # "N old replicas are pending termination"
        (4, 3, 4, 3, "1 old replicas pending termination"),
        # "N of M updated replicas are available"
        (3, 3, 2, 2, "2 of 3 updated replicas available"),
        # "successfully rolled out"
        (3, 3, 3, 3, None),
    ],
)
def test_a_rollout_is_judged_like_kubectl_rollout_status(
    replicas: int, updated: int, available: int, current: int, progress: str | None
) -> None:
    deployment = rolling(
        "us-east", CapacityPool.ON_DEMAND, 3, replicas=replicas, updated=updated, available=available
    )
    assert deployment.current_available == current
    assert deployment.rollout_progress == progress
    assert deployment.rolled_out is (progress is None)
    assert deployment.template_rolled_out is (updated >= 3 and replicas <= updated)


def test_a_standby_rollout_keeps_progressing_but_not_ready_false() -> None:
    """Ready is about the active region serving the current spec; a standby's rollout shows in Progressing."""
    standby = rolling("eu-west", CapacityPool.ON_DEMAND, 1, replicas=2, updated=1, available=1)
    status = compute_status("r1", spec(), 8, "us-east", [*ALL_READY[:2], standby, ALL_READY[3]], [], [], NOW)
    conditions = conditions_of(status)
    assert (conditions["Ready"].status, conditions["Ready"].reason) == (
        ConditionStatus.TRUE,
        "AllReplicasReady",
    )
    assert conditions["Progressing"].status is ConditionStatus.TRUE
    assert (
        conditions["Progressing"].message
        == "rolling out eu-west/on-demand (1 old replicas pending termination)"
    )


def test_a_progress_deadline_exceeded_is_named() -> None:
    stuck = ObservedDeployment.from_object(
        {
            "metadata": {
                "generation": 4,
                "labels": {
                    "serving.deepseek-operator.io/region": "us-east",
                    "serving.deepseek-operator.io/pool": "on-demand",
                },
            },
            "spec": {"replicas": 3},
            "status": {
                "observedGeneration": 4,
                "replicas": 4,
                "updatedReplicas": 1,
                "readyReplicas": 3,
                "availableReplicas": 3,
                "conditions": [
                    {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
                ],
            },
        }
    )
    assert stuck is not None
    assert stuck.rollout_progress == "1 of 3 new replicas updated, progress deadline exceeded"


def test_deployments_not_created_yet_count_as_progressing() -> None:
    conditions = conditions_of(compute_status("r1", spec(), 1, "us-east", [], [], [], NOW))
    assert conditions["Progressing"].status is ConditionStatus.TRUE
    assert conditions["Progressing"].message == (
        "rolling out us-east/on-demand (not created yet), us-east/spot (not created yet), "
        "eu-west/on-demand (not created yet), eu-west/spot (not created yet)"
    )
    assert (conditions["Ready"].status, conditions["Ready"].reason) == (ConditionStatus.FALSE, "RollingOut")


def test_problems_make_it_degraded_and_not_ready() -> None:
    problem = Problem("ScaledObjectApiMissing", "install KEDA")
    conditions = conditions_of(compute_status("r1", spec(), 1, "us-east", ALL_READY, [], [problem], NOW))
    assert conditions["Degraded"].status is ConditionStatus.TRUE
    assert (conditions["Degraded"].reason, conditions["Degraded"].message) == (
        "ScaledObjectApiMissing",
        "install KEDA",
    )
    assert conditions["Ready"].status is ConditionStatus.FALSE


def test_last_transition_time_moves_only_when_the_status_changes() -> None:
    first = compute_status("r1", spec(), 1, "us-east", ALL_READY, [], [], NOW)
    later = NOW + timedelta(minutes=5)
    same = compute_status("r1", spec(), 2, "us-east", ALL_READY, first.conditions, [], later)
    assert conditions_of(same)["Ready"].last_transition_time == NOW
    assert conditions_of(same)["Ready"].observed_generation == 2
    partly = [observed("us-east", CapacityPool.ON_DEMAND, 3, 1), *ALL_READY[1:]]
    changed = compute_status("r1", spec(), 2, "us-east", partly, first.conditions, [], later)
    assert conditions_of(changed)["Ready"].last_transition_time == later


def test_scaled_to_zero_is_ready_with_its_own_reason() -> None:
    conditions = conditions_of(compute_status("r1", spec(replicas=0), 1, "us-east", [], [], [], NOW))
    assert (conditions["Ready"].status, conditions["Ready"].reason) == (ConditionStatus.TRUE, "ScaledToZero")


def test_the_active_region_passed_in_is_the_one_reported() -> None:
    status = compute_status("r1", spec(), 1, "eu-west", [], [], [], NOW)
    assert status.active_region == "eu-west"
    assert status.desired_replicas == 4
    assert status.selector is not None
    assert status.selector.endswith("region=eu-west")


def test_spot_disabled_reports_only_the_on_demand_pool() -> None:
    status = compute_status("r1", spec(spot={"enabled": False}), 1, "us-east", [], [], [], NOW)
    assert [pool.name for region in status.regions for pool in region.pools] == [CapacityPool.ON_DEMAND] * 2
    assert status.spot_share == "0%"


def test_invalid_spec_status_names_the_problem_in_every_condition() -> None:
    status = invalid_spec_status(3, "spec.regions: bad", [], NOW)
    conditions = conditions_of(status)
    assert conditions["Ready"].status is ConditionStatus.FALSE
    assert conditions["Degraded"].status is ConditionStatus.TRUE
    assert {c.reason for c in status.conditions} == {"InvalidSpec"}
    assert status.observed_generation == 3


def test_observed_deployment_reads_labels_and_status() -> None:
    deployment = {
        "metadata": {
            "generation": 3,
            "labels": {
                "serving.deepseek-operator.io/region": "us-east",
                "serving.deepseek-operator.io/pool": "spot",
            },
        },
        "spec": {"replicas": 2},
        "status": {
            "replicas": 2,
            "readyReplicas": 2,
            "availableReplicas": 2,
            "updatedReplicas": 2,
            "observedGeneration": 3,
        },
    }
    item = ObservedDeployment.from_object(deployment)
    assert item == ObservedDeployment("us-east", CapacityPool.SPOT, 2, 2, 2, 2, 2, 3, 3)
    assert item.rolled_out
    assert ObservedDeployment.from_object({"metadata": {"labels": {}}, "spec": {}}) is None


def test_ready_counts_only_for_the_current_generation() -> None:
    from deepseek_operator.status import is_ready_for_its_generation

    def dsd(generation: int, ready: str, observed: int) -> dict[str, Any]:
        condition = {"type": "Ready", "status": ready, "observedGeneration": observed}
        return {"metadata": {"generation": generation}, "status": {"conditions": [condition]}}

    assert is_ready_for_its_generation(dsd(3, "True", 3))
    assert not is_ready_for_its_generation(dsd(3, "True", 2)), "Ready for an older spec"
    assert not is_ready_for_its_generation(dsd(3, "False", 3))
    assert not is_ready_for_its_generation({"metadata": {"generation": 1}})


def test_on_demand_fallback_counts_in_the_pool_not_in_what_must_serve() -> None:
    """Spot short in us-east: its spot pod stays Pending (the Deployment keeps it) and an on-demand replica
    stands in. The pools ask for both; the region still needs 4, and 4 serve: Ready."""
    from deepseek_operator.render.replicas import ReplicaAdjustments

    fallen_back = [
        observed("us-east", CapacityPool.ON_DEMAND, 4, 4),
        observed("us-east", CapacityPool.SPOT, 1, 0),
        observed("eu-west", CapacityPool.ON_DEMAND, 1, 1),
        observed("eu-west", CapacityPool.SPOT, 0, 0),
    ]
    status = compute_status(
        "r1",
        spec(),
        2,
        "us-east",
        fallen_back,
        [],
        [],
        NOW,
        ReplicaAdjustments(on_demand_fallback={"us-east": 1}),
    )
    east = next(region for region in status.regions if region.name == "us-east")
    assert [(p.name, p.desired_replicas, p.ready_replicas) for p in east.pools] == [
        (CapacityPool.ON_DEMAND, 4, 4),
        (CapacityPool.SPOT, 1, 0),
    ]
    assert (east.desired_replicas, east.ready_replicas) == (4, 4)
    assert status.ready == "4/4"
    assert conditions_of(status)["Ready"].status is ConditionStatus.TRUE
