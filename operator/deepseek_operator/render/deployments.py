"""One apps/v1 Deployment per region and capacity pool."""

from __future__ import annotations

from typing import Any

from deepseek_operator.api import CapacityPool, DeepSeekDeploymentSpec, RegionSpec
from deepseek_operator.render.labels import pool_labels, pool_selector
from deepseek_operator.render.names import deployment_name
from deepseek_operator.render.pods import STARTUP_BUDGET_SECONDS, pod_template

REVISION_HISTORY_LIMIT = 5
# The default 600 s would report ProgressDeadlineExceeded while a big model is still loading:
# allow the whole startup-probe budget plus 10 minutes for scheduling and the image pull.
PROGRESS_DEADLINE_SECONDS = STARTUP_BUDGET_SECONDS + 600


def render_deployment(
    name: str,
    namespace: str,
    spec: DeepSeekDeploymentSpec,
    region: RegionSpec,
    pool: CapacityPool,
    replicas: int,
) -> dict[str, Any]:
    """The Deployment ``<dsd>-<region>-<pool>`` with ``replicas`` pods (rendered even when 0)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": deployment_name(name, region.name, pool),
            "namespace": namespace,
            "labels": pool_labels(name, region.name, pool),
        },
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": REVISION_HISTORY_LIMIT,
            "progressDeadlineSeconds": PROGRESS_DEADLINE_SECONDS,
            "selector": {"matchLabels": pool_selector(name, region.name, pool)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {
                    "maxSurge": spec.rollout.max_surge,
                    "maxUnavailable": spec.rollout.max_unavailable,
                },
            },
            "template": pod_template(name, spec, region, pool),
        },
    }
