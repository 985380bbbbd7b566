"""prometheus-operator objects: a ServiceMonitor and a PrometheusRule."""

from __future__ import annotations

from typing import Any

from deepseek_operator.api import DeepSeekDeploymentSpec
from deepseek_operator.render.autoscaling import (
    ENGINE_METRICS,
    milliseconds_as_seconds,
    model_selector,
    p99_latency_query,
)
from deepseek_operator.render.labels import (
    DEPLOYMENT_LABEL,
    POOL_LABEL,
    REGION_LABEL,
    common_labels,
    deployment_selector,
)
from deepseek_operator.render.names import monitoring_name, region_service_name
from deepseek_operator.render.pods import METRICS_PATH, PORT_NAME

# HTTP status counter of the OpenAI server (vLLM groups status codes as "2xx", "5xx"; "5.."
# also matches exact codes). It has no model_name label, so alerts scope it by Service.
HTTP_REQUESTS_METRIC = "http_requests_total"
ERROR_RATE_THRESHOLD = "0.05"
# Average waiting requests per pod, as a multiple of the autoscaling target, that means the
# deployment is short of capacity (autoscaling at its maximum, or disabled).
QUEUE_BACKLOG_FACTOR = 2


def render_service_monitor(name: str, namespace: str, spec: DeepSeekDeploymentSpec) -> dict[str, Any]:
    """ServiceMonitor ``<dsd>`` scraping /metrics through the region Services.

    It selects only Services that carry the region label, so the front Service (same pods as
    the active region) is not scraped a second time. Deployment, region and pool are copied from the
    pods onto the series, for per-region dashboards and for the failover controller's queries, which
    group every deployment's series by deployment and region in one query.
    """
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": monitoring_name(name), "namespace": namespace, "labels": common_labels(name)},
        "spec": {
            "selector": {
                "matchLabels": deployment_selector(name),
                "matchExpressions": [{"key": REGION_LABEL, "operator": "Exists"}],
            },
            "namespaceSelector": {"matchNames": [namespace]},
            "endpoints": [
                {
                    "port": PORT_NAME,
                    "path": METRICS_PATH,
                    "interval": spec.monitoring.service_monitor.interval,
                }
            ],
            "podTargetLabels": [DEPLOYMENT_LABEL, REGION_LABEL, POOL_LABEL],
        },
    }


def _alert(name: str, alert: str, expr: str, duration: str, summary: str, description: str) -> dict[str, Any]:
    return {
        "alert": alert,
        "expr": expr,
        "for": duration,
        "labels": {"severity": "warning", "deepseekdeployment": name},
        "annotations": {"summary": summary, "description": description},
    }


def alert_rules(name: str, namespace: str, spec: DeepSeekDeploymentSpec) -> list[dict[str, Any]]:
    """Alerts scoped to this deployment: p99 latency (when a target is set), errors, queue backlog."""
    metrics = ENGINE_METRICS[spec.engine.name]
    model = model_selector(namespace, spec)
    services = "|".join(region_service_name(name, region.name) for region in spec.regions)
    http = f'{HTTP_REQUESTS_METRIC}{{namespace="{namespace}",service=~"{services}"'
    rules: list[dict[str, Any]] = []
    target_ms = spec.autoscaling.p99_latency_target_milliseconds
    if target_ms is not None:
        rules.append(
            _alert(
                name,
                "DeepSeekDeploymentHighLatency",
                f"{p99_latency_query(namespace, spec, '5m')} > {milliseconds_as_seconds(target_ms)}",
                "2m",
                f"{namespace}/{name}: p99 latency above {target_ms} ms",
                "The p99 end-to-end request latency has been above "
                "spec.autoscaling.p99LatencyTargetMilliseconds for 2 minutes.",
            )
        )
    rules.append(
        _alert(
            name,
            "DeepSeekDeploymentHighErrorRate",
            f'sum(rate({http},status=~"5.."}}[5m])) / sum(rate({http}}}[5m])) > {ERROR_RATE_THRESHOLD}',
            "5m",
            f"{namespace}/{name}: more than 5% of requests fail",
            "More than 5% of requests have answered with a 5xx status for 5 minutes.",
        )
    )
    backlog = QUEUE_BACKLOG_FACTOR * spec.autoscaling.queue_depth_target_per_replica
    rules.append(
        _alert(
            name,
            "DeepSeekDeploymentQueueBacklog",
            f"avg({metrics.queue_depth}{model}) > {backlog}",
            "10m",
            f"{namespace}/{name}: requests are queueing",
            f"Pods have averaged more than {backlog} waiting requests for 10 minutes "
            "(twice the autoscaling target): add capacity or raise spec.autoscaling.maxReplicas.",
        )
    )
    return rules


def render_prometheus_rule(name: str, namespace: str, spec: DeepSeekDeploymentSpec) -> dict[str, Any]:
    """PrometheusRule ``<dsd>`` with one group of alerts for this deployment."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": monitoring_name(name), "namespace": namespace, "labels": common_labels(name)},
        "spec": {
            "groups": [{"name": f"deepseek-inference.{name}", "rules": alert_rules(name, namespace, spec)}]
        },
    }
