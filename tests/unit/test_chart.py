"""The chart agrees with the operator it deploys: version, CRD, PriorityClasses, metric names, docs.

Each test compares the chart with the single source of truth in the operator package or the
repository, so a change on one side that forgets the other fails here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import deepseek_operator
import yaml
from chart_support import CHART, REPO_ROOT, find, hack_chart_module, only, render
from deepseek_operator.api import DeepSeekDeploymentSpec, EngineName
from deepseek_operator.render.autoscaling import (
    ENGINE_METRICS,
    LATENCY_WINDOW,
    render_horizontal_pod_autoscaler,
)
from deepseek_operator.render.priority import render_priority_classes

MONITORING_VALUES = CHART / "ci" / "monitoring-values.yaml"


def test_chart_version_and_app_version_are_the_operator_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["version"] == "0.1.0"
    assert chart["appVersion"] == deepseek_operator.__version__


def test_chart_crd_is_an_exact_copy_of_the_generated_crd() -> None:
    """`make crds` regenerates crds/ and copies the file into the chart."""
    name = "serving.deepseek-operator.io_deepseekdeployments.yaml"
    generated = (REPO_ROOT / "crds" / name).read_bytes()
    assert (CHART / "crds" / name).read_bytes() == generated, "run `make crds`"


def _without_chart_labels(obj: dict[str, Any]) -> dict[str, Any]:
    metadata = {key: value for key, value in obj["metadata"].items() if key not in {"labels", "annotations"}}
    return {**obj, "metadata": metadata}


def test_priority_classes_are_the_ones_the_operator_renders() -> None:
    rendered = {pc["metadata"]["name"]: pc for pc in find(render(), "PriorityClass")}
    expected = {pc["metadata"]["name"]: pc for pc in render_priority_classes()}
    assert sorted(rendered) == sorted(expected)
    for name, priority_class in expected.items():
        chart_object = rendered[name]
        assert _without_chart_labels(chart_object) == _without_chart_labels(priority_class)
        assert priority_class["metadata"]["labels"].items() <= chart_object["metadata"]["labels"].items()
        assert chart_object["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_priority_classes_can_be_left_to_another_release() -> None:
    assert not find(render(set_values=["priorityClasses.create=false"]), "PriorityClass")


def _adapter_rules() -> list[dict[str, Any]]:
    config_map = only(render([MONITORING_VALUES]), "ConfigMap", "dso-deepseek-operator-prometheus-adapter")
    assert config_map["metadata"]["namespace"] == "monitoring"
    rules: list[dict[str, Any]] = yaml.safe_load(config_map["data"]["config.yaml"])["rules"]
    return rules


def _hpa_metric_names(engine: EngineName) -> set[str]:
    spec = DeepSeekDeploymentSpec.model_validate(
        {
            "model": {"name": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"},
            "engine": {"name": engine.value},
            "regions": [{"name": "us-east", "role": "Active"}],
            "failover": {"enabled": False},
            "autoscaling": {"enabled": True, "maxReplicas": 4, "p99LatencyTargetMilliseconds": 2000},
        }
    )
    hpa = render_horizontal_pod_autoscaler("r1", "serving", spec)
    return {metric["pods"]["metric"]["name"] for metric in hpa["spec"]["metrics"]}


def test_adapter_rules_serve_every_metric_the_operator_hpas_ask_for() -> None:
    served = {rule["name"]["as"] for rule in _adapter_rules()}
    asked = set().union(*(_hpa_metric_names(engine) for engine in EngineName))
    assert asked == {
        name
        for metrics in ENGINE_METRICS.values()
        for name in (metrics.hpa_queue_depth, metrics.hpa_p99_latency)
    }
    assert served == asked


def test_adapter_rules_read_the_engine_series_they_rename() -> None:
    rules = {rule["name"]["as"]: rule for rule in _adapter_rules()}
    for metrics in ENGINE_METRICS.values():
        queue = rules[metrics.hpa_queue_depth]
        assert queue["seriesQuery"].startswith(metrics.queue_depth + "{")
        assert queue["name"]["matches"] == f"^{metrics.queue_depth}$"
        latency = rules[metrics.hpa_p99_latency]
        assert latency["seriesQuery"].startswith(f"{metrics.latency_histogram}_bucket{{")
        assert latency["name"]["matches"] == f"^{metrics.latency_histogram}_bucket$"
        assert latency["metricsQuery"].startswith("histogram_quantile(0.99, sum by (le, <<.GroupBy>>) (rate(")
        assert f"[{LATENCY_WINDOW}]" in latency["metricsQuery"]
        for rule in (queue, latency):
            # The HPA asks per pod of a namespace: both must map to Kubernetes resources.
            assert rule["resources"]["overrides"] == {
                "namespace": {"resource": "namespace"},
                "pod": {"resource": "pod"},
            }


def test_prometheus_rule_has_the_fleet_alerts() -> None:
    rule = only(render([MONITORING_VALUES]), "PrometheusRule")
    alerts = {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}
    latency = alerts["DeepSeekInferenceP99LatencyHigh"]
    assert "histogram_quantile(0.99" in latency["expr"]
    assert "vllm:e2e_request_latency_seconds_bucket" in latency["expr"]
    assert latency["expr"].rstrip().endswith("> 10")
    assert latency["for"] == "2m"
    errors = alerts["DeepSeekInferenceErrorRateHigh"]
    assert 'status=~"5.."' in errors["expr"]
    assert errors["expr"].rstrip().endswith("> 0.05")
    assert errors["for"] == "5m"
    assert (
        alerts["DeepSeekDeploymentFailedOver"]["expr"]
        == "increase(deepseek_operator_failovers_total[10m]) > 0"
    )
    spot = alerts["DeepSeekSpotReplicasPending"]
    assert 'deepseek_operator_replicas{pool="spot",state="desired"}' in spot["expr"]
    assert 'deepseek_operator_replicas{pool="spot",state="ready"}' in spot["expr"]
    assert spot["for"] == "10m"
    for alert in alerts.values():
        assert alert["labels"]["severity"] in {"warning", "critical"}
        assert alert["annotations"]["summary"]


def test_service_monitor_keeps_the_operator_metrics_own_namespace_label() -> None:
    monitor = only(render([MONITORING_VALUES]), "ServiceMonitor")
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "metrics"
    assert endpoint["honorLabels"] is True
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    service = only(render([MONITORING_VALUES]), "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()


def test_grafana_dashboard_shows_queue_latency_replicas_and_failovers() -> None:
    config_map = only(render([MONITORING_VALUES]), "ConfigMap", "dso-deepseek-operator-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(config_map["data"]["deepseek-operator.json"])
    assert dashboard == json.loads((CHART / "dashboards" / "deepseek-operator.json").read_text())
    expressions = {
        panel["title"]: " ".join(target["expr"] for target in panel["targets"])
        for panel in dashboard["panels"]
    }
    assert "vllm:num_requests_waiting" in expressions["Queue depth"]
    assert "histogram_quantile(0.99" in expressions["p99 latency"]
    assert "vllm:e2e_request_latency_seconds_bucket" in expressions["p99 latency"]
    assert (
        "sum by (region, pool, state) (deepseek_operator_replicas"
        in expressions["Replicas per region and pool"]
    )
    assert "deepseek_operator_failovers_total" in expressions["Failovers"]
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])


def test_monitoring_objects_are_opt_in() -> None:
    kinds = {obj["kind"] for obj in render()}
    assert not kinds & {"ServiceMonitor", "PrometheusRule", "ConfigMap"}


def test_every_values_key_is_documented() -> None:
    chart_module = hack_chart_module()
    values_text = (CHART / "values.yaml").read_text()
    keys = chart_module.documented_keys(values_text)

    def paths(node: Any, prefix: str = "") -> list[str]:
        found = []
        for key, value in node.items():
            found.append(prefix + key)
            if isinstance(value, dict):
                found += paths(value, prefix + key + ".")
        return found

    # The parser sees exactly the keys YAML sees, so "documented" means what it says.
    assert sorted(key.path for key in keys) == sorted(paths(yaml.safe_load(values_text)))
    assert [key.path for key in keys if not key.description] == []


def _hack_chart(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "e2e")}
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "hack" / "chart.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )


def test_chart_readme_values_table_is_current() -> None:
    result = _hack_chart("readme", "--check")
    assert result.returncode == 0, result.stderr


def test_manifests_base_is_current() -> None:
    result = _hack_chart("manifests", "--check")
    assert result.returncode == 0, result.stderr


def test_manifests_base_is_the_chart_with_its_defaults_and_crds() -> None:
    base = REPO_ROOT / "manifests" / "base"
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
    objects = [
        document
        for name in kustomization["resources"]
        for document in yaml.safe_load_all((base / name).read_text())
        if document
    ]
    kinds = sorted({obj["kind"] for obj in objects})
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "Deployment",
        "Namespace",
        "PriorityClass",
        "Service",
        "ServiceAccount",
    ]
    crd_names = {obj["metadata"]["name"] for obj in objects if obj["kind"] == "CustomResourceDefinition"}
    assert crd_names == {
        "deepseekdeployments.serving.deepseek-operator.io",
        "kopfpeerings.kopf.dev",
        "clusterkopfpeerings.kopf.dev",
    }
    namespaced = [obj for obj in objects if obj["kind"] in {"Deployment", "Service", "ServiceAccount"}]
    assert {obj["metadata"]["namespace"] for obj in namespaced} == {"deepseek-operator"}
    assert not [obj for obj in objects if obj["kind"] == "Pod"], "helm test hooks stay out of the manifests"
