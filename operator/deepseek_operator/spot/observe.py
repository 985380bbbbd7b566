"""What the spot controller sees: the watch-backed pod and node summaries (`deepseek_operator.indexes`)
turned into one observation per region and pool (pure functions; the kopf layer passes the indexes in).

State, not events: a pod is Pending for capacity while its PodScheduled condition says
False/Unschedulable, for as long as it has existed; a node is about to go away while it carries one of
the provider's interruption taints (data in `render.capacity`), is being deleted, is NotReady or is
gone; a pod is being disrupted while it has a DisruptionTarget condition (eviction by a drain,
preemption, GKE's graceful node shutdown).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from deepseek_operator.api import CapacityPool, DeepSeekDeploymentSpec
from deepseek_operator.indexes import NodeSummary, PodSummary
from deepseek_operator.render.capacity import CapacityLabels
from deepseek_operator.render.replicas import PoolReplicas
from deepseek_operator.spot.decide import Notice, PoolObservation, RegionObservation

UNSCHEDULABLE = "Unschedulable"
# "0/14 nodes are available: 1 Insufficient nvidia.com/gpu, 2 node(s) were unschedulable. preemption: ..."
_AVAILABLE = "nodes are available: "
_COUNTED = re.compile(r"^(?P<count>\d+) (?P<what>.+)$")
# Scheduler reasons about nodes that are not this pool's (another capacity type, region or GPU): the
# required node affinity and the taints rule them out whatever the capacity.
_OTHER_NODES = ("didn't match Pod's node affinity", "had untolerated taint", "didn't match pod anti-affinity")


def interruption_signal(
    pod: PodSummary, nodes: Mapping[str, NodeSummary], labels: CapacityLabels
) -> str | None:
    """Why this pod's replica is about to stop, or None: its node's state (gone, being deleted, an
    interruption taint of the provider, NotReady), else the pod's own DisruptionTarget condition (a drain
    without a taint, preemption, GKE's graceful node shutdown). The node comes first, so that the pods a
    drain evicts from a tainted node are the same interruption as the taint."""
    node = nodes.get(pod.node) if pod.node is not None else None
    if pod.node is not None and node is None:
        return "NodeGone"
    if node is not None:
        if node.deleting:
            return "NodeDeleting"
        for taint in node.taints:
            if labels.interruption_taint(taint.key, taint.value) is not None:
                return taint.key
        if not node.ready:
            return "NodeNotReady"
    if pod.disruption_reason is not None:
        return f"DisruptionTarget/{pod.disruption_reason}"
    return None


def pending_for_capacity(pod: PodSummary) -> bool:
    """Not bound to a node because the scheduler found none that fits (not merely not tried yet)."""
    return pod.node is None and not pod.terminating and pod.unschedulable_reason == UNSCHEDULABLE


def shortage_reason(message: str | None, kind: str) -> str | None:
    """The scheduler's message in short, about this pool's nodes only: "Insufficient nvidia.com/gpu on
    spot nodes", "2 spot nodes cordoned". None when it names nothing about them (no such node left)."""
    if not message:
        return None
    # The first sentence; what follows is about preemption and DRA claims ("...unschedulable. no new
    # claims to deallocate, preemption: 0/14 nodes are available: ...").
    head = message.split(". ")[0].strip().removesuffix(".")
    if _AVAILABLE not in head:
        return head or None
    parts = []
    for raw in head.split(_AVAILABLE, 1)[1].split(", "):
        part = raw.strip()
        if not part or any(other in part for other in _OTHER_NODES):
            continue
        counted = _COUNTED.match(part)
        count, what = (counted.group("count"), counted.group("what")) if counted else ("", part)
        if what.startswith("Insufficient "):
            parts.append(f"{what} on {kind} nodes")
        elif "were unschedulable" in what:
            parts.append(f"{count} {kind} node{'' if count == '1' else 's'} cordoned".strip())
        else:
            parts.append(f"{kind} nodes: {part}")
    return ", ".join(dict.fromkeys(parts)) or None


def observe_pool(
    target: int,
    pods: Iterable[PodSummary],
    nodes: Mapping[str, NodeSummary],
    labels: CapacityLabels,
    kind: str,
) -> PoolObservation:
    ready = serving = interrupted = 0
    notices: dict[str, Notice] = {}
    pending: list[PodSummary] = []
    for pod in pods:
        if pending_for_capacity(pod):
            pending.append(pod)
            continue
        signal = interruption_signal(pod, nodes, labels)
        if pod.terminating and signal is None:
            continue  # scaled down or rolled out: neither serving capacity to count nor a notice
        if pod.ready and pod.phase == "Running":
            serving += 1
        if signal is not None:
            interrupted += 1
            key = pod.node if pod.node is not None and not signal.startswith("DisruptionTarget") else pod.name
            notices.setdefault(key, Notice(node=key, signal=signal))
        elif pod.ready and pod.phase == "Running":
            ready += 1
    oldest = min(pending, key=lambda p: p.created_at or datetime.max.replace(tzinfo=UTC)) if pending else None
    return PoolObservation(
        target=target,
        ready=ready,
        serving=serving,
        pending=len(pending),
        pending_since=oldest.created_at if oldest else None,
        pending_reason=shortage_reason(oldest.unschedulable_message, kind) if oldest else None,
        interrupted=interrupted,
        notices=tuple(notices[key] for key in sorted(notices)),
    )


def observe(
    spec: DeepSeekDeploymentSpec,
    targets: Mapping[str, PoolReplicas],
    pods: Iterable[PodSummary],
    nodes: Mapping[str, NodeSummary],
    labels: CapacityLabels,
) -> list[RegionObservation]:
    """One observation per region of the spec (in spec order); ``targets`` is the spec's split per region
    (before any fallback or spill), ``pods`` the DeepSeekDeployment's pods."""
    by_pool: dict[tuple[str, CapacityPool], list[PodSummary]] = {}
    for pod in pods:
        by_pool.setdefault((pod.region, pod.pool), []).append(pod)
    observations = []
    for region in spec.regions:
        target = targets[region.name]
        observations.append(
            RegionObservation(
                name=region.name,
                spot=observe_pool(
                    target.spot, by_pool.get((region.name, CapacityPool.SPOT), []), nodes, labels, "spot"
                ),
                on_demand=observe_pool(
                    target.on_demand,
                    by_pool.get((region.name, CapacityPool.ON_DEMAND), []),
                    nodes,
                    labels,
                    "on-demand",
                ),
            )
        )
    return observations
