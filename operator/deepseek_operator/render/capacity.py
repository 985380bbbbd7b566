"""Which node labels and taints tell spot capacity from on-demand capacity, per provider.

One table, ``CAPACITY_PRESETS``, so that supporting another provider is one entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from deepseek_operator.api import CapacityPool, CapacityProvider, SpotSpec, TaintEffect


@dataclass(frozen=True)
class SpotToleration:
    """The toleration spot pods need. ``value`` None tolerates any value (operator Exists)."""

    key: str
    value: str | None
    effect: TaintEffect

    def to_toleration(self) -> dict[str, Any]:
        if self.value is None:
            return {"key": self.key, "operator": "Exists", "effect": self.effect.value}
        return {"key": self.key, "operator": "Equal", "value": self.value, "effect": self.effect.value}


@dataclass(frozen=True)
class CapacityLabels:
    """How one provider labels (and taints) spot and on-demand nodes.

    ``on_demand_value`` None means on-demand nodes simply lack the label (GKE, AKS), so the
    on-demand pool requires ``DoesNotExist``.
    """

    label_key: str
    spot_value: str
    on_demand_value: str | None
    spot_toleration: SpotToleration | None

    def node_selector_requirement(self, pool: CapacityPool) -> dict[str, Any]:
        """The nodeAffinity matchExpression that keeps a pool's pods on its kind of capacity."""
        if pool is CapacityPool.SPOT:
            return {"key": self.label_key, "operator": "In", "values": [self.spot_value]}
        if self.on_demand_value is None:
            return {"key": self.label_key, "operator": "DoesNotExist"}
        return {"key": self.label_key, "operator": "In", "values": [self.on_demand_value]}


CAPACITY_PRESETS: Mapping[CapacityProvider, CapacityLabels] = MappingProxyType(
    {
        CapacityProvider.KARPENTER: CapacityLabels(
            label_key="karpenter.sh/capacity-type",
            spot_value="spot",
            on_demand_value="on-demand",
            spot_toleration=SpotToleration("karpenter.sh/capacity-type", "spot", TaintEffect.NO_SCHEDULE),
        ),
        CapacityProvider.GKE: CapacityLabels(
            label_key="cloud.google.com/gke-spot",
            spot_value="true",
            on_demand_value=None,
            spot_toleration=SpotToleration("cloud.google.com/gke-spot", "true", TaintEffect.NO_SCHEDULE),
        ),
        CapacityProvider.EKS: CapacityLabels(
            label_key="eks.amazonaws.com/capacityType",
            spot_value="SPOT",
            on_demand_value="ON_DEMAND",
            spot_toleration=None,
        ),
        CapacityProvider.AKS: CapacityLabels(
            label_key="kubernetes.azure.com/scalesetpriority",
            spot_value="spot",
            on_demand_value=None,
            spot_toleration=SpotToleration(
                "kubernetes.azure.com/scalesetpriority", "spot", TaintEffect.NO_SCHEDULE
            ),
        ),
    }
)


def capacity_labels(spot: SpotSpec) -> CapacityLabels:
    """The preset of ``spot.provider``, or the labels spelled out in ``spot.custom``."""
    if spot.provider is not CapacityProvider.CUSTOM:
        return CAPACITY_PRESETS[spot.provider]
    if spot.custom is None:  # the API (CEL and pydantic) already forbids this
        raise ValueError("spec.spot.custom is required when spec.spot.provider is custom")
    taint = spot.custom.spot_taint
    return CapacityLabels(
        label_key=spot.custom.label_key,
        spot_value=spot.custom.spot_value,
        on_demand_value=spot.custom.on_demand_value,
        spot_toleration=None if taint is None else SpotToleration(taint.key, taint.value, taint.effect),
    )
