"""Replica planning: the on-demand/spot split and the per-region totals."""

from __future__ import annotations

import math
from typing import Any

import pytest
from deepseek_operator.api import CapacityPool, DeepSeekDeploymentSpec, SpotSpec
from deepseek_operator.render import (
    PoolReplicas,
    ReplicaAdjustments,
    plan_replicas,
    region_total_replicas,
    resolve_active_region,
    split_replicas,
)


def make_spec(**changes: Any) -> DeepSeekDeploymentSpec:
    spec: dict[str, Any] = {
        "model": {"name": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"},
        "regions": [
            {"name": "us-east-1", "role": "Active"},
            {"name": "us-west-2", "role": "Standby"},
            {"name": "eu-west-1", "role": "Standby"},
        ],
    }
    spec.update(changes)
    return DeepSeekDeploymentSpec.model_validate(spec)


def spot(base: int, percentage: int, *, enabled: bool = True) -> SpotSpec:
    return SpotSpec(enabled=enabled, on_demand_base=base, spot_percentage=percentage)


@pytest.mark.parametrize(
    ("total", "base", "percentage", "expected"),
    [
        (0, 1, 50, PoolReplicas(on_demand=0, spot=0)),
        (1, 1, 50, PoolReplicas(on_demand=1, spot=0)),
        (2, 1, 50, PoolReplicas(on_demand=2, spot=0)),  # 1 above base: ceil(0.5) = 1 on-demand
        (3, 1, 50, PoolReplicas(on_demand=2, spot=1)),
        (4, 1, 50, PoolReplicas(on_demand=3, spot=1)),  # 3 above base: ceil(1.5) = 2 on-demand
        (5, 1, 50, PoolReplicas(on_demand=3, spot=2)),
        (10, 0, 100, PoolReplicas(on_demand=0, spot=10)),
        (10, 2, 100, PoolReplicas(on_demand=2, spot=8)),
        (10, 2, 0, PoolReplicas(on_demand=10, spot=0)),
        (10, 0, 75, PoolReplicas(on_demand=3, spot=7)),  # ceil(2.5) = 3
        (3, 5, 100, PoolReplicas(on_demand=3, spot=0)),  # the base is larger than the region
    ],
)
def test_split_examples(total: int, base: int, percentage: int, expected: PoolReplicas) -> None:
    assert split_replicas(total, spot(base, percentage)) == expected


@pytest.mark.parametrize("percentage", [0, 1, 25, 33, 50, 67, 99, 100])
@pytest.mark.parametrize("base", [0, 1, 3])
def test_split_matches_the_documented_formula(base: int, percentage: int) -> None:
    for total in range(41):
        based = min(total, base)
        on_demand = based + math.ceil((total - based) * (100 - percentage) / 100)
        result = split_replicas(total, spot(base, percentage))
        assert result == PoolReplicas(on_demand=on_demand, spot=total - on_demand), total
        assert result.total == total
        assert result.on_demand >= based


def test_spot_disabled_puts_everything_on_demand() -> None:
    assert split_replicas(7, spot(0, 100, enabled=False)) == PoolReplicas(on_demand=7, spot=0)


def test_negative_totals_are_rejected() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        split_replicas(-1, spot(1, 50))


def test_pool_accessors_and_spot_share() -> None:
    replicas = PoolReplicas(on_demand=2, spot=1)
    assert replicas.for_pool(CapacityPool.ON_DEMAND) == 2
    assert replicas.for_pool(CapacityPool.SPOT) == 1
    assert replicas.spot_share == "33%"  # rounded down
    assert PoolReplicas(on_demand=0, spot=0).spot_share == "0%"
    assert PoolReplicas(on_demand=1, spot=1).spot_share == "50%"
    assert PoolReplicas(on_demand=0, spot=4).spot_share == "100%"


def test_active_region_defaults_to_the_spec_and_can_be_overridden() -> None:
    spec = make_spec()
    assert resolve_active_region(spec) == "us-east-1"
    assert resolve_active_region(spec, "eu-west-1") == "eu-west-1"
    with pytest.raises(
        ValueError, match=r"'ap-south-1' is not in spec.regions \(us-east-1, us-west-2, eu-west-1\)"
    ):
        resolve_active_region(spec, "ap-south-1")


def test_region_totals_follow_roles_and_failover() -> None:
    spec = make_spec(replicas=6, failover={"standbyWarmReplicas": 2})
    east, west, _ = spec.regions
    assert region_total_replicas(spec, east, "us-east-1") == 6
    assert region_total_replicas(spec, west, "us-east-1") == 2
    # after failover the old active region becomes a warm standby
    assert region_total_replicas(spec, east, "us-west-2") == 2
    assert region_total_replicas(spec, west, "us-west-2") == 6
    no_failover = make_spec(replicas=6, failover={"enabled": False, "standbyWarmReplicas": 2})
    assert region_total_replicas(no_failover, no_failover.regions[1], "us-east-1") == 0


def test_plan_splits_every_region_in_spec_order() -> None:
    spec = make_spec(
        replicas=5,
        failover={"standbyWarmReplicas": 3},
        spot={"enabled": True, "onDemandBase": 1, "spotPercentage": 50},
    )
    assert plan_replicas(spec) == {
        "us-east-1": PoolReplicas(on_demand=3, spot=2),
        "us-west-2": PoolReplicas(on_demand=2, spot=1),
        "eu-west-1": PoolReplicas(on_demand=2, spot=1),
    }
    assert list(plan_replicas(spec, "eu-west-1")) == ["us-east-1", "us-west-2", "eu-west-1"]
    assert plan_replicas(spec, "eu-west-1")["eu-west-1"] == PoolReplicas(on_demand=3, spot=2)


def test_adjustments_raise_full_regions_and_add_fallback_and_spill_replicas() -> None:
    spec = make_spec(replicas=4, spot={"enabled": True, "onDemandBase": 1, "spotPercentage": 50})
    adjustments = ReplicaAdjustments(
        full_regions=frozenset({"us-west-2"}),
        on_demand_fallback={"us-east-1": 1},
        spot_spill={"eu-west-1": 2},
    )

    plan = plan_replicas(spec, "us-east-1", adjustments)

    # The active region's split (3 + 1) plus one on-demand replica in place of its spot replica.
    assert plan["us-east-1"] == PoolReplicas(on_demand=4, spot=1)
    # A region being failed over to runs the full count before traffic moves.
    assert plan["us-west-2"] == PoolReplicas(on_demand=3, spot=1)
    # A warm standby (1 on-demand) with two spot replicas standing in for missing on-demand ones.
    assert plan["eu-west-1"] == PoolReplicas(on_demand=1, spot=2)
    assert plan_replicas(spec, "us-east-1") == plan_replicas(spec, "us-east-1", ReplicaAdjustments())


def test_withheld_spot_replicas_leave_the_spot_pool_never_below_zero() -> None:
    from deepseek_operator.api import DeepSeekDeploymentSpec
    from deepseek_operator.render.replicas import ReplicaAdjustments, plan_replicas

    spec = DeepSeekDeploymentSpec.model_validate(
        {
            "model": {"name": "m"},
            "regions": [{"name": "a", "role": "Active"}],
            "replicas": 4,
            "spot": {"enabled": True, "onDemandBase": 1, "spotPercentage": 100},
            "failover": {"enabled": False},
        }
    )
    suppressed = ReplicaAdjustments(on_demand_fallback={"a": 3}, spot_withheld={"a": 3})
    assert (
        plan_replicas(spec, None, suppressed)["a"].on_demand,
        plan_replicas(spec, None, suppressed)["a"].spot,
    ) == (4, 0)
    too_many = ReplicaAdjustments(spot_withheld={"a": 9})
    assert plan_replicas(spec, None, too_many)["a"].spot == 0
