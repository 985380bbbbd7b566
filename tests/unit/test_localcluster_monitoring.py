"""Prometheus configuration of the local cluster: prometheus-operator's scrape jobs, and loopback-only targets."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from deepseek_operator.render.monitoring import render_prometheus_rule, render_service_monitor
from localcluster import promconfig, promsync
from localcluster.addresses import LOOPBACK_ADDRESS_ANNOTATION
from render_support import make_spec

KUBECONFIG = Path("/tmp/kubeconfig")
ANNOTATION_LABEL = "__meta_kubernetes_pod_annotation_localcluster_deepseek_operator_io_loopback_address"


def _monitor(**endpoint: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": "demo"},
        "spec": {
            "selector": {
                "matchLabels": {"app.kubernetes.io/name": "web"},
                "matchExpressions": [
                    {"key": "serving.deepseek-operator.io/region", "operator": "Exists"},
                    {"key": "tier", "operator": "NotIn", "values": ["a", "b"]},
                ],
            },
            "endpoints": [{"port": "http", "path": "/metrics", "interval": "1s", **endpoint}],
            "podTargetLabels": ["serving.deepseek-operator.io/region"],
        },
    }


def _apply(relabelings: list[dict[str, Any]], labels: dict[str, str]) -> dict[str, str] | None:
    """Prometheus' relabeling (keep, drop, replace), enough to check what a target becomes."""
    labels = dict(labels)
    for rule in relabelings:
        action = rule.get("action", "replace")
        value = rule.get("separator", ";").join(
            labels.get(name, "") for name in rule.get("source_labels", [])
        )
        match = re.fullmatch(rule.get("regex", "(.*)"), value)
        if action == "keep" and not match:
            return None
        if action == "drop" and match:
            return None
        if action == "replace" and match:
            replacement = re.sub(r"\$\{(\d+)\}", r"\\\1", rule.get("replacement", "${1}"))
            result = match.expand(replacement)
            if result:
                labels[rule["target_label"]] = result
            else:
                labels.pop(rule["target_label"], None)
    return labels


def _discovered(annotation: str | None, port_name: str = "http") -> dict[str, str]:
    labels = {
        "__address__": "10.244.0.7:8080",
        "job": "serviceMonitor/demo/web/0",
        "__meta_kubernetes_namespace": "demo",
        "__meta_kubernetes_service_name": "web-us-east",
        "__meta_kubernetes_service_label_app_kubernetes_io_name": "web",
        "__meta_kubernetes_service_labelpresent_app_kubernetes_io_name": "true",
        "__meta_kubernetes_service_labelpresent_serving_deepseek_operator_io_region": "true",
        "__meta_kubernetes_endpointslice_port_name": port_name,
        "__meta_kubernetes_endpointslice_port": "8080",
        "__meta_kubernetes_endpointslice_address_target_kind": "Pod",
        "__meta_kubernetes_endpointslice_address_target_name": "web-abc",
        "__meta_kubernetes_pod_name": "web-abc",
        "__meta_kubernetes_pod_container_name": "engine",
        "__meta_kubernetes_pod_phase": "Running",
        "__meta_kubernetes_pod_label_serving_deepseek_operator_io_region": "us-east",
    }
    if annotation is not None:
        labels[ANNOTATION_LABEL] = annotation
        labels[ANNOTATION_LABEL.replace("_annotation_", "_annotationpresent_", 1)] = "true"
    return labels


def test_the_annotation_meta_label_is_the_one_prometheus_derives_from_the_annotation_name() -> None:
    assert (
        "__meta_kubernetes_pod_annotation_" + promconfig.sanitize_label_name(LOOPBACK_ADDRESS_ANNOTATION)
        == ANNOTATION_LABEL
    )


def test_a_job_per_service_monitor_endpoint_named_and_discovered_as_prometheus_operator_does() -> None:
    (job,) = promconfig.scrape_configs(_monitor(), KUBECONFIG)
    assert job["job_name"] == "serviceMonitor/demo/web/0"
    assert job["kubernetes_sd_configs"] == [
        {"role": "endpointslice", "kubeconfig_file": str(KUBECONFIG), "namespaces": {"names": ["demo"]}}
    ]
    assert (job["scrape_interval"], job["metrics_path"], job["honor_labels"]) == ("1s", "/metrics", False)


def test_an_annotated_target_gets_prometheus_operators_labels_and_its_loopback_address() -> None:
    (job,) = promconfig.scrape_configs(_monitor(), KUBECONFIG)
    target = _apply(job["relabel_configs"], _discovered("127.0.0.7"))
    assert target is not None
    assert target["__address__"] == "127.0.0.7:8080"
    assert {key: target[key] for key in ("namespace", "service", "pod", "container", "endpoint", "job")} == {
        "namespace": "demo",
        "service": "web-us-east",
        "pod": "web-abc",
        "container": "engine",
        "endpoint": "http",
        "job": "web-us-east",
    }
    assert target["serving_deepseek_operator_io_region"] == "us-east"


@pytest.mark.parametrize(
    "annotation",
    [None, "", "10.244.0.7", "128.0.0.1", "127.0.0.256", "127.0.0.1:9090", "::1", "127.0.0.1 ", "1127.0.0.1"],
)
def test_a_target_without_a_loopback_annotation_is_dropped(annotation: str | None) -> None:
    (job,) = promconfig.scrape_configs(_monitor(), KUBECONFIG)
    assert _apply(job["relabel_configs"], _discovered(annotation)) is None


def test_no_relabeling_of_a_service_monitor_can_move_a_target_off_loopback() -> None:
    hostile = [{"action": "replace", "targetLabel": "__address__", "replacement": "10.244.0.9:80"}]
    (job,) = promconfig.scrape_configs(_monitor(relabelings=hostile), KUBECONFIG)
    target = _apply(job["relabel_configs"], _discovered("127.0.0.7"))
    assert target is not None
    assert target["__address__"] == "127.0.0.7:8080"
    assert job["relabel_configs"][-3:] == promconfig.loopback_only_relabelings()


def test_targets_are_kept_by_port_name_and_service_labels() -> None:
    (job,) = promconfig.scrape_configs(_monitor(), KUBECONFIG)
    assert _apply(job["relabel_configs"], _discovered("127.0.0.7", port_name="grpc")) is None
    unlabelled = _discovered("127.0.0.7")
    del unlabelled["__meta_kubernetes_service_labelpresent_serving_deepseek_operator_io_region"]
    assert _apply(job["relabel_configs"], unlabelled) is None
    excluded = {**_discovered("127.0.0.7"), "__meta_kubernetes_service_label_tier": "a"}
    excluded["__meta_kubernetes_service_labelpresent_tier"] = "true"
    assert _apply(job["relabel_configs"], excluded) is None


def test_honor_labels_and_any_namespace() -> None:
    monitor = _monitor(honorLabels=True)
    monitor["spec"]["namespaceSelector"] = {"any": True}
    (job,) = promconfig.scrape_configs(monitor, KUBECONFIG)
    assert job["honor_labels"] is True
    assert "namespaces" not in job["kubernetes_sd_configs"][0]


def test_the_operators_own_service_monitor_and_prometheus_rule_become_a_job_and_a_rule_file(
    tmp_path: Path,
) -> None:
    spec = make_spec()
    monitor = render_service_monitor("chat", "demo", spec)
    rule = render_prometheus_rule("chat", "demo", spec)
    rule["metadata"]["uid"] = "u-1"
    assert promsync.sync_files(tmp_path, KUBECONFIG, [monitor], [rule])
    config = (tmp_path / "prometheus.yml").read_text()
    assert "job_name: serviceMonitor/demo/chat/0" in config
    assert config.count("job_name:") == 1
    rules_file = tmp_path / "rules" / "demo-chat-u-1.yaml"
    assert "DeepSeekDeploymentQueueBacklog" in rules_file.read_text()
    assert not promsync.sync_files(tmp_path, KUBECONFIG, [monitor], [rule]), "nothing changed"
    assert promsync.sync_files(tmp_path, KUBECONFIG, [], [])
    assert not rules_file.exists()
    assert "scrape_configs: []" in (tmp_path / "prometheus.yml").read_text()
