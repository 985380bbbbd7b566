"""Spot/on-demand node labels and taints per provider, and the pool Deployments they shape."""

from __future__ import annotations

from typing import Any

import pytest
from deepseek_operator.api import (
    CapacityPool,
    CapacityProvider,
    DeepSeekDeploymentSpec,
    SpotSpec,
    TaintEffect,
)
from deepseek_operator.render import (
    CAPACITY_PRESETS,
    CapacityLabels,
    SpotToleration,
    capacity_labels,
    render_children,
)
from render_support import make_spec


def test_presets_cover_every_provider_but_custom() -> None:
    assert set(CAPACITY_PRESETS) == set(CapacityProvider) - {CapacityProvider.CUSTOM}


@pytest.mark.parametrize(
    ("provider", "label", "spot_value", "on_demand", "toleration"),
    [
        (
            CapacityProvider.KARPENTER,
            "karpenter.sh/capacity-type",
            "spot",
            {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
            {
                "key": "karpenter.sh/capacity-type",
                "operator": "Equal",
                "value": "spot",
                "effect": "NoSchedule",
            },
        ),
        (
            CapacityProvider.GKE,
            "cloud.google.com/gke-spot",
            "true",
            {"key": "cloud.google.com/gke-spot", "operator": "DoesNotExist"},
            {
                "key": "cloud.google.com/gke-spot",
                "operator": "Equal",
                "value": "true",
                "effect": "NoSchedule",
            },
        ),
        (
            CapacityProvider.EKS,
            "eks.amazonaws.com/capacityType",
            "SPOT",
            {"key": "eks.amazonaws.com/capacityType", "operator": "In", "values": ["ON_DEMAND"]},
            None,
        ),
        (
            CapacityProvider.AKS,
            "kubernetes.azure.com/scalesetpriority",
            "spot",
            {"key": "kubernetes.azure.com/scalesetpriority", "operator": "DoesNotExist"},
            {
                "key": "kubernetes.azure.com/scalesetpriority",
                "operator": "Equal",
                "value": "spot",
                "effect": "NoSchedule",
            },
        ),
    ],
)
def test_presets(
    provider: CapacityProvider,
    label: str,
    spot_value: str,
    on_demand: dict[str, Any],
    toleration: dict[str, Any] | None,
) -> None:
    preset = capacity_labels(SpotSpec(enabled=True, provider=provider))
    assert preset is CAPACITY_PRESETS[provider]
    assert preset.node_selector_requirement(CapacityPool.SPOT) == {
        "key": label,
        "operator": "In",
        "values": [spot_value],
    }
    assert preset.node_selector_requirement(CapacityPool.ON_DEMAND) == on_demand
    if toleration is None:
        assert preset.spot_toleration is None
    else:
        assert preset.spot_toleration is not None
        assert preset.spot_toleration.to_toleration() == toleration


def test_custom_provider_uses_the_spec_labels_and_taint() -> None:
    spot = SpotSpec.model_validate(
        {
            "enabled": True,
            "provider": "custom",
            "custom": {
                "labelKey": "example.com/capacity",
                "spotValue": "preemptible",
                "onDemandValue": "standard",
                "spotTaint": {"key": "example.com/preemptible", "effect": "NoExecute"},
            },
        }
    )
    assert capacity_labels(spot) == CapacityLabels(
        label_key="example.com/capacity",
        spot_value="preemptible",
        on_demand_value="standard",
        spot_toleration=SpotToleration("example.com/preemptible", None, TaintEffect.NO_EXECUTE),
    )
    toleration = capacity_labels(spot).spot_toleration
    assert toleration is not None
    assert toleration.to_toleration() == {
        "key": "example.com/preemptible",
        "operator": "Exists",
        "effect": "NoExecute",
    }


def test_custom_provider_without_on_demand_value_requires_the_label_absent() -> None:
    spot = SpotSpec.model_validate(
        {
            "enabled": True,
            "provider": "custom",
            "custom": {"labelKey": "example.com/spot", "spotValue": "yes"},
        }
    )
    labels = capacity_labels(spot)
    assert labels.node_selector_requirement(CapacityPool.ON_DEMAND) == {
        "key": "example.com/spot",
        "operator": "DoesNotExist",
    }
    assert labels.spot_toleration is None


def test_custom_taint_with_a_value_is_tolerated_exactly() -> None:
    spot = SpotSpec.model_validate(
        {
            "enabled": True,
            "provider": "custom",
            "custom": {
                "labelKey": "example.com/spot",
                "spotValue": "yes",
                "spotTaint": {"key": "example.com/spot", "value": "yes"},
            },
        }
    )
    toleration = capacity_labels(spot).spot_toleration
    assert toleration is not None
    assert toleration.to_toleration() == {
        "key": "example.com/spot",
        "operator": "Equal",
        "value": "yes",
        "effect": "NoSchedule",
    }


def pools_of(spec: DeepSeekDeploymentSpec) -> dict[str, int]:
    return {
        child["metadata"]["name"]: child["spec"]["replicas"]
        for child in render_children("r1", "ml", spec)
        if child["kind"] == "Deployment"
    }


def test_spot_pools_are_rendered_per_region_with_the_split() -> None:
    spec = make_spec(
        replicas=6,
        failover={"standbyWarmReplicas": 2},
        spot={"enabled": True, "onDemandBase": 2, "spotPercentage": 75},
    )
    # active: 2 base + ceil(4 * 25%) = 3 on-demand, 3 spot; standby 2: both within the base
    assert pools_of(spec) == {
        "r1-us-east-1-on-demand": 3,
        "r1-us-east-1-spot": 3,
        "r1-us-west-2-on-demand": 2,
        "r1-us-west-2-spot": 0,
    }


def test_no_spot_pool_without_spot() -> None:
    assert pools_of(make_spec(replicas=6, spot={"spotPercentage": 100})) == {
        "r1-us-east-1-on-demand": 6,
        "r1-us-west-2-on-demand": 1,
    }
