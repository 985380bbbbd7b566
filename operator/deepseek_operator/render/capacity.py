"""What tells spot capacity from on-demand capacity, and what announces that a spot node goes away, per
provider.

One table, ``CAPACITY_PRESETS``, so that supporting another provider is one entry. Every fact in it says
where it comes from; the notes with the full sources are in the README section "Spot capacity and
on-demand fallback".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from deepseek_operator.api import CapacityPool, CapacityProvider, SpotSpec, TaintEffect


@dataclass(frozen=True)
class SpotToleration:
    """A toleration spot pods need. ``value`` None tolerates any value (operator Exists)."""

    key: str
    value: str | None
    effect: TaintEffect

    def to_toleration(self) -> dict[str, Any]:
        if self.value is None:
            return {"key": self.key, "operator": "Exists", "effect": self.effect.value}
        return {"key": self.key, "operator": "Equal", "value": self.value, "effect": self.effect.value}


@dataclass(frozen=True)
class InterruptionTaint:
    """A node taint that announces the node is about to go away (``value`` None: any value)."""

    key: str
    value: str | None = None

    def matches(self, key: str, value: str | None) -> bool:
        return key == self.key and (self.value is None or (value or "") == self.value)


# Signals that a node goes away, whatever the provider (the spot controller also reads a node's
# deletionTimestamp, its Ready condition, its absence, and each pod's DisruptionTarget condition):
COMMON_INTERRUPTION_TAINTS: tuple[InterruptionTaint, ...] = (
    # Non-graceful node shutdown (kubernetes.io/docs/concepts/cluster-administration/node-shutdown/);
    # AWS Node Termination Handler sets it too when configured to.
    InterruptionTaint("node.kubernetes.io/out-of-service"),
    # cluster-autoscaler, on a node it is about to delete (its scale-down); the node goes all the same.
    InterruptionTaint("ToBeDeletedByClusterAutoscaler"),
)

# AWS Node Termination Handler (aws/aws-node-termination-handler pkg/node/node.go): one taint per
# event kind, the value being the event id; set only with TAINT_NODE=true (the default is false, then
# NTH only cordons and drains, which the pods' DisruptionTarget condition shows).
AWS_NODE_TERMINATION_HANDLER_TAINTS: tuple[InterruptionTaint, ...] = (
    InterruptionTaint("aws-node-termination-handler/spot-itn"),
    InterruptionTaint("aws-node-termination-handler/rebalance-recommendation"),
    InterruptionTaint("aws-node-termination-handler/asg-lifecycle-termination"),
    InterruptionTaint("aws-node-termination-handler/scheduled-maintenance"),
)


@dataclass(frozen=True)
class CapacityLabels:
    """How one provider labels and taints spot and on-demand nodes, and announces interruptions.

    The on-demand pool's node affinity: ``on_demand_value`` None with ``on_demand_is_not_spot`` false
    means on-demand nodes lack the label (GKE, AKS: ``DoesNotExist``); ``on_demand_is_not_spot`` matches
    every value but the spot one (``NotIn``), so reserved capacity counts as on-demand.
    """

    label_key: str
    spot_value: str
    on_demand_value: str | None
    spot_tolerations: tuple[SpotToleration, ...]
    on_demand_is_not_spot: bool = False
    interruption_taints: tuple[InterruptionTaint, ...] = COMMON_INTERRUPTION_TAINTS
    # How long spot pods get to stop once the provider announces an interruption (their
    # terminationGracePeriodSeconds); None: no known notice, the on-demand pods' grace period.
    spot_grace_seconds: int | None = None

    def node_selector_requirement(self, pool: CapacityPool) -> dict[str, Any]:
        """The nodeAffinity matchExpression that keeps a pool's pods on its kind of capacity."""
        if pool is CapacityPool.SPOT:
            return {"key": self.label_key, "operator": "In", "values": [self.spot_value]}
        if self.on_demand_is_not_spot:
            return {"key": self.label_key, "operator": "NotIn", "values": [self.spot_value]}
        if self.on_demand_value is None:
            return {"key": self.label_key, "operator": "DoesNotExist"}
        return {"key": self.label_key, "operator": "In", "values": [self.on_demand_value]}

    def is_spot_node(self, labels: Mapping[str, str]) -> bool:
        return labels.get(self.label_key) == self.spot_value

    def interruption_taint(self, key: str, value: str | None) -> InterruptionTaint | None:
        """The interruption signal this taint is, if it is one."""
        return next((taint for taint in self.interruption_taints if taint.matches(key, value)), None)


CAPACITY_PRESETS: Mapping[CapacityProvider, CapacityLabels] = MappingProxyType(
    {
        CapacityProvider.KARPENTER: CapacityLabels(
            # kubernetes-sigs/karpenter pkg/apis/v1/labels.go: karpenter.sh/capacity-type is spot,
            # on-demand or reserved (capacity reservations, capacity blocks). Reserved capacity is not
            # interruptible: the on-demand pool takes every value but spot.
            label_key="karpenter.sh/capacity-type",
            spot_value="spot",
            on_demand_value="on-demand",
            on_demand_is_not_spot=True,
            # Karpenter applies no capacity-type taint (core pkg/apis/v1/taints.go has none; a NodePool's
            # spec.template.spec.taints is free-form). This one is a common convention, tolerated by
            # default (harmless where absent) and replaced by spec.spot.spotTaints.
            spot_tolerations=(SpotToleration("karpenter.sh/capacity-type", "spot", TaintEffect.NO_SCHEDULE),),
            interruption_taints=(
                # Karpenter v1 taints a node it disrupts (spot interruption through its SQS queue,
                # consolidation, drift, expiry): karpenter.sh/disrupted:NoSchedule (core
                # pkg/apis/v1/taints.go); v0.32 to v0.37 used karpenter.sh/disruption=disrupting
                # (aws/karpenter-provider-aws website v1.0/upgrading/v1-migration.md).
                InterruptionTaint("karpenter.sh/disrupted"),
                InterruptionTaint("karpenter.sh/disruption", "disrupting"),
                *AWS_NODE_TERMINATION_HANDLER_TAINTS,
                *COMMON_INTERRUPTION_TAINTS,
            ),
            # EC2 gives a 2-minute spot interruption notice (docs.aws.amazon.com AWSEC2 UserGuide
            # spot-instance-termination-notices); detection (SQS) and eviction take part of it.
            spot_grace_seconds=90,
        ),
        CapacityProvider.GKE: CapacityLabels(
            # cloud.google.com/kubernetes-engine/docs/concepts/spot-vms: Spot nodes carry
            # cloud.google.com/gke-spot=true; on-demand nodes do not carry the label (a nodeSelector
            # cannot say "absent": the on-demand pool uses DoesNotExist). GKE taints the Spot nodes it
            # provisions itself (Autopilot, node auto-provisioning) cloud.google.com/gke-spot=true:
            # NoSchedule (docs: how-to/autopilot-spot-pods); a Standard pool only with --node-taints.
            label_key="cloud.google.com/gke-spot",
            spot_value="true",
            on_demand_value=None,
            spot_tolerations=(SpotToleration("cloud.google.com/gke-spot", "true", TaintEffect.NO_SCHEDULE),),
            interruption_taints=(
                # Best effort: real, and ignored by kubernetes-mixin's KubeNodeUnreachable alert, but not
                # documented for Spot. The documented signal is the kubelet's graceful node shutdown:
                # pods get DisruptionTarget (TerminationByKubelet) and the node goes NotReady.
                InterruptionTaint("cloud.google.com/impending-node-termination"),
                *COMMON_INTERRUPTION_TAINTS,
            ),
            # Preemption gives 30 s; graceful node shutdown gives ordinary pods the first 15 s of it by
            # default (docs: concepts/spot-vms, "graceful shutdown").
            spot_grace_seconds=15,
        ),
        CapacityProvider.EKS: CapacityLabels(
            # EKS managed node groups label eks.amazonaws.com/capacityType ON_DEMAND, SPOT or
            # CAPACITY_BLOCK (EKS user guide, managed node groups, capacity types): every value but SPOT
            # is on-demand capacity. No spot taint.
            label_key="eks.amazonaws.com/capacityType",
            spot_value="SPOT",
            on_demand_value="ON_DEMAND",
            on_demand_is_not_spot=True,
            spot_tolerations=(),
            # Spot managed node groups rebalance: EKS cordons and drains a node once its replacement is
            # Ready, or at the 2-minute notice (pods get DisruptionTarget); NTH taints if deployed.
            interruption_taints=(*AWS_NODE_TERMINATION_HANDLER_TAINTS, *COMMON_INTERRUPTION_TAINTS),
            spot_grace_seconds=90,
        ),
        CapacityProvider.AKS: CapacityLabels(
            # learn.microsoft.com/azure/aks/spot-node-pool: spot nodes are labelled and tainted
            # kubernetes.azure.com/scalesetpriority=spot(:NoSchedule) by AKS; regular nodes lack the label.
            label_key="kubernetes.azure.com/scalesetpriority",
            spot_value="spot",
            on_demand_value=None,
            spot_tolerations=(
                SpotToleration("kubernetes.azure.com/scalesetpriority", "spot", TaintEffect.NO_SCHEDULE),
            ),
            interruption_taints=(
                # AKS node auto-drain cordons and drains on Scheduled Events Preempt (about 30 s notice);
                # the node "may receive" this taint, named remediator.aks.microsoft.com/unschedulable in
                # older docs (learn.microsoft.com/azure/aks/node-auto-drain).
                InterruptionTaint("remediator.kubernetes.azure.com/unschedulable"),
                InterruptionTaint("remediator.aks.microsoft.com/unschedulable"),
                *COMMON_INTERRUPTION_TAINTS,
            ),
            # Scheduled Events Preempt: at least 30 s (learn.microsoft.com virtual-machines
            # linux/scheduled-events); detection and eviction take part of it.
            spot_grace_seconds=25,
        ),
    }
)


def capacity_labels(spot: SpotSpec) -> CapacityLabels:
    """The preset of ``spot.provider``, or the labels spelled out in ``spot.custom``; with
    ``spot.spotTaints`` set, its taints are the ones spot pods tolerate."""
    if spot.provider is not CapacityProvider.CUSTOM:
        labels = CAPACITY_PRESETS[spot.provider]
    elif spot.custom is None:  # the API (CEL and pydantic) already forbids this
        raise ValueError("spec.spot.custom is required when spec.spot.provider is custom")
    else:
        taint = spot.custom.spot_taint
        labels = CapacityLabels(
            label_key=spot.custom.label_key,
            spot_value=spot.custom.spot_value,
            on_demand_value=spot.custom.on_demand_value,
            spot_tolerations=() if taint is None else (SpotToleration(taint.key, taint.value, taint.effect),),
        )
    if spot.spot_taints is not None:
        labels = replace(
            labels,
            spot_tolerations=tuple(SpotToleration(t.key, t.value, t.effect) for t in spot.spot_taints),
        )
    return labels
