"""The PriorityClasses that priority tiers map to (installed once per cluster, by the Helm chart).

P0 serves production traffic and may preempt everything below it; P3 is best-effort and never preempts,
so a batch or experiment deployment cannot evict anything to make room for itself.
"""

from __future__ import annotations

from typing import Any

from deepseek_operator.api import PriorityTier
from deepseek_operator.render.pods import PRIORITY_CLASS_NAMES

PRIORITY_VALUES: dict[PriorityTier, int] = {
    PriorityTier.P0: 1_000_000,
    PriorityTier.P1: 100_000,
    PriorityTier.P2: 10_000,
    PriorityTier.P3: 1_000,
}
_DESCRIPTIONS = {
    PriorityTier.P0: "DeepSeek inference, tier P0: business-critical; preempts lower tiers.",
    PriorityTier.P1: "DeepSeek inference, tier P1: production; preempts P2 and P3.",
    PriorityTier.P2: "DeepSeek inference, tier P2 (default): standard; preempts P3.",
    PriorityTier.P3: "DeepSeek inference, tier P3: best effort; never preempts.",
}


def render_priority_classes() -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {
                "name": PRIORITY_CLASS_NAMES[tier],
                "labels": {"app.kubernetes.io/part-of": "deepseek-operator"},
            },
            "value": PRIORITY_VALUES[tier],
            "globalDefault": False,
            "preemptionPolicy": "Never" if tier is PriorityTier.P3 else "PreemptLowerPriority",
            "description": _DESCRIPTIONS[tier],
        }
        for tier in PriorityTier
    ]
