"""ServiceMonitor and PrometheusRule rendering."""

from __future__ import annotations

from typing import Any

import pytest
from deepseek_operator.api import DeepSeekDeploymentSpec
from deepseek_operator.render import render_children
from render_support import make_spec


def children_of(spec: DeepSeekDeploymentSpec) -> list[dict[str, Any]]:
    return render_children("r1", "ml", spec)


def one(children: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [child for child in children if child["kind"] == kind]
    assert len(found) == 1
    return found[0]


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Evaluate a LabelSelector (matchLabels and Exists expressions) against labels."""
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "Exists"
        if expression["key"] not in labels:
            return False
    return True


def test_nothing_is_rendered_when_disabled() -> None:
    kinds = {child["kind"] for child in children_of(make_spec())}
    assert kinds.isdisjoint({"ServiceMonitor", "PrometheusRule"})


def test_service_monitor_scrapes_the_region_services_once() -> None:
    children = children_of(make_spec(monitoring={"serviceMonitor": {"enabled": True, "interval": "30s"}}))
    monitor = one(children, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["name"] == "r1"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["ml"]}
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]
    selected = [
        child["metadata"]["name"]
        for child in children
        if child["kind"] == "Service" and selects(monitor["spec"]["selector"], child["metadata"]["labels"])
    ]
    assert selected == ["r1-us-east-1", "r1-us-west-2"]  # not the front Service: same pods
    for child in children:
        if child["kind"] == "Service":
            assert [port["name"] for port in child["spec"]["ports"]] == ["http"]
    # The deployment and region labels group every deployment's series in the failover queries.
    assert monitor["spec"]["podTargetLabels"] == [
        "serving.deepseek-operator.io/deployment",
        "serving.deepseek-operator.io/region",
        "serving.deepseek-operator.io/pool",
    ]


def alerts(spec: DeepSeekDeploymentSpec) -> dict[str, dict[str, Any]]:
    rule = one(children_of(spec), "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["name"] == "r1"
    (group,) = rule["spec"]["groups"]
    assert group["name"] == "deepseek-inference.r1"
    return {alert["alert"]: alert for alert in group["rules"]}


def test_prometheus_rule_without_latency_target() -> None:
    found = alerts(make_spec(monitoring={"prometheusRule": {"enabled": True}}))
    assert list(found) == ["DeepSeekDeploymentHighErrorRate", "DeepSeekDeploymentQueueBacklog"]
    errors = found["DeepSeekDeploymentHighErrorRate"]
    assert errors["for"] == "5m"
    assert errors["expr"] == (
        'sum(rate(http_requests_total{namespace="ml",service=~"r1-us-east-1|r1-us-west-2",status=~"5.."}[5m]))'
        ' / sum(rate(http_requests_total{namespace="ml",service=~"r1-us-east-1|r1-us-west-2"}[5m])) > 0.05'
    )
    backlog = found["DeepSeekDeploymentQueueBacklog"]
    assert backlog["expr"] == (
        "avg(vllm:num_requests_waiting"
        '{namespace="ml",model_name="deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"}) > 8'
    )
    for alert in found.values():
        assert alert["labels"] == {"severity": "warning", "deepseekdeployment": "r1"}
        assert alert["annotations"]["summary"].startswith("ml/r1: ")


@pytest.mark.parametrize(("engine", "histogram"), [("vllm", "vllm:"), ("sglang", "sglang:")])
def test_prometheus_rule_latency_alert_uses_the_target(engine: str, histogram: str) -> None:
    spec = make_spec(
        model={"name": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "servedModelName": "r1"},
        engine={"name": engine},
        autoscaling={"p99LatencyTargetMilliseconds": 1200, "queueDepthTargetPerReplica": 10},
        monitoring={"prometheusRule": {"enabled": True}},
    )
    found = alerts(spec)
    latency = found["DeepSeekDeploymentHighLatency"]
    assert latency["for"] == "2m"
    assert latency["expr"] == (
        f"histogram_quantile(0.99, sum by (le) (rate({histogram}e2e_request_latency_seconds_bucket"
        '{namespace="ml",model_name="r1"}[5m]))) > 1.2'
    )
    assert found["DeepSeekDeploymentQueueBacklog"]["expr"].endswith('{namespace="ml",model_name="r1"}) > 20')
