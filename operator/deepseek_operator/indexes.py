"""Watch-backed views of the inference pods and the nodes, shared by the controllers that run on a timer
(failover, spot): they read these in-memory indexes instead of listing pods and nodes on every tick,
so their cost against the API server stays flat however often they look.

kopf keeps each index up to date from its watch; a handler receives it as a keyword argument named after
the index function (`inference_pods`, `nodes`). Values are small frozen summaries, not whole objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import kopf

from deepseek_operator.api import CapacityPool
from deepseek_operator.render.labels import DEPLOYMENT_LABEL, POOL_LABEL, REGION_LABEL

REGION_TOPOLOGY_LABEL = "topology.kubernetes.io/region"


@dataclass(frozen=True)
class Taint:
    key: str
    value: str | None
    effect: str


@dataclass(frozen=True)
class PodSummary:
    """What the controllers need to know about one inference pod."""

    namespace: str
    name: str
    deployment: str
    region: str
    pool: CapacityPool
    node: str | None
    phase: str
    ready: bool
    terminating: bool
    pod_ip: str | None
    annotations: Mapping[str, str]
    # PodScheduled=False: the scheduler's reason (Unschedulable) and message (e.g. Insufficient nvidia.com/gpu).
    unschedulable_message: str | None
    # The DisruptionTarget condition (eviction, preemption, node shutdown), when present and True.
    disruption_reason: str | None
    created_at: datetime | None
    # PodScheduled=False: the scheduler's reason alone (Unschedulable: no node fits; SchedulingGated: not
    # tried yet), so a pod Pending for capacity can be told from one merely waiting.
    unschedulable_reason: str | None = None


@dataclass(frozen=True)
class NodeSummary:
    name: str
    labels: Mapping[str, str]
    taints: tuple[Taint, ...]
    ready: bool
    unschedulable: bool
    deleting: bool

    @property
    def region(self) -> str | None:
        return self.labels.get(REGION_TOPOLOGY_LABEL)


def _condition(conditions: list[Mapping[str, Any]], kind: str) -> Mapping[str, Any] | None:
    return next((c for c in conditions if c.get("type") == kind), None)


def _timestamp(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def pod_summary(body: Mapping[str, Any]) -> PodSummary | None:
    """The summary of a pod the operator rendered (None for a pod without its labels)."""
    metadata = body.get("metadata") or {}
    labels = metadata.get("labels") or {}
    if not all(key in labels for key in (DEPLOYMENT_LABEL, REGION_LABEL, POOL_LABEL)):
        return None
    try:
        pool = CapacityPool(labels[POOL_LABEL])
    except ValueError:
        return None
    status = body.get("status") or {}
    conditions = list(status.get("conditions") or [])
    ready = _condition(conditions, "Ready")
    scheduled = _condition(conditions, "PodScheduled")
    disruption = _condition(conditions, "DisruptionTarget")
    return PodSummary(
        namespace=str(metadata.get("namespace")),
        name=str(metadata.get("name")),
        deployment=str(labels[DEPLOYMENT_LABEL]),
        region=str(labels[REGION_LABEL]),
        pool=pool,
        node=(body.get("spec") or {}).get("nodeName"),
        phase=str(status.get("phase") or "Pending"),
        ready=bool(ready and ready.get("status") == "True"),
        terminating=bool(metadata.get("deletionTimestamp")),
        pod_ip=status.get("podIP"),
        annotations=dict(metadata.get("annotations") or {}),
        unschedulable_message=(
            str(scheduled.get("message") or scheduled.get("reason") or "")
            if scheduled and scheduled.get("status") == "False"
            else None
        ),
        disruption_reason=(
            str(disruption.get("reason") or "DisruptionTarget")
            if disruption and disruption.get("status") == "True"
            else None
        ),
        created_at=_timestamp(metadata.get("creationTimestamp")),
        unschedulable_reason=(
            str(scheduled.get("reason") or "") if scheduled and scheduled.get("status") == "False" else None
        ),
    )


def node_summary(body: Mapping[str, Any]) -> NodeSummary:
    metadata = body.get("metadata") or {}
    spec = body.get("spec") or {}
    conditions = list((body.get("status") or {}).get("conditions") or [])
    ready = _condition(conditions, "Ready")
    return NodeSummary(
        name=str(metadata.get("name")),
        labels=dict(metadata.get("labels") or {}),
        taints=tuple(
            Taint(str(t.get("key")), t.get("value"), str(t.get("effect"))) for t in spec.get("taints") or []
        ),
        ready=bool(ready and ready.get("status") == "True"),
        unschedulable=bool(spec.get("unschedulable")),
        deleting=bool(metadata.get("deletionTimestamp")),
    )


# Any: kopf does not export the type of its PRESENT token.
_INFERENCE_POD_LABELS: Mapping[str, Any] = {DEPLOYMENT_LABEL: kopf.PRESENT}


@kopf.index("v1", "pods", labels=_INFERENCE_POD_LABELS)
def inference_pods(body: kopf.Body, **_: Any) -> dict[tuple[str, str], PodSummary] | None:
    """(namespace, DeepSeekDeployment name) -> summaries of its pods, every region and pool."""
    summary = pod_summary(body)
    if summary is None:
        return None
    return {(summary.namespace, summary.deployment): summary}


@kopf.index("v1", "nodes")
def nodes(body: kopf.Body, **_: Any) -> dict[str, NodeSummary]:
    """Node name -> summary (readiness, labels, taints, cordon, deletion)."""
    summary = node_summary(body)
    return {summary.name: summary}
