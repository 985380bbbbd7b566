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


# ------------------------------------------------------------------------------------------ spot capacity
# Spot faults (issue 11): a spot pool short of capacity (cordoned, or its nodes removed), and a provider's
# interruption: its notice (the taint it puts on the node), then what it does once the notice runs out
# (evict the pods through the Eviction API, then the node goes away).

# What each provider puts on a node it is about to take away (the operator reads these from its preset
# table, deepseek_operator.render.capacity); `None` values are set to the node's event id like NTH does.
INTERRUPTION_TAINTS: dict[str, dict[str, str]] = {
    # Karpenter v1 (and v0.32-0.37's karpenter.sh/disruption=disrupting).
    "karpenter": {"key": "karpenter.sh/disrupted", "value": "", "effect": "NoSchedule"},
    "karpenter-v0": {"key": "karpenter.sh/disruption", "value": "disrupting", "effect": "NoSchedule"},
    # AWS Node Termination Handler with TAINT_NODE=true, on a spot interruption notice.
    "eks": {"key": "aws-node-termination-handler/spot-itn", "value": "spot-itn-0001", "effect": "NoSchedule"},
    # Best effort on GKE (the documented signal is the kubelet's graceful shutdown).
    "gke": {"key": "cloud.google.com/impending-node-termination", "value": "", "effect": "NoSchedule"},
    # AKS node auto-drain.
    "aks": {"key": "remediator.kubernetes.azure.com/unschedulable", "value": "", "effect": "NoSchedule"},
}
# How long each provider's notice lasts before the node goes (seconds).
NOTICE_SECONDS = {"karpenter": 120, "karpenter-v0": 120, "eks": 120, "gke": 30, "aks": 30}


def pool_selector(
    pool: str | None = None,
    region: str | None = None,
    zone: str | None = None,
    capacity_type: str | None = None,
) -> str:
    """Fleet nodes by pool name, region, zone and capacity type (spot, on-demand), any of them."""
    from localcluster.fleet import CAPACITY_LABEL, POOL_LABEL, ZONE_LABEL

    parts = [FLEET_LABEL]
    for key, value in (
        (POOL_LABEL, pool),
        (REGION_LABEL, region),
        (ZONE_LABEL, zone),
        (CAPACITY_LABEL, capacity_type),
    ):
        if value is not None:
            parts.append(f"{key}={value}")
    return ",".join(parts)


def _node_names(core: Any, selector: str) -> list[str]:
    return sorted(node.metadata.name for node in core.list_node(label_selector=selector).items)


def cordon_nodes(core: Any, selector: str) -> list[str]:
    """Mark the selected nodes unschedulable: no new pod lands there (a pool out of capacity); the pods
    that run there keep running."""
    names = _node_names(core, selector)
    for name in names:
        core.patch_node(name, {"spec": {"unschedulable": True}})
    return names


def uncordon_nodes(core: Any, selector: str) -> list[str]:
    names = _node_names(core, selector)
    for name in names:
        core.patch_node(name, {"spec": {"unschedulable": None}})
    return names


def taint_interruption(core: Any, names: list[str], provider: str) -> None:
    """The provider's interruption notice on each node: its taint (and, like Karpenter, NTH and AKS's
    auto-drain, a cordon)."""
    taint = INTERRUPTION_TAINTS[provider]
    for name in names:
        node = core.read_node(name)
        taints = [
            {"key": t.key, "value": t.value or "", "effect": t.effect}
            for t in node.spec.taints or []
            if t.key != taint["key"]
        ]
        core.patch_node(name, {"spec": {"taints": [*taints, dict(taint)], "unschedulable": True}})


def clear_interruptions(core: Any, selector: str) -> list[str]:
    """Lift every provider's interruption taint and the cordon from the selected nodes."""
    keys = {taint["key"] for taint in INTERRUPTION_TAINTS.values()}
    names = _node_names(core, selector)
    for name in names:
        node = core.read_node(name)
        taints = [
            {"key": t.key, "value": t.value or "", "effect": t.effect}
            for t in node.spec.taints or []
            if t.key not in keys
        ]
        core.patch_node(name, {"spec": {"taints": taints, "unschedulable": None}})
    return names


def evict_pods(core: Any, node: str) -> tuple[list[str], list[str]]:
    """Evict every pod of a node through the Eviction API, as a drain does (PodDisruptionBudgets apply):
    the evicted pods and those a budget refused (429)."""
    from kubernetes.client.exceptions import ApiException

    evicted, refused = [], []
    pods = core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}").items
    for pod in pods:
        if pod.metadata.deletion_timestamp is not None:
            continue
        body = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": pod.metadata.name, "namespace": pod.metadata.namespace},
        }
        try:
            core.create_namespaced_pod_eviction(pod.metadata.name, pod.metadata.namespace, body)
            evicted.append(f"{pod.metadata.namespace}/{pod.metadata.name}")
        except ApiException as error:
            if error.status == 429:
                refused.append(f"{pod.metadata.namespace}/{pod.metadata.name}")
            elif error.status == 403 and "NamespaceTerminating" in str(error.body or ""):
                continue  # its namespace is being deleted, and the pod with it
            elif error.status != 404:
                raise
    return evicted, refused


def interrupt_nodes(
    core: Any,
    names: list[str],
    provider: str,
    drain_after: float = 0.0,
    reclaim_after: float | None = None,
    log: Any = None,
) -> dict[str, list[str]]:
    """A provider's spot interruption of `names`, start to end: the notice (taint, cordon), after
    `drain_after` seconds the drain (every pod evicted), after `reclaim_after` seconds (default: the
    provider's notice) the nodes deleted, as the instances are gone. Blocks until then."""
    import time

    started = time.monotonic()
    taint_interruption(core, names, provider)
    if log:
        log(f"notice: {', '.join(names)} tainted {INTERRUPTION_TAINTS[provider]['key']}")
    time.sleep(max(0.0, drain_after - (time.monotonic() - started)))
    refused: list[str] = []
    for name in names:
        evicted, held = evict_pods(core, name)
        refused += held
        if log:
            log(
                f"drain: {name}: {len(evicted)} pods evicted"
                + (f", {len(held)} held by a budget" if held else "")
            )
    reclaim = NOTICE_SECONDS[provider] if reclaim_after is None else reclaim_after
    time.sleep(max(0.0, reclaim - (time.monotonic() - started)))
    for name in names:
        core.delete_node(name)
    if log:
        log(f"reclaimed: {', '.join(names)} deleted")
    return {"refused": refused}
