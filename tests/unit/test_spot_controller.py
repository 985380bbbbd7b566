"""The spot controller's kopf layer, its pure parts (no cluster; tests/integration/test_spot*.py run it)."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime

from deepseek_operator.api import CapacityPool, CapacityProvider
from deepseek_operator.indexes import NodeSummary, PodSummary, Taint
from deepseek_operator.kube import ChildRef
from deepseek_operator.render.capacity import CAPACITY_PRESETS
from deepseek_operator.spot.controller import (
    _changed_deployments,
    _QuietWakeUps,
    choose_pod_to_remove,
    node_state,
)


def pod(name: str, node: str, ready: bool = True, minute: int = 0) -> PodSummary:
    return PodSummary(
        namespace="ml",
        name=name,
        deployment="r1",
        region="us-east",
        pool=CapacityPool.ON_DEMAND,
        node=node,
        phase="Running",
        ready=ready,
        terminating=False,
        pod_ip=None,
        annotations={},
        unschedulable_message=None,
        disruption_reason=None,
        created_at=datetime(2026, 3, 1, 12, minute, tzinfo=UTC),
    )


def node(name: str, unschedulable: bool = False, taints: tuple[Taint, ...] = ()) -> NodeSummary:
    return NodeSummary(
        name=name, labels={}, taints=taints, ready=True, unschedulable=unschedulable, deleting=False
    )


NODES = {
    "a": node("a"),
    "cordoned": node("cordoned", unschedulable=True),
    "leaving": node("leaving", taints=(Taint("karpenter.sh/disrupted", None, "NoSchedule"),)),
}
KARPENTER = CAPACITY_PRESETS[CapacityProvider.KARPENTER]


def chosen(pods: list[PodSummary]) -> str | None:
    found = choose_pod_to_remove(pods, "us-east", CapacityPool.ON_DEMAND, NODES, KARPENTER)
    return found.name if found else None


def test_the_pod_moved_back_is_the_one_that_costs_least() -> None:
    # the youngest of equals (most likely a stand-in)
    assert chosen([pod("old", "a", minute=0), pod("young", "a", minute=5)]) == "young"
    # one on a node that goes away or is cordoned, before any younger one
    assert chosen([pod("young", "a", minute=5), pod("on-cordoned", "cordoned")]) == "on-cordoned"
    assert chosen([pod("young", "a", minute=5), pod("on-leaving", "leaving")]) == "on-leaving"
    # one that serves nothing, before all
    assert chosen([pod("on-leaving", "leaving"), pod("not-ready", "a", ready=False)]) == "not-ready"
    # only this region's pods of this pool
    assert chosen([replace(pod("elsewhere", "a"), region="eu-west")]) is None
    assert chosen([replace(pod("spot", "a"), pool=CapacityPool.SPOT)]) is None


def test_only_the_deployments_whose_counts_change_are_applied() -> None:
    assert _changed_deployments("r1", {}, {"us-east": (2, 0, 0)}) == [
        ChildRef("apps/v1", "Deployment", "r1-us-east-on-demand")
    ]
    assert _changed_deployments(
        "r1", {"us-east": (2, 0, 0)}, {"us-east": (2, 0, 2), "eu-west": (0, 1, 0)}
    ) == [
        ChildRef("apps/v1", "Deployment", "r1-eu-west-spot"),
        ChildRef("apps/v1", "Deployment", "r1-us-east-spot"),
    ]
    assert _changed_deployments("r1", {"us-east": (1, 0, 0)}, {"us-east": (1, 0, 0)}) == []


def test_a_node_wakes_the_controllers_only_when_what_they_read_changes() -> None:
    body = {
        "metadata": {"name": "n"},
        "spec": {"taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]},
        "status": {"conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "t1"}]},
    }
    heartbeat = {
        **body,
        "status": {"conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "t2"}]},
    }
    assert node_state(body) == node_state(heartbeat)
    tainted = {
        **body,
        "spec": {
            "taints": [*body["spec"]["taints"], {"key": "karpenter.sh/disrupted", "effect": "NoSchedule"}]
        },
    }
    assert node_state(tainted) != node_state(body)
    assert node_state({**body, "spec": {**body["spec"], "unschedulable": True}}) != node_state(body)
    assert node_state({**body, "metadata": {"name": "n", "deletionTimestamp": "x"}}) != node_state(body)
    assert node_state(None) is None


def test_the_wake_ups_success_is_not_logged() -> None:
    quiet = _QuietWakeUps()

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("kopf.objects", logging.INFO, __file__, 1, message, (), None)

    assert not quiet.filter(record("Handler 'node_changed' succeeded."))
    assert not quiet.filter(record("Handler 'inference_pod_changed' succeeded."))
    assert not quiet.filter(record("Handler 'deepseek_deployment_changed' succeeded."))
    assert quiet.filter(record("Handler 'reconcile_deepseek_deployment' succeeded."))
