"""The operator killed in the middle of a reconcile converges after a restart, with no duplicates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from localcluster.cluster import LocalCluster
from localcluster.operator import OperatorProcess, install_crd_and_priority_classes
from localcluster.waiting import wait_until
from operator_fixtures import DEPLOYMENT_LABEL, Dsd

pytestmark = pytest.mark.cluster

# Eight regions (the API's maximum) with spot: 16 Deployments, 8 region Services, a front Service and
# 8 budgets, so one reconcile is long enough to be interrupted half-way.
REGIONS = ["us-east", "eu-west", "r3", "r4", "r5", "r6", "r7", "r8"]


def eight_region_spec() -> dict[str, Any]:
    return {
        "model": {"name": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"},
        "regions": [
            {"name": name, "role": "Active" if index == 0 else "Standby"}
            for index, name in enumerate(REGIONS)
        ],
        "replicas": 2,
        "spot": {"enabled": True, "onDemandBase": 1, "spotPercentage": 50},
        # Warm standbys only where the fleet has nodes; the rest stay at zero replicas.
        "failover": {"standbyWarmReplicas": 0},
    }


def test_operator_killed_mid_reconcile_converges_after_restart_without_duplicates(
    local_cluster: LocalCluster, api_client: Any, namespace: str, tmp_path: Path
) -> None:
    install_crd_and_priority_classes(api_client)
    dsd = Dsd(api_client, namespace, "crash")
    first = OperatorProcess(local_cluster.kubeconfig, tmp_path / "first.log")
    first.start()
    try:
        dsd.create(eight_region_spec())
        wait_until(lambda: dsd.deployments(), 30, "the first child Deployment", interval=0.005)
        first.kill()
    finally:
        first.stop()

    at_kill = {d.metadata.name: d.metadata.uid for d in dsd.deployments()}
    assert 0 < len(at_kill) < 16, f"the kill landed mid-reconcile: {len(at_kill)} of 16 Deployments existed"
    assert not (dsd.get().get("status") or {}).get("observedGeneration"), "status is written last"

    with OperatorProcess(local_cluster.kubeconfig, tmp_path / "second.log"):
        current = dsd.wait_ready()
        deployments = dsd.deployments()
        names = [d.metadata.name for d in deployments]
        assert len(names) == len(set(names)) == 16
        # What the first run created is taken over as it is, not replaced.
        assert {d.metadata.name: d.metadata.uid for d in deployments if d.metadata.name in at_kill} == at_kill
        services = dsd.core.list_namespaced_service(
            namespace, label_selector=f"{DEPLOYMENT_LABEL}=crash"
        ).items
        assert len(services) == 9
        wait_until(lambda: len(dsd.pods()) == 2 and len(dsd.ready_pods()) == 2, 30, "exactly 2 ready pods")
        assert current["status"]["ready"] == "2/2"
