"""The failover state lives in status: an operator SIGKILLed in the middle of a switch, or a leader
change under kopf peering, continues the same failover exactly once. These tests run their own operator
processes (no module operator: two at once would both act)."""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml
from failover_support import (
    DEAD_ENGINE,
    EAST,
    MODEL,
    SLOW,
    TIMEOUT,
    WEST,
    FailoverDsd,
    cordon,
    failover_spec,
    fleet_nodes,
)
from kubernetes import client
from localcluster.cluster import LocalCluster
from localcluster.crds import apply_crd
from localcluster.operator import REPO_ROOT, OperatorProcess, install_crd_and_priority_classes
from localcluster.traffic import Traffic
from localcluster.waiting import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

PEERING_CRDS = REPO_ROOT / "charts" / "deepseek-operator" / "crds" / "kopf.dev_peerings.yaml"
PEERING = "failover-test"


def decisions_logged(operator: OperatorProcess, namespace: str) -> list[str]:
    """The failover decisions (events) an operator logged for objects in `namespace`."""
    found = []
    for line in operator.log_path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        message = str(record.get("message", ""))
        if message.startswith("failover ") and (record.get("object") or {}).get("namespace") == namespace:
            found.append(message)
    return found


def test_an_operator_killed_in_the_middle_of_a_switch_completes_it_once_after_a_restart(
    local_cluster: LocalCluster, api_client: Any, core_api: Any, namespace: str, tmp_path: Path
) -> None:
    """The target's extra replica cannot be scheduled (eu-west cordoned), so the switch waits for it
    (make before break: a latency fault leaves us-east serving, slowly): the operator is killed then."""
    install_crd_and_priority_classes(api_client)
    dsd = FailoverDsd(api_client, namespace)
    spec = failover_spec(
        local_cluster.prometheus_url,
        signals=["PodsNotReady", "Latency"],
        metricsWindow="5s",
        p99LatencyMilliseconds=1000,
        switchTimeoutSeconds=3600,
    )
    west_nodes = fleet_nodes(core_api, WEST)
    first = OperatorProcess(local_cluster.kubeconfig, tmp_path / "first.log")
    with ExitStack() as stack:
        stack.callback(cordon, core_api, west_nodes, False)
        first.start()
        stack.callback(first.stop)
        dsd.start(spec)
        clients = Traffic(local_cluster.service_url(namespace, dsd.name), MODEL).start()
        stack.callback(clients.stop)
        wait_until(lambda: dsd.condition_status("SignalsAvailable") == "True", 60, "SignalsAvailable True")
        cordon(core_api, west_nodes, True)
        dsd.set_faults(EAST, SLOW)
        pending = dsd.wait_phase("FailingOver", timeout=30)["pendingSwitch"]
        first.kill()
        # Killed mid-switch: decided and recorded, eu-west raised, the traffic not moved yet.
        at_kill = dsd.failover()
        assert (at_kill["phase"], at_kill["activeRegion"], at_kill["targetRegion"]) == (
            "FailingOver",
            EAST,
            WEST,
        )
        assert dsd.front_region() == EAST
        assert not any(line.startswith("failover FailedOver:") for line in decisions_logged(first, namespace))

        cordon(core_api, west_nodes, False)
        second = OperatorProcess(local_cluster.kubeconfig, tmp_path / "second.log")
        second.start()
        stack.callback(second.stop)
        done = dsd.wait_failover(
            lambda f: (f.get("lastFailover") or {}).get("switchedAt") is not None, "the switch completed"
        )
        assert (done["phase"], done["activeRegion"], done["failoverCount"]) == ("FailedOver", WEST, 1)
        # The same switch: decided once, by the first operator, and completed by the second.
        assert done["lastFailover"]["decidedAt"] == pending["decidedAt"]
        assert done["lastFailover"]["detectedAt"] == pending["detectedAt"]
        assert dsd.front_region() == WEST
        # The second operator did not decide it again; it moved the traffic once.
        second_decisions = decisions_logged(second, namespace)
        assert not any(line.startswith("failover FailingOver:") for line in second_decisions), (
            second_decisions
        )
        assert sum(line.startswith("failover FailedOver:") for line in second_decisions) == 1
        wait_until(lambda: dsd.event_count("FailedOver") == 1, 30, "the FailedOver event")
        # The first operator may have been killed between its status write and its event: never two.
        assert dsd.event_count("FailingOver") <= 1


def _acting(operator: OperatorProcess) -> bool:
    """kopf starts a peering replica paused and logs each resume and each pause after it."""
    changes = [
        line
        for line in operator.log_path.read_text().splitlines()
        if "Resuming operations after the pause" in line or "Pausing operations" in line
    ]
    return bool(changes) and "Resuming operations after the pause" in changes[-1]


def test_only_the_leader_checks_and_a_new_leader_continues_the_same_failover(
    local_cluster: LocalCluster, api_client: Any, core_api: Any, namespace: str, tmp_path: Path
) -> None:
    install_crd_and_priority_classes(api_client)
    for document in yaml.safe_load_all(PEERING_CRDS.read_text()):
        apply_crd(api_client, document)
    custom: Any = client.CustomObjectsApi(api_client)
    peering = {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": PEERING}}
    custom.create_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", peering)
    dsd = FailoverDsd(api_client, namespace)
    with ExitStack() as stack:
        stack.callback(custom.delete_cluster_custom_object, "kopf.dev", "v1", "clusterkopfpeerings", PEERING)
        leader = OperatorProcess(
            local_cluster.kubeconfig, tmp_path / "leader.log", [f"--peering={PEERING}", "--priority=200"]
        )
        follower = OperatorProcess(
            local_cluster.kubeconfig, tmp_path / "follower.log", [f"--peering={PEERING}", "--priority=100"]
        )
        for operator in (leader, follower):
            operator.start()
            stack.callback(operator.stop)
        wait_until(
            lambda: _acting(leader) and not _acting(follower), 60, "the leader to act, the follower to wait"
        )
        # A failure threshold long enough to change leaders in the middle of counting.
        dsd.start(failover_spec(failureThreshold=12))
        dsd.set_faults(EAST, DEAD_ENGINE)
        counted = dsd.wait_failover(
            lambda f: next(r for r in f["regions"] if r["name"] == EAST)["consecutiveFailures"] >= 4,
            "the leader counting failed checks",
            timeout=30,
        )
        assert decisions_logged(follower, namespace) == [], "a paused replica decided something"
        leader.stop()  # a clean shutdown withdraws from the peering: the follower resumes
        wait_until(lambda: _acting(follower), 60, "the follower to take over")
        done = dsd.wait_failover(
            lambda f: (f.get("lastFailover") or {}).get("switchedAt") is not None,
            "the failover",
            timeout=TIMEOUT,
        )
        assert (done["activeRegion"], done["failoverCount"]) == (WEST, 1)
        # The follower continued the leader's count: the failure streak began under the leader.
        assert done["lastFailover"]["detectedAt"] == counted["failingSince"]
        assert done["lastFailover"]["detectedAt"] < done["lastFailover"]["decidedAt"]
        assert any(line.startswith("failover FailedOver:") for line in decisions_logged(follower, namespace))
        assert not any(line.startswith("failover Failing") for line in decisions_logged(leader, namespace))
        assert dsd.event_count("FailedOver") == 1
