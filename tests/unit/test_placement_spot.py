"""The spot controller's decisions flow from status into the placement the reconcile renders (no cluster)."""

from __future__ import annotations

from typing import Any

from deepseek_operator.api import DeepSeekDeploymentSpec
from deepseek_operator.placement import placement_from_status
from deepseek_operator.render.replicas import plan_replicas


def spec(**spot: Any) -> DeepSeekDeploymentSpec:
    return DeepSeekDeploymentSpec.model_validate(
        {
            "model": {"name": "m"},
            "regions": [{"name": "us-east", "role": "Active"}, {"name": "eu-west", "role": "Standby"}],
            "replicas": 4,
            "spot": {"enabled": True, "onDemandBase": 1, "spotPercentage": 100, **spot},
        }
    )


STATUS = {
    "spot": {
        "regions": [
            {"name": "us-east", "fallbackReplicas": 2, "spillReplicas": 0, "withheldReplicas": 1},
            {"name": "eu-west", "spillReplicas": 1},
            {"name": "gone-region", "fallbackReplicas": 5},
        ]
    }
}


def test_fallback_spill_and_withheld_replicas_come_from_status() -> None:
    placement = placement_from_status(spec(), STATUS)
    assert dict(placement.adjustments.on_demand_fallback) == {"us-east": 2}
    assert dict(placement.adjustments.spot_spill) == {"eu-west": 1}
    assert dict(placement.adjustments.spot_withheld) == {"us-east": 1}
    plan = plan_replicas(spec(), placement.active_region, placement.adjustments)
    # us-east: 1 on-demand + 3 spot; 2 on-demand stand in, 1 spot withheld
    assert (plan["us-east"].on_demand, plan["us-east"].spot) == (3, 2)
    # eu-west: 1 warm on-demand, plus 1 spilled to spot
    assert (plan["eu-west"].on_demand, plan["eu-west"].spot) == (1, 1)


def test_nothing_is_adjusted_while_spot_or_its_fallback_is_disabled() -> None:
    for disabled in (spec(enabled=False), spec(fallback={"enabled": False})):
        adjustments = placement_from_status(disabled, STATUS).adjustments
        assert not adjustments.on_demand_fallback
        assert not adjustments.spot_spill
        assert not adjustments.spot_withheld


def test_no_status_no_adjustment() -> None:
    adjustments = placement_from_status(spec(), None).adjustments
    assert not adjustments.on_demand_fallback
    assert not adjustments.spot_spill
