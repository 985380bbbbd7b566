"""PodDisruptionBudgets: one per region."""

from __future__ import annotations

from typing import Any

from deepseek_operator.render.labels import region_labels, region_selector
from deepseek_operator.render.names import disruption_budget_name


def render_disruption_budget(name: str, namespace: str, region: str) -> dict[str, Any]:
    """``<dsd>-<region>``: at most one pod of the region evicted at a time (node drains, upgrades).

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
            "selector": {"matchLabels": region_selector(name, region)},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }
