"""Pure rendering: a DeepSeekDeployment spec in, the Kubernetes objects it owns out (plain dicts).

No I/O and no Kubernetes client here; handlers apply the objects and set owner references.
"""

from deepseek_operator.render.autoscaling import ENGINE_METRICS, EngineMetrics
from deepseek_operator.render.capacity import (
    CAPACITY_PRESETS,
    CapacityLabels,
    SpotToleration,
    capacity_labels,
)
from deepseek_operator.render.children import capacity_pools, render_children
from deepseek_operator.render.labels import (
    CONFIG_HASH_ANNOTATION,
    DEPLOYMENT_LABEL,
    POOL_LABEL,
    REGION_LABEL,
    common_labels,
    pool_selector,
    region_selector,
    selector_string,
)
from deepseek_operator.render.names import (
    autoscaler_name,
    deployment_name,
    disruption_budget_name,
    front_service_name,
    monitoring_name,
    region_service_name,
)
from deepseek_operator.render.pods import PRIORITY_CLASS_NAMES, config_hash
from deepseek_operator.render.replicas import (
    NO_ADJUSTMENTS,
    PoolReplicas,
    ReplicaAdjustments,
    plan_replicas,
    region_total_replicas,
    resolve_active_region,
    split_replicas,
)

__all__ = [
    "CAPACITY_PRESETS",
    "CONFIG_HASH_ANNOTATION",
    "DEPLOYMENT_LABEL",
    "ENGINE_METRICS",
    "NO_ADJUSTMENTS",
    "POOL_LABEL",
    "PRIORITY_CLASS_NAMES",
    "REGION_LABEL",
    "CapacityLabels",
    "EngineMetrics",
    "PoolReplicas",
    "ReplicaAdjustments",
    "SpotToleration",
    "autoscaler_name",
    "capacity_labels",
    "capacity_pools",
    "common_labels",
    "config_hash",
    "deployment_name",
    "disruption_budget_name",
    "front_service_name",
    "monitoring_name",
    "plan_replicas",
    "pool_selector",
    "region_selector",
    "region_service_name",
    "region_total_replicas",
    "render_children",
    "resolve_active_region",
    "selector_string",
    "split_replicas",
]
