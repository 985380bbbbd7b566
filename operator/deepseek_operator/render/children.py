"""``render_children``: every object a DeepSeekDeployment owns, from its spec alone."""

from __future__ import annotations

from typing import Any

from deepseek_operator.api import AutoscalingProvider, CapacityPool, DeepSeekDeploymentSpec
from deepseek_operator.render.autoscaling import render_horizontal_pod_autoscaler, render_scaled_object
from deepseek_operator.render.deployments import render_deployment
from deepseek_operator.render.disruption import render_disruption_budget
from deepseek_operator.render.monitoring import render_prometheus_rule, render_service_monitor
from deepseek_operator.render.replicas import (
    NO_ADJUSTMENTS,
    ReplicaAdjustments,
    plan_replicas,
    resolve_active_region,
)
from deepseek_operator.render.services import render_front_service, render_region_service


def capacity_pools(spec: DeepSeekDeploymentSpec) -> tuple[CapacityPool, ...]:
    """The pools each region runs: on-demand always, spot only when spot is enabled."""
    if spec.spot.enabled:
        return (CapacityPool.ON_DEMAND, CapacityPool.SPOT)
    return (CapacityPool.ON_DEMAND,)


def render_children(
    name: str,
    namespace: str,
    spec: DeepSeekDeploymentSpec,
    active_region: str | None = None,
    adjustments: ReplicaAdjustments = NO_ADJUSTMENTS,
    autoscaler_floor: int | None = None,
) -> list[dict[str, Any]]:
    """All child objects of the DeepSeekDeployment ``namespace/name``, as plain dicts.

    ``active_region`` overrides the spec's Active region (the region the front Service selects); it
    must be one of spec.regions, else ValueError. ``adjustments`` are the controllers' changes to the
    replica plan. The reconcile reads both from status (`deepseek_operator.placement`), and so
    ``autoscaler_floor``, the predictive floor the autoscaler's minimum rises to.

    The order is fixed: Deployments (per region in spec order, on-demand then spot), region
    Services, the front Service, PodDisruptionBudgets, then the autoscaler, ServiceMonitor and
    PrometheusRule when enabled. Objects that are not rendered (a spot Deployment once spot is
    disabled, an HPA once autoscaling is off) are for the caller to delete. Owner references are
    not set here.
    """
    active = resolve_active_region(spec, active_region)
    plan = plan_replicas(spec, active, adjustments)
    children: list[dict[str, Any]] = []
    for region in spec.regions:
        for pool in capacity_pools(spec):
            replicas = plan[region.name].for_pool(pool)
            children.append(render_deployment(name, namespace, spec, region, pool, replicas))
    children += [render_region_service(name, namespace, spec, region.name) for region in spec.regions]
    children.append(render_front_service(name, namespace, spec, active))
    children += [render_disruption_budget(name, namespace, region.name) for region in spec.regions]
    if spec.autoscaling.enabled:
        if spec.autoscaling.provider is AutoscalingProvider.KEDA:
            children.append(render_scaled_object(name, namespace, spec, autoscaler_floor))
        else:
            children.append(render_horizontal_pod_autoscaler(name, namespace, spec, autoscaler_floor))
    if spec.monitoring.service_monitor.enabled:
        children.append(render_service_monitor(name, namespace, spec))
    if spec.monitoring.prometheus_rule.enabled:
        children.append(render_prometheus_rule(name, namespace, spec))
    return children
