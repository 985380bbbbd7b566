"""The controllers' pod and node summaries, from objects as the API returns them."""

from __future__ import annotations

from datetime import UTC, datetime

from deepseek_operator.api import CapacityPool
from deepseek_operator.indexes import NodeSummary, Taint, node_summary, pod_summary

LABELS = {
    "serving.deepseek-operator.io/deployment": "r1",
    "serving.deepseek-operator.io/region": "us-east",
    "serving.deepseek-operator.io/pool": "spot",
}


def test_a_pending_spot_pod_says_why_it_cannot_be_scheduled() -> None:
    pod = {
        "metadata": {"name": "r1-a", "namespace": "ml", "labels": LABELS, "creationTimestamp": "2026-12-02T10:00:00Z"},
        "spec": {},
        "status": {
            "phase": "Pending",
            "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                 "message": "0/14 nodes are available: 2 Insufficient nvidia.com/gpu."},
            ],
        },
    }  # fmt: skip
    summary = pod_summary(pod)
    assert summary is not None
    assert (summary.deployment, summary.region, summary.pool) == ("r1", "us-east", CapacityPool.SPOT)
    assert (summary.phase, summary.ready, summary.node, summary.terminating) == (
        "Pending",
        False,
        None,
        False,
    )
    assert summary.unschedulable_message == "0/14 nodes are available: 2 Insufficient nvidia.com/gpu."
    assert summary.created_at == datetime(2026, 12, 2, 10, tzinfo=UTC)


def test_a_running_pod_being_evicted_is_ready_terminating_and_a_disruption_target() -> None:
    pod = {
        "metadata": {"name": "r1-b", "namespace": "ml", "labels": LABELS, "deletionTimestamp": "2026-12-02T10:01:00Z",
                     "annotations": {"a": "b"}},
        "spec": {"nodeName": "gpu-1"},
        "status": {
            "phase": "Running",
            "podIP": "10.0.0.9",
            "conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "PodScheduled", "status": "True"},
                {"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI"},
            ],
        },
    }  # fmt: skip
    summary = pod_summary(pod)
    assert summary is not None
    assert (summary.ready, summary.terminating, summary.node, summary.pod_ip) == (
        True,
        True,
        "gpu-1",
        "10.0.0.9",
    )
    assert summary.disruption_reason == "EvictionByEvictionAPI"
    assert summary.unschedulable_message is None
    assert summary.annotations == {"a": "b"}


def test_pods_without_the_operators_labels_are_not_summarised() -> None:
    assert pod_summary({"metadata": {"name": "x", "labels": {"app": "x"}}}) is None
    assert (
        pod_summary(
            {"metadata": {"name": "x", "labels": {**LABELS, "serving.deepseek-operator.io/pool": "gpu"}}}
        )
        is None
    )


def test_a_cordoned_notready_node_with_an_interruption_taint() -> None:
    node = {
        "metadata": {"name": "gpu-1", "labels": {"topology.kubernetes.io/region": "us-east"}},
        "spec": {
            "unschedulable": True,
            "taints": [{"key": "karpenter.sh/disrupted", "effect": "NoSchedule"}],
        },
        "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]},
    }
    assert node_summary(node) == NodeSummary(
        name="gpu-1",
        labels={"topology.kubernetes.io/region": "us-east"},
        taints=(Taint("karpenter.sh/disrupted", None, "NoSchedule"),),
        ready=False,
        unschedulable=True,
        deleting=False,
    )
    assert node_summary(node).region == "us-east"
