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


def toleration(key: str, value: str) -> dict[str, Any]:
    return {"key": key, "operator": "Equal", "value": value, "effect": "NoSchedule"}


@pytest.mark.parametrize(
    ("provider", "label", "spot_value", "on_demand", "tolerations"),
    [
        (
            CapacityProvider.KARPENTER,
            "karpenter.sh/capacity-type",
            "spot",
            # on-demand and reserved: every value but spot
            {"key": "karpenter.sh/capacity-type", "operator": "NotIn", "values": ["spot"]},
            # a convention Karpenter does not apply itself: harmless where absent, replaced by spotTaints
            [toleration("karpenter.sh/capacity-type", "spot")],
        ),
        (
            CapacityProvider.GKE,
            "cloud.google.com/gke-spot",
            "true",
            {"key": "cloud.google.com/gke-spot", "operator": "DoesNotExist"},
            [toleration("cloud.google.com/gke-spot", "true")],
        ),
        (
            CapacityProvider.EKS,
            "eks.amazonaws.com/capacityType",
            "SPOT",
            # ON_DEMAND and CAPACITY_BLOCK: every value but SPOT
            {"key": "eks.amazonaws.com/capacityType", "operator": "NotIn", "values": ["SPOT"]},
            [],
        ),
        (
            CapacityProvider.AKS,
            "kubernetes.azure.com/scalesetpriority",
            "spot",
            {"key": "kubernetes.azure.com/scalesetpriority", "operator": "DoesNotExist"},
            [toleration("kubernetes.azure.com/scalesetpriority", "spot")],
        ),
    ],
)
def test_presets(
    provider: CapacityProvider,
    label: str,
    spot_value: str,
    on_demand: dict[str, Any],
    tolerations: list[dict[str, Any]],
) -> None:
    preset = capacity_labels(SpotSpec(enabled=True, provider=provider))
    assert preset is CAPACITY_PRESETS[provider]
    assert preset.node_selector_requirement(CapacityPool.SPOT) == {
        "key": label,
        "operator": "In",
        "values": [spot_value],
    }
    assert preset.node_selector_requirement(CapacityPool.ON_DEMAND) == on_demand
    assert [t.to_toleration() for t in preset.spot_tolerations] == tolerations
    assert preset.is_spot_node({label: spot_value})
    assert not preset.is_spot_node({label: "on-demand"})


@pytest.mark.parametrize(
    ("provider", "key", "value"),
    [
        (CapacityProvider.KARPENTER, "karpenter.sh/disrupted", ""),
        (CapacityProvider.KARPENTER, "karpenter.sh/disruption", "disrupting"),
        (CapacityProvider.KARPENTER, "aws-node-termination-handler/spot-itn", "event-id"),
        (CapacityProvider.EKS, "aws-node-termination-handler/spot-itn", "event-id"),
        (CapacityProvider.EKS, "aws-node-termination-handler/rebalance-recommendation", "x"),
        (CapacityProvider.EKS, "aws-node-termination-handler/asg-lifecycle-termination", "x"),
        (CapacityProvider.EKS, "aws-node-termination-handler/scheduled-maintenance", "x"),
        (CapacityProvider.GKE, "cloud.google.com/impending-node-termination", ""),
        (CapacityProvider.AKS, "remediator.kubernetes.azure.com/unschedulable", ""),
        (CapacityProvider.AKS, "remediator.aks.microsoft.com/unschedulable", ""),
        (CapacityProvider.AKS, "node.kubernetes.io/out-of-service", "nodeshutdown"),
        (CapacityProvider.GKE, "ToBeDeletedByClusterAutoscaler", "1700000000"),
    ],
)
def test_interruption_taints_are_data_in_the_presets(
    provider: CapacityProvider, key: str, value: str
) -> None:
    preset = CAPACITY_PRESETS[provider]
    found = preset.interruption_taint(key, value)
    assert found is not None
    assert found.key == key


def test_not_every_taint_is_an_interruption() -> None:
    karpenter = CAPACITY_PRESETS[CapacityProvider.KARPENTER]
    assert karpenter.interruption_taint("karpenter.sh/capacity-type", "spot") is None
    assert karpenter.interruption_taint("nvidia.com/gpu", "present") is None
    # the old taint only with its value
    assert karpenter.interruption_taint("karpenter.sh/disruption", "other") is None
    # another provider's signal is not read
    assert CAPACITY_PRESETS[CapacityProvider.GKE].interruption_taint("karpenter.sh/disrupted", "") is None


def test_presets_budget_the_shutdown_to_the_providers_notice() -> None:
    budgets = {provider: labels.spot_grace_seconds for provider, labels in CAPACITY_PRESETS.items()}
    assert budgets == {
        CapacityProvider.KARPENTER: 90,
        CapacityProvider.EKS: 90,
        CapacityProvider.GKE: 15,
        CapacityProvider.AKS: 25,
    }


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
        spot_tolerations=(SpotToleration("example.com/preemptible", None, TaintEffect.NO_EXECUTE),),
    )
    (toleration,) = capacity_labels(spot).spot_tolerations
    assert toleration.to_toleration() == {
        "key": "example.com/preemptible",
        "operator": "Exists",
        "effect": "NoExecute",
    }
    assert capacity_labels(spot).node_selector_requirement(CapacityPool.ON_DEMAND) == {
        "key": "example.com/capacity",
        "operator": "In",
        "values": ["standard"],
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
    assert labels.spot_tolerations == ()


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
    (toleration,) = capacity_labels(spot).spot_tolerations
    assert toleration.to_toleration() == {
        "key": "example.com/spot",
        "operator": "Equal",
        "value": "yes",
        "effect": "NoSchedule",
    }


def test_spot_taints_replace_the_presets_toleration() -> None:
    spot = SpotSpec.model_validate({"enabled": True, "spotTaints": [{"key": "example.com/spot"}]})
    labels = capacity_labels(spot)
    assert labels.spot_tolerations == (SpotToleration("example.com/spot", None, TaintEffect.NO_SCHEDULE),)
    # everything else is the preset's
    preset = CAPACITY_PRESETS[CapacityProvider.KARPENTER]
    assert labels.interruption_taints == preset.interruption_taints
    assert labels.node_selector_requirement(CapacityPool.ON_DEMAND) == preset.node_selector_requirement(
        CapacityPool.ON_DEMAND
    )


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
