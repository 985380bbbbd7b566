"""Prometheus configuration from the cluster's ServiceMonitor and PrometheusRule objects, as prometheus-operator
generates it (pkg/prometheus/promcfg.go: one job per ServiceMonitor endpoint, kubernetes_sd with role
endpointslice, keep by the Service's labels and the endpoint's port name, the same target labels), plus
one rule the operator does not have: every target's address is its pod's loopback address.

SAFETY: kwok's pod IPs belong to nobody. The last relabelings of every job keep only targets whose pod
carries `LOOPBACK_ADDRESS_ANNOTATION` with an address in 127.0.0.0/8, set `__address__` to that address
and the endpoint's port, and drop anything whose final address is not on loopback. They come after every
relabeling a ServiceMonitor may bring, so none can undo them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from localcluster.addresses import LOOPBACK_ADDRESS_ANNOTATION, require_loopback

# Shortened for tests (prometheus-operator's default is 30 s for both).
GLOBAL_SCRAPE_INTERVAL = "5s"
EVALUATION_INTERVAL = "5s"
RULES_DIRECTORY = "rules"
STATIC_DIRECTORY = "static"
# One octet, 0-255 (RE2 syntax; Prometheus anchors every relabeling regex).
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
LOOPBACK_IPV4_REGEX = rf"127\.{_OCTET}\.{_OCTET}\.{_OCTET}"


def sanitize_label_name(name: str) -> str:
    """As prometheus-operator (and Prometheus' kubernetes_sd) turn a Kubernetes label into a label name."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


_ANNOTATION_LABEL = "__meta_kubernetes_pod_annotation_" + sanitize_label_name(LOOPBACK_ADDRESS_ANNOTATION)


def loopback_only_relabelings() -> list[dict[str, Any]]:
    """Keep a target only with a loopback pod address, and scrape that address (never kwok's pod IP)."""
    return [
        {"action": "keep", "source_labels": [_ANNOTATION_LABEL], "regex": LOOPBACK_IPV4_REGEX},
        {
            "action": "replace",
            "source_labels": [_ANNOTATION_LABEL, "__meta_kubernetes_endpointslice_port"],
            "separator": ";",
            "regex": rf"({LOOPBACK_IPV4_REGEX});([0-9]+)",
            "replacement": "${1}:${5}",
            "target_label": "__address__",
        },
        {"action": "keep", "source_labels": ["__address__"], "regex": rf"{LOOPBACK_IPV4_REGEX}:[0-9]+"},
    ]


def _selector_relabelings(selector: dict[str, Any]) -> list[dict[str, Any]]:
    """The Service label selector as keep/drop relabelings (prometheus-operator's default mechanism)."""
    rules: list[dict[str, Any]] = []
    for key, value in sorted((selector.get("matchLabels") or {}).items()):
        name = sanitize_label_name(key)
        rules.append(
            {
                "action": "keep",
                "source_labels": [
                    f"__meta_kubernetes_service_label_{name}",
                    f"__meta_kubernetes_service_labelpresent_{name}",
                ],
                "regex": f"({value});true",
            }
        )
    for expression in selector.get("matchExpressions") or []:
        name = sanitize_label_name(expression["key"])
        values = "|".join(expression.get("values") or [])
        operator = expression["operator"]
        both = [f"__meta_kubernetes_service_label_{name}", f"__meta_kubernetes_service_labelpresent_{name}"]
        present = [f"__meta_kubernetes_service_labelpresent_{name}"]
        if operator in ("In", "NotIn"):
            action = "keep" if operator == "In" else "drop"
            rules.append({"action": action, "source_labels": both, "regex": f"({values});true"})
        elif operator in ("Exists", "DoesNotExist"):
            action = "keep" if operator == "Exists" else "drop"
            rules.append({"action": action, "source_labels": present, "regex": "true"})
    return rules


_RELABEL_KEYS = {
    "sourceLabels": "source_labels",
    "targetLabel": "target_label",
    "separator": "separator",
    "regex": "regex",
    "replacement": "replacement",
    "modulus": "modulus",
    "action": "action",
}


def _relabel_configs(items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """ServiceMonitor RelabelConfigs (camelCase) as Prometheus relabel_configs."""
    return [
        {_RELABEL_KEYS[key]: (value.lower() if key == "action" else value) for key, value in item.items()}
        for item in items
    ]


def _namespaces(monitor: dict[str, Any]) -> dict[str, Any] | None:
    selector = monitor["spec"].get("namespaceSelector") or {}
    if selector.get("any"):
        return None
    names = selector.get("matchNames") or [monitor["metadata"]["namespace"]]
    return {"names": sorted(names)}


def scrape_configs(monitor: dict[str, Any], kubeconfig: Path) -> list[dict[str, Any]]:
    """One scrape job per endpoint of a ServiceMonitor, named as prometheus-operator names it."""
    metadata, spec = monitor["metadata"], monitor["spec"]
    jobs: list[dict[str, Any]] = []
    for index, endpoint in enumerate(spec.get("endpoints") or []):
        sd: dict[str, Any] = {"role": "endpointslice", "kubeconfig_file": str(kubeconfig)}
        if (namespaces := _namespaces(monitor)) is not None:
            sd["namespaces"] = namespaces
        job: dict[str, Any] = {
            "job_name": f"serviceMonitor/{metadata['namespace']}/{metadata['name']}/{index}",
            "honor_labels": bool(endpoint.get("honorLabels", False)),
            "kubernetes_sd_configs": [sd],
        }
        for source, target in (
            ("interval", "scrape_interval"),
            ("scrapeTimeout", "scrape_timeout"),
            ("path", "metrics_path"),
            ("params", "params"),
            ("scheme", "scheme"),
        ):
            if endpoint.get(source):
                job[target] = endpoint[source]
        relabelings: list[dict[str, Any]] = [
            {"source_labels": ["job"], "target_label": "__tmp_prometheus_job_name"},
            *_selector_relabelings(spec.get("selector") or {}),
        ]
        port = endpoint.get("port")
        if port:
            relabelings.append(
                {
                    "action": "keep",
                    "source_labels": ["__meta_kubernetes_endpointslice_port_name"],
                    "regex": port,
                }
            )
        target_kind_and_name = [
            "__meta_kubernetes_endpointslice_address_target_kind",
            "__meta_kubernetes_endpointslice_address_target_name",
        ]
        relabelings += [
            {"source_labels": target_kind_and_name, "separator": ";", "regex": "Node;(.*)", "replacement": "${1}", "target_label": "node"},
            {"source_labels": target_kind_and_name, "separator": ";", "regex": "Pod;(.*)", "replacement": "${1}", "target_label": "pod"},
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "service"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
            {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
        ]  # fmt: skip
        if endpoint.get("filterRunning", True):
            relabelings.append(
                {
                    "action": "drop",
                    "source_labels": ["__meta_kubernetes_pod_phase"],
                    "regex": "(Failed|Succeeded)",
                }
            )
        for kind, labels in (("service", spec.get("targetLabels")), ("pod", spec.get("podTargetLabels"))):
            for label in labels or []:
                relabelings.append(
                    {
                        "source_labels": [f"__meta_kubernetes_{kind}_label_{sanitize_label_name(label)}"],
                        "target_label": sanitize_label_name(label),
                        "regex": "(.+)",
                        "replacement": "${1}",
                    }
                )
        relabelings.append(
            {
                "source_labels": ["__meta_kubernetes_service_name"],
                "target_label": "job",
                "replacement": "${1}",
            }
        )
        if spec.get("jobLabel"):
            relabelings.append(
                {
                    "source_labels": [
                        f"__meta_kubernetes_service_label_{sanitize_label_name(spec['jobLabel'])}"
                    ],
                    "target_label": "job",
                    "regex": "(.+)",
                    "replacement": "${1}",
                }
            )
        if port:
            relabelings.append({"target_label": "endpoint", "replacement": port})
        relabelings += _relabel_configs(endpoint.get("relabelings") or [])
        job["relabel_configs"] = relabelings + loopback_only_relabelings()
        if endpoint.get("metricRelabelings"):
            job["metric_relabel_configs"] = _relabel_configs(endpoint["metricRelabelings"])
        jobs.append(job)
    return jobs


def static_scrape_config(name: str, address: str, endpoint: dict[str, Any]) -> dict[str, Any]:
    """A scrape job for a process on this machine at `address` (host:port, loopback only), with the
    path, interval and honorLabels of a ServiceMonitor endpoint (as prometheus-operator would apply them
    to the Service in front of that process in a real cluster)."""
    host = address.rpartition(":")[0]
    require_loopback(host)
    job: dict[str, Any] = {
        "job_name": name,
        "metrics_path": endpoint.get("path", "/metrics"),
        "honor_labels": bool(endpoint.get("honorLabels", False)),
        "static_configs": [{"targets": [address], "labels": {"service": name}}],
    }
    if endpoint.get("interval"):
        job["scrape_interval"] = endpoint["interval"]
    return {"scrape_configs": [job]}


def prometheus_config(monitors: Iterable[dict[str, Any]], kubeconfig: Path) -> dict[str, Any]:
    """The whole prometheus.yml: a job per ServiceMonitor endpoint, rule files from RULES_DIRECTORY."""
    ordered = sorted(monitors, key=lambda m: (m["metadata"]["namespace"], m["metadata"]["name"]))
    return {
        "global": {"scrape_interval": GLOBAL_SCRAPE_INTERVAL, "evaluation_interval": EVALUATION_INTERVAL},
        "rule_files": [f"{RULES_DIRECTORY}/*.yaml"],
        # Processes that run outside the cluster (the operator under `make dev` and the tests): see
        # monitoring.scrape_process.
        "scrape_config_files": [f"{STATIC_DIRECTORY}/*.yaml"],
        "scrape_configs": [job for monitor in ordered for job in scrape_configs(monitor, kubeconfig)],
    }


def rule_file_name(rule: dict[str, Any]) -> str:
    """`<namespace>-<name>-<uid>.yaml`, as prometheus-operator names a PrometheusRule's file."""
    metadata = rule["metadata"]
    return f"{metadata['namespace']}-{metadata['name']}-{metadata.get('uid', '')}.yaml"


def rule_file(rule: dict[str, Any]) -> dict[str, Any]:
    """A PrometheusRule's spec is already a Prometheus rule file (`groups:`)."""
    return {"groups": rule["spec"].get("groups") or []}
