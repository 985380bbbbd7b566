"""Status is computed from the spec and the observed Deployments (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

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
        updated_replicas=replicas if rolled_out else 0,
        generation=2,
        observed_generation=2,
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


def test_missing_ready_replicas_and_a_rollout_are_reported() -> None:
    partly = [observed("us-east", CapacityPool.ON_DEMAND, 3, 2, rolled_out=False), *ALL_READY[1:]]
    conditions = conditions_of(compute_status("r1", spec(), 7, "us-east", partly, [], [], NOW))
    assert conditions["Ready"].status is ConditionStatus.FALSE
    assert conditions["Ready"].reason == "ReplicasNotReady"
    assert "3/4 replicas ready in us-east" in (conditions["Ready"].message or "")
    assert conditions["Progressing"].status is ConditionStatus.TRUE
    assert conditions["Progressing"].message == "rolling out us-east/on-demand"


def test_deployments_not_created_yet_count_as_progressing() -> None:
    conditions = conditions_of(compute_status("r1", spec(), 1, "us-east", [], [], [], NOW))
    assert conditions["Progressing"].status is ConditionStatus.TRUE
    assert conditions["Ready"].status is ConditionStatus.FALSE


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


def test_the_active_region_given_by_failover_is_the_one_reported() -> None:
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
        "status": {"replicas": 2, "readyReplicas": 1, "updatedReplicas": 2, "observedGeneration": 3},
    }
    item = ObservedDeployment.from_object(deployment)
    assert item == ObservedDeployment("us-east", CapacityPool.SPOT, 2, 2, 1, 2, 3, 3)
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
