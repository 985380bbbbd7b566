"""What the spot controller reads from the pod and node summaries (no cluster)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from deepseek_operator.api import CapacityPool, CapacityProvider, DeepSeekDeploymentSpec
from deepseek_operator.indexes import NodeSummary, PodSummary, Taint, pod_summary
from deepseek_operator.render.capacity import CAPACITY_PRESETS
from deepseek_operator.render.replicas import PoolReplicas
from deepseek_operator.spot.decide import Notice
from deepseek_operator.spot.observe import (
    interruption_signal,
    observe,
    observe_pool,
    pending_for_capacity,
    shortage_reason,
)

KARPENTER = CAPACITY_PRESETS[CapacityProvider.KARPENTER]
CREATED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def pod(name: str, node: str | None = "spot-a", ready: bool = True, **changes: object) -> PodSummary:
    summary = PodSummary(
        namespace="ml",
        name=name,
        deployment="r1",
        region="us-east",
        pool=CapacityPool.SPOT,
        node=node,
        phase="Running" if node else "Pending",
        ready=ready and node is not None,
        terminating=False,
        pod_ip=None,
        annotations={},
        unschedulable_message=None,
        disruption_reason=None,
        created_at=CREATED,
    )
    return replace(summary, **changes)  # type: ignore[arg-type]


def node(
    name: str, taints: tuple[Taint, ...] = (), ready: bool = True, deleting: bool = False
) -> NodeSummary:
    return NodeSummary(
        name=name,
        labels={"karpenter.sh/capacity-type": "spot"},
        taints=taints,
        ready=ready,
        unschedulable=False,
        deleting=deleting,
    )


NODES = {
    "spot-a": node("spot-a"),
    "disrupted": node("disrupted", (Taint("karpenter.sh/disrupted", None, "NoSchedule"),)),
    "old-karpenter": node("old-karpenter", (Taint("karpenter.sh/disruption", "disrupting", "NoSchedule"),)),
    "nth": node("nth", (Taint("aws-node-termination-handler/spot-itn", "i-123", "NoSchedule"),)),
    "cordoned": replace(node("cordoned"), unschedulable=True),
    "deleting": node("deleting", deleting=True),
    "not-ready": node("not-ready", ready=False),
    "gpu-tainted": node("gpu-tainted", (Taint("nvidia.com/gpu", "present", "NoSchedule"),)),
}


@pytest.mark.parametrize(
    ("summary", "signal"),
    [
        (pod("p", "spot-a"), None),
        (pod("p", "cordoned"), None),  # a cordon stops new pods; this one keeps serving
        (pod("p", "gpu-tainted"), None),
        (pod("p", "disrupted"), "karpenter.sh/disrupted"),
        (pod("p", "old-karpenter"), "karpenter.sh/disruption"),
        (pod("p", "nth"), "aws-node-termination-handler/spot-itn"),
        (pod("p", "deleting"), "NodeDeleting"),
        (pod("p", "not-ready"), "NodeNotReady"),
        (pod("p", "vanished"), "NodeGone"),
        (
            pod("p", "spot-a", disruption_reason="TerminationByKubelet"),
            "DisruptionTarget/TerminationByKubelet",
        ),
        (pod("p", None), None),
    ],
)
def test_interruption_signals(summary: PodSummary, signal: str | None) -> None:
    assert interruption_signal(summary, NODES, KARPENTER) == signal


def test_pending_for_capacity_is_the_schedulers_unschedulable_verdict() -> None:
    assert pending_for_capacity(pod("p", None, unschedulable_reason="Unschedulable"))
    assert not pending_for_capacity(pod("p", None, unschedulable_reason="SchedulingGated"))
    assert not pending_for_capacity(pod("p", None))  # not tried yet
    assert not pending_for_capacity(pod("p", None, unschedulable_reason="Unschedulable", terminating=True))


def test_a_pending_pod_summary_comes_from_its_pod_scheduled_condition() -> None:
    body = {
        "metadata": {
            "name": "p",
            "namespace": "ml",
            "creationTimestamp": "2026-03-01T12:00:00Z",
            "labels": {
                "serving.deepseek-operator.io/deployment": "r1",
                "serving.deepseek-operator.io/region": "us-east",
                "serving.deepseek-operator.io/pool": "spot",
            },
        },
        "spec": {},
        "status": {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/4 nodes are available: 2 node(s) were unschedulable.",
                }
            ],
        },
    }
    summary = pod_summary(body)
    assert summary is not None
    assert pending_for_capacity(summary)
    assert summary.created_at == CREATED


@pytest.mark.parametrize(
    ("message", "short"),
    [
        (
            "0/14 nodes are available: 2 Insufficient nvidia.com/gpu, 4 node(s) didn't match Pod's node "
            "affinity/selector, 8 node(s) had untolerated taint {nvidia.com/gpu: present}. preemption: 0/14 "
            "nodes are available: 14 Preemption is not helpful for scheduling.",
            "Insufficient nvidia.com/gpu on spot nodes",
        ),
        (
            "0/14 nodes are available: 2 node(s) were unschedulable, 12 node(s) didn't match Pod's node affinity/selector.",
            "2 spot nodes cordoned",
        ),
        ("0/12 nodes are available: 12 node(s) didn't match Pod's node affinity/selector.", None),
        (
            # kube-scheduler 1.36
            "0/14 nodes are available: 12 node(s) didn't match Pod's node affinity/selector, 2 node(s) were "
            "unschedulable. no new claims to deallocate, preemption: 0/14 nodes are available: 14 Preemption "
            "is not helpful for scheduling.",
            "2 spot nodes cordoned",
        ),
        (None, None),
    ],
)
def test_the_schedulers_reason_in_short(message: str | None, short: str | None) -> None:
    assert shortage_reason(message, "spot") == short


def test_a_pool_observation_counts_ready_pending_and_interrupted_replicas() -> None:
    pods = [
        pod("ready", "spot-a"),
        pod("starting", "spot-a", ready=False),
        pod("doomed", "disrupted"),
        pod("doomed-too", "disrupted"),
        pod("gone", "vanished", ready=False),
        pod("scaled-down", "spot-a", terminating=True),
        pod(
            "pending",
            None,
            unschedulable_reason="Unschedulable",
            unschedulable_message="0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
            created_at=datetime(2026, 3, 1, 12, 5, tzinfo=UTC),
        ),
        pod(
            "older-pending",
            None,
            unschedulable_reason="Unschedulable",
            unschedulable_message="0/3 nodes are available: 1 node(s) were unschedulable.",
        ),
    ]
    seen = observe_pool(4, pods, NODES, KARPENTER, "spot")
    assert (seen.target, seen.ready, seen.serving, seen.pending, seen.interrupted) == (4, 1, 3, 2, 3)
    assert seen.pending_since == CREATED
    assert seen.pending_reason == "1 spot node cordoned"
    assert seen.notices == (Notice("disrupted", "karpenter.sh/disrupted"), Notice("vanished", "NodeGone"))


def test_observe_splits_by_region_and_pool_with_the_targets_given() -> None:
    spec = DeepSeekDeploymentSpec.model_validate(
        {
            "model": {"name": "m"},
            "regions": [{"name": "us-east", "role": "Active"}, {"name": "eu-west", "role": "Standby"}],
        }
    )
    pods = [
        pod("s", "spot-a"),
        replace(pod("o", "spot-a"), pool=CapacityPool.ON_DEMAND),
        replace(pod("w", "spot-a"), region="eu-west"),
    ]
    targets = {"us-east": PoolReplicas(on_demand=3, spot=1), "eu-west": PoolReplicas(on_demand=1, spot=0)}
    (east, west) = observe(spec, targets, pods, NODES, KARPENTER)
    assert (east.name, east.spot.ready, east.spot.target, east.on_demand.ready, east.on_demand.target) == (
        "us-east",
        1,
        1,
        1,
        3,
    )
    assert (west.name, west.spot.ready, west.spot.target) == ("eu-west", 1, 0)
