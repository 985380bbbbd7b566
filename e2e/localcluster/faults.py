"""Fault injection on the simulated fleet: the real controllers react to what these functions change.

- `fail_nodes`: kwok reports the nodes Ready=False (stage `node-not-ready`); the node lifecycle controller
  taints them and evicts their pods after the not-ready toleration.
- `remove_nodes`: the nodes disappear (a region or zone gone); pod garbage collection deletes their pods.
- `fail_pods`: pods turn NotReady without being killed (stage `pod-not-ready`), like a hung server.
- `set_simulator_faults`: the simulator behind each pod answers with errors, slowly, or /health 503
  (its run-time faults, `PUT /admin/faults` at the pod's loopback address).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Mapping
from typing import Any

from localcluster.addresses import LOOPBACK_ADDRESS_ANNOTATION, require_loopback
from localcluster.fleet import FLEET_LABEL, REGION_LABEL

FAULT_LABEL = "fault.localcluster.deepseek-operator.io/not-ready"


def region_selector(region: str) -> str:
    return f"{FLEET_LABEL},{REGION_LABEL}={region}"


def _label_nodes(core: Any, selector: str, value: str | None) -> list[str]:
    names = [node.metadata.name for node in core.list_node(label_selector=selector).items]
    for name in names:
        core.patch_node(name, {"metadata": {"labels": {FAULT_LABEL: value}}})
    return names


def fail_nodes(core: Any, selector: str) -> list[str]:
    """Make the selected nodes NotReady; returns their names."""
    return _label_nodes(core, selector, "true")


def restore_nodes(core: Any, selector: str) -> list[str]:
    """Make failed nodes Ready again."""
    return _label_nodes(core, selector, None)


def remove_nodes(core: Any, selector: str) -> list[str]:
    """Delete the selected nodes, as when a zone or region is lost."""
    names = [node.metadata.name for node in core.list_node(label_selector=selector).items]
    for name in names:
        core.delete_node(name)
    return names


def _label_pods(core: Any, namespace: str, selector: str, value: str | None) -> list[str]:
    names = [pod.metadata.name for pod in core.list_namespaced_pod(namespace, label_selector=selector).items]
    for name in names:
        core.patch_namespaced_pod(name, namespace, {"metadata": {"labels": {FAULT_LABEL: value}}})
    return names


def fail_pods(core: Any, namespace: str, selector: str) -> list[str]:
    """Make the selected running pods NotReady without killing them."""
    return _label_pods(core, namespace, selector, "true")


def restore_pods(core: Any, namespace: str, selector: str) -> list[str]:
    return _label_pods(core, namespace, selector, None)


def set_simulator_faults(core: Any, namespace: str, selector: str, faults: Mapping[str, Any]) -> list[str]:
    """PUT /admin/faults (e.g. {"error_rate": 1.0, "error_status": 503, "extra_latency_ms": 2000,
    "unhealthy": true}) on the simulator of each selected pod that runs one (has a loopback address);
    returns the pods changed. Partial updates: keys left out keep their value."""
    changed: list[str] = []
    body = json.dumps(dict(faults)).encode()
    for pod in core.list_namespaced_pod(namespace, label_selector=selector).items:
        address = (pod.metadata.annotations or {}).get(LOOPBACK_ADDRESS_ANNOTATION)
        if pod.metadata.deletion_timestamp is not None or not address:
            continue
        url = f"http://{require_loopback(address)}:8080/admin/faults"
        request = urllib.request.Request(url, data=body, method="PUT")
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (loopback, checked)
            response.read()
        changed.append(pod.metadata.name)
    return changed


HEALTHY_SIMULATOR = {"error_rate": 0.0, "extra_latency_ms": 0, "unhealthy": False}
