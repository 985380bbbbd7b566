"""HorizontalPodAutoscaler and KEDA ScaledObject rendering, and the metric-name table."""

from __future__ import annotations

from typing import Any

import pytest
from deepseek_operator.api import DeepSeekDeploymentSpec, EngineName
from deepseek_operator.render import ENGINE_METRICS, render_children
from deepseek_operator.render.autoscaling import milliseconds_as_quantity, milliseconds_as_seconds
from render_support import make_spec

SCALE_TARGET = {
    "apiVersion": "serving.deepseek-operator.io/v1alpha1",
    "kind": "DeepSeekDeployment",
    "name": "r1",
}
PROMETHEUS = "http://prometheus.monitoring:9090"


def autoscalers(spec: DeepSeekDeploymentSpec) -> list[dict[str, Any]]:
    return [
        child
        for child in render_children("r1", "ml", spec)
        if child["kind"] in {"HorizontalPodAutoscaler", "ScaledObject"}
    ]


def only_autoscaler(spec: DeepSeekDeploymentSpec) -> dict[str, Any]:
    found = autoscalers(spec)
    assert len(found) == 1
    return found[0]


def test_no_autoscaler_when_disabled() -> None:
    assert autoscalers(make_spec(autoscaling={"enabled": False, "maxReplicas": 9})) == []


def test_hpa_targets_the_deepseek_deployment_on_queue_depth() -> None:
    hpa = only_autoscaler(
        make_spec(
            autoscaling={
                "enabled": True,
                "minReplicas": 2,
                "maxReplicas": 10,
                "queueDepthTargetPerReplica": 6,
            }
        )
    )
    assert (hpa["apiVersion"], hpa["kind"]) == ("autoscaling/v2", "HorizontalPodAutoscaler")
    assert hpa["metadata"]["name"] == "r1"
    assert hpa["metadata"]["namespace"] == "ml"
    assert hpa["spec"]["scaleTargetRef"] == SCALE_TARGET
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
    assert hpa["spec"]["metrics"] == [
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": "vllm_num_requests_waiting"},
                "target": {"type": "AverageValue", "averageValue": "6"},
            },
        }
    ]


def test_hpa_adds_p99_latency_as_a_quantity_of_seconds() -> None:
    hpa = only_autoscaler(make_spec(autoscaling={"enabled": True, "p99LatencyTargetMilliseconds": 1500}))
    assert hpa["spec"]["metrics"][1] == {
        "type": "Pods",
        "pods": {
            "metric": {"name": "vllm_e2e_request_latency_seconds_p99"},
            "target": {"type": "AverageValue", "averageValue": "1500m"},
        },
    }


def test_hpa_uses_sglang_metric_names_for_sglang() -> None:
    hpa = only_autoscaler(
        make_spec(
            engine={"name": "sglang"}, autoscaling={"enabled": True, "p99LatencyTargetMilliseconds": 800}
        )
    )
    names = [metric["pods"]["metric"]["name"] for metric in hpa["spec"]["metrics"]]
    assert names == ["sglang_num_queue_reqs", "sglang_e2e_request_latency_seconds_p99"]


def test_hpa_behavior_from_the_scaling_policies() -> None:
    hpa = only_autoscaler(
        make_spec(
            autoscaling={
                "enabled": True,
                "scaleUp": {"stabilizationWindowSeconds": 30, "maxPodsPerPeriod": 4, "periodSeconds": 15},
                "scaleDown": {"stabilizationWindowSeconds": 600, "maxPodsPerPeriod": 2, "periodSeconds": 300},
            }
        )
    )
    assert hpa["spec"]["behavior"] == {
        "scaleUp": {
            "stabilizationWindowSeconds": 30,
            "selectPolicy": "Max",
            "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}],
        },
        "scaleDown": {
            "stabilizationWindowSeconds": 600,
            "selectPolicy": "Max",
            "policies": [{"type": "Pods", "value": 2, "periodSeconds": 300}],
        },
    }


def test_default_behavior_scales_up_fast_and_down_slowly() -> None:
    behavior = only_autoscaler(make_spec(autoscaling={"enabled": True}))["spec"]["behavior"]
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0
    assert behavior["scaleUp"]["policies"] == [{"type": "Pods", "value": 2, "periodSeconds": 60}]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert behavior["scaleDown"]["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 120}]


def test_keda_scaled_object() -> None:
    spec = make_spec(
        model={"name": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "servedModelName": "r1-7b"},
        autoscaling={"enabled": True, "provider": "keda", "minReplicas": 0, "maxReplicas": 5},
        monitoring={"prometheusUrl": PROMETHEUS},
    )
    scaled = only_autoscaler(spec)
    assert (scaled["apiVersion"], scaled["kind"]) == ("keda.sh/v1alpha1", "ScaledObject")
    assert scaled["metadata"]["name"] == "r1"
    assert scaled["spec"]["scaleTargetRef"] == SCALE_TARGET
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (0, 5)
    assert scaled["spec"]["triggers"] == [
        {
            "type": "prometheus",
            "name": "queue-depth",
            "metricType": "AverageValue",
            "metadata": {
                "serverAddress": PROMETHEUS,
                "query": 'sum(vllm:num_requests_waiting{namespace="ml",model_name="r1-7b"})',
                "threshold": "4",
            },
        }
    ]
    hpa_config = scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]
    assert hpa_config["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300


def test_keda_latency_trigger() -> None:
    spec = make_spec(
        engine={"name": "sglang"},
        autoscaling={"enabled": True, "provider": "keda", "p99LatencyTargetMilliseconds": 2250},
        monitoring={"prometheusUrl": PROMETHEUS},
    )
    triggers = only_autoscaler(spec)["spec"]["triggers"]
    assert triggers[0]["metadata"]["query"] == (
        'sum(sglang:num_queue_reqs{namespace="ml",model_name="deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"})'
    )
    assert triggers[1] == {
        "type": "prometheus",
        "name": "p99-latency",
        "metricType": "Value",
        "metadata": {
            "serverAddress": PROMETHEUS,
            "query": "histogram_quantile(0.99, sum by (le) (rate(sglang:e2e_request_latency_seconds_bucket"
            '{namespace="ml",model_name="deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"}[2m])))',
            "threshold": "2.25",
        },
    }


@pytest.mark.parametrize(
    ("milliseconds", "seconds"), [(1, "0.001"), (250, "0.25"), (1000, "1"), (1500, "1.5"), (61001, "61.001")]
)
def test_milliseconds_as_seconds(milliseconds: int, seconds: str) -> None:
    assert milliseconds_as_seconds(milliseconds) == seconds
    assert milliseconds_as_quantity(milliseconds) == f"{milliseconds}m"


@pytest.mark.parametrize("engine", list(EngineName))
def test_custom_metric_names_are_the_prometheus_names_renamed(engine: EngineName) -> None:
    """The chart's prometheus-adapter rules turn colons into underscores (and add _p99)."""
    metrics = ENGINE_METRICS[engine]
    assert metrics.queue_depth.startswith(f"{engine.value}:")
    assert metrics.hpa_queue_depth == metrics.queue_depth.replace(":", "_")
    assert metrics.hpa_p99_latency == metrics.latency_histogram.replace(":", "_") + "_p99"


def test_every_engine_has_metrics() -> None:
    assert set(ENGINE_METRICS) == set(EngineName)
