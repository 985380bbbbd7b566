"""PodDisruptionBudgets: one per region, over its on-demand pods."""

from __future__ import annotations

from typing import Any

from deepseek_operator.api import CapacityPool
from deepseek_operator.render.labels import pool_selector, region_labels
from deepseek_operator.render.names import disruption_budget_name


def render_disruption_budget(name: str, namespace: str, region: str) -> dict[str, Any]:
    """``<dsd>-<region>``: at most one on-demand pod of the region evicted at a time (node drains, upgrades).

    Spot pods are left out: an interrupted spot node is drained through the Eviction API (Karpenter,
    AWS Node Termination Handler, AKS auto-drain), which a budget holds up until the node is gone and
    the pods are killed without their drain; the spot controller replaces them on on-demand nodes at
    the notice instead. (Voluntary drains of spot nodes are then not throttled either.)

    Rendered for every region, even one at 0 replicas: a budget over no pods is harmless, and
    keeping it avoids deleting and re-creating it each time a change of the Active region moves
    replicas between regions. ``unhealthyPodEvictionPolicy: AlwaysAllow`` lets a drain evict pods that are not
    ready (still loading, crash-looping): they serve nothing, so the budget must not block on them.
    """
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {
            "name": disruption_budget_name(name, region),
            "namespace": namespace,
            "labels": region_labels(name, region),
        },
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": pool_selector(name, region, CapacityPool.ON_DEMAND)},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }
