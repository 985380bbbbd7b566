"""Autoscaling of the active region: a HorizontalPodAutoscaler or a KEDA ScaledObject.

Both target the DeepSeekDeployment itself through its /scale subresource (spec.replicas and
status.selector), so the operator stays the only writer of the Deployments.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from deepseek_operator.api import (
    API_VERSION,
    KIND,
    AutoscalingSpec,
    DeepSeekDeploymentSpec,
    EngineName,
)
from deepseek_operator.render.labels import common_labels
from deepseek_operator.render.names import autoscaler_name


@dataclass(frozen=True)
class EngineMetrics:
    """Metric names of one engine.

    ``queue_depth`` and ``latency_histogram`` are what the engine exports on /metrics (Prometheus
    names, with colons). ``hpa_queue_depth`` and ``hpa_p99_latency`` are what the chart's
    prometheus-adapter rules expose in the custom metrics API (colons become underscores; the p99
    is computed by the adapter from the histogram).
    """

    queue_depth: str
    latency_histogram: str
    hpa_queue_depth: str
    hpa_p99_latency: str
    # Finished requests (a counter) and running requests (a gauge, one series per serving pod): the
    # request-rate history predictive pre-scaling forecasts from, and the replicas that served it.
    requests_counter: str = ""
    running: str = ""


ENGINE_METRICS: Mapping[EngineName, EngineMetrics] = MappingProxyType(
    {
        EngineName.VLLM: EngineMetrics(
            queue_depth="vllm:num_requests_waiting",
            latency_histogram="vllm:e2e_request_latency_seconds",
            hpa_queue_depth="vllm_num_requests_waiting",
            hpa_p99_latency="vllm_e2e_request_latency_seconds_p99",
            requests_counter="vllm:request_success_total",
            running="vllm:num_requests_running",
        ),
        EngineName.SGLANG: EngineMetrics(
            queue_depth="sglang:num_queue_reqs",
            latency_histogram="sglang:e2e_request_latency_seconds",
            hpa_queue_depth="sglang_num_queue_reqs",
            hpa_p99_latency="sglang_e2e_request_latency_seconds_p99",
            requests_counter="sglang:num_requests_total",
            running="sglang:num_running_reqs",
        ),
    }
)

# Window of the rate() under the p99 latency that KEDA scales on.
LATENCY_WINDOW = "2m"


def milliseconds_as_quantity(milliseconds: int) -> str:
    """A duration in ms as a Quantity of seconds: 1500 -> "1500m" (1.5 s); no floats involved."""
    return f"{milliseconds}m"


def milliseconds_as_seconds(milliseconds: int) -> str:
    """A duration in ms as a decimal number of seconds: 1500 -> "1.5", 2000 -> "2", 250 -> "0.25"."""
    seconds, millis = divmod(milliseconds, 1000)
    if millis == 0:
        return str(seconds)
    return f"{seconds}.{millis:03d}".rstrip("0")


def model_selector(namespace: str, spec: DeepSeekDeploymentSpec) -> str:
    """PromQL label matchers of this deployment's engine metrics.

    The API restricts model names to characters that need no escaping inside the quotes.
    """
    return f'{{namespace="{namespace}",model_name="{spec.served_model_name}"}}'


def p99_latency_query(namespace: str, spec: DeepSeekDeploymentSpec, window: str) -> str:
    """PromQL: p99 end-to-end latency in seconds over ``window``."""
    histogram = ENGINE_METRICS[spec.engine.name].latency_histogram
    return (
        f"histogram_quantile(0.99, sum by (le) "
        f"(rate({histogram}_bucket{model_selector(namespace, spec)}[{window}])))"
    )


def scaling_behavior(autoscaling: AutoscalingSpec) -> dict[str, Any]:
    """autoscaling/v2 behavior: at most N pods per period each way; Max picks the faster policy."""
    up, down = autoscaling.scale_up, autoscaling.scale_down
    return {
        "scaleUp": {
            "stabilizationWindowSeconds": up.stabilization_window_seconds,
            "selectPolicy": "Max",
            "policies": [
                {"type": "Pods", "value": up.max_pods_per_period, "periodSeconds": up.period_seconds}
            ],
        },
        "scaleDown": {
            "stabilizationWindowSeconds": down.stabilization_window_seconds,
            "selectPolicy": "Max",
            "policies": [
                {"type": "Pods", "value": down.max_pods_per_period, "periodSeconds": down.period_seconds}
            ],
        },
    }


def _scale_target(name: str) -> dict[str, str]:
    return {"apiVersion": API_VERSION, "kind": KIND, "name": name}


def min_replicas(autoscaling: AutoscalingSpec, floor: int | None) -> int:
    """The autoscaler's minimum: the spec's, raised to the predictive floor when one is set (never
    above the spec's maximum)."""
    if floor is None:
        return autoscaling.min_replicas
    return min(autoscaling.max_replicas, max(autoscaling.min_replicas, floor))


def render_horizontal_pod_autoscaler(
    name: str, namespace: str, spec: DeepSeekDeploymentSpec, floor: int | None = None
) -> dict[str, Any]:
    """autoscaling/v2 HPA ``<dsd>`` on per-pod queue depth (and p99 latency when a target is set).

    Pods metrics are averaged over the pods of status.selector, i.e. the active region. ``floor`` is
    the predictive floor (`deepseek_operator.predictive`): minReplicas rises to it.
    """
    autoscaling = spec.autoscaling
    metrics = ENGINE_METRICS[spec.engine.name]
    targets: list[dict[str, Any]] = [
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": metrics.hpa_queue_depth},
                "target": {
                    "type": "AverageValue",
                    "averageValue": str(autoscaling.queue_depth_target_per_replica),
                },
            },
        }
    ]
    if autoscaling.p99_latency_target_milliseconds is not None:
        targets.append(
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": metrics.hpa_p99_latency},
                    "target": {
                        "type": "AverageValue",
                        "averageValue": milliseconds_as_quantity(autoscaling.p99_latency_target_milliseconds),
                    },
                },
            }
        )
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": autoscaler_name(name), "namespace": namespace, "labels": common_labels(name)},
        "spec": {
            "scaleTargetRef": _scale_target(name),
            "minReplicas": min_replicas(autoscaling, floor),
            "maxReplicas": autoscaling.max_replicas,
            "metrics": targets,
            "behavior": scaling_behavior(autoscaling),
        },
    }


def render_scaled_object(
    name: str, namespace: str, spec: DeepSeekDeploymentSpec, floor: int | None = None
) -> dict[str, Any]:
    """KEDA ScaledObject ``<dsd>`` with Prometheus triggers on monitoring.prometheusUrl; minReplicaCount
    rises to the predictive ``floor`` when one is set.

    Queue depth is a sum over all pods with an AverageValue threshold (KEDA divides by replicas);
    p99 latency, when a target is set, is one value for the whole deployment (metricType Value).
    """
    autoscaling = spec.autoscaling
    server = spec.monitoring.prometheus_url
    if server is None:  # the API (CEL and pydantic) already forbids this
        raise ValueError("spec.autoscaling.provider keda needs spec.monitoring.prometheusUrl")
    metrics = ENGINE_METRICS[spec.engine.name]
    triggers: list[dict[str, Any]] = [
        {
            "type": "prometheus",
            "name": "queue-depth",
            "metricType": "AverageValue",
            "metadata": {
                "serverAddress": server,
                "query": f"sum({metrics.queue_depth}{model_selector(namespace, spec)})",
                "threshold": str(autoscaling.queue_depth_target_per_replica),
            },
        }
    ]
    if autoscaling.p99_latency_target_milliseconds is not None:
        triggers.append(
            {
                "type": "prometheus",
                "name": "p99-latency",
                "metricType": "Value",
                "metadata": {
                    "serverAddress": server,
                    "query": p99_latency_query(namespace, spec, LATENCY_WINDOW),
                    "threshold": milliseconds_as_seconds(autoscaling.p99_latency_target_milliseconds),
                },
            }
        )
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": autoscaler_name(name), "namespace": namespace, "labels": common_labels(name)},
        "spec": {
            "scaleTargetRef": _scale_target(name),
            "minReplicaCount": min_replicas(autoscaling, floor),
            "maxReplicaCount": autoscaling.max_replicas,
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": scaling_behavior(autoscaling)}},
            "triggers": triggers,
        },
    }
