"""The operator SIGKILLed in the middle of a spot fallback: the next one goes on from status, with no
duplicate and no lost replica, and with the timers where they were (issue 11)."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from localcluster import faults
from localcluster.cluster import LocalCluster
from localcluster.operator import OperatorProcess, install_crd_and_priority_classes
from localcluster.waiting import wait_until
from spot_support import SpotDsd, fleet_restored, spot_spec

pytestmark = pytest.mark.cluster

SPOT_POOL = "h100-spot"


def counts(dsd: SpotDsd) -> tuple[int, int, int, int]:
    """On-demand and spot Deployment replicas, and their pods (not being deleted)."""
    return (
        dsd.replicas("on-demand"),
        dsd.replicas("spot"),
        len(dsd.pool_pods("on-demand")),
        len(dsd.pool_pods("spot")),
    )


def test_an_operator_killed_mid_fallback_is_continued_from_status_without_duplicates(
    local_cluster: LocalCluster, api_client: Any, namespace: str, tmp_path: Path
) -> None:
    install_crd_and_priority_classes(api_client)
    dsd = SpotDsd(api_client, namespace, "restart")
    spot = faults.pool_selector(pool=SPOT_POOL, region="us-east")
    with fleet_restored(local_cluster) as core:
        first = OperatorProcess(local_cluster.kubeconfig, tmp_path / "first.log")
        first.start()
        try:
            dsd.create(spot_spec(replicas=3, fallback={"quietPeriodSeconds": 20, "stepSeconds": 4}))
            dsd.wait_ready(timeout=60)
            dsd.wait_pool_ready("spot", 2)
            # Spot short: the spot pods are recreated on cordoned nodes and stay Pending...
            faults.cordon_nodes(core, spot)
            for pod in dsd.pool_pods("spot"):
                dsd.core.delete_namespaced_pod(pod.metadata.name, dsd.namespace)
            wait_until(lambda: dsd.spot_region().get("phase") == "Shortage", 20, "the shortage seen")
        finally:
            # ... and the operator dies before the timeout: the timer lives in the pods' age, not in it.
            first.kill()
            first.stop()
        pending_since = datetime.fromisoformat(
            next(p for p in dsd.spot_region()["pools"] if p["name"] == "spot")["shortageSince"]
        )
        time.sleep(12)  # the 10 s timeout passes while no operator runs
        assert counts(dsd) == (1, 2, 1, 2), "nothing acted while the operator was down"

        second = OperatorProcess(local_cluster.kubeconfig, tmp_path / "second.log")
        second.start()
        restarted = time.monotonic()
        try:
            wait_until(lambda: dsd.replicas("on-demand") == 3, 10, "the fallback, at once after the restart")
            fell_back_after = time.monotonic() - restarted
            dsd.wait_pool_ready("on-demand", 3, timeout=15)
            assert counts(dsd) == (3, 2, 3, 2)
            assert fell_back_after < 6, f"fallback {fell_back_after:.1f}s after the restart"
            region = dsd.spot_region()
            assert (
                datetime.fromisoformat(
                    next(p for p in region["pools"] if p["name"] == "spot")["shortageSince"]
                )
                == pending_since
            )

            # Spot returns: the quiet period (20 s) starts; the operator is killed in the middle of it.
            faults.uncordon_nodes(core, spot)
            dsd.wait_pool_ready("spot", 2, timeout=30)
            quiet_since = wait_until(
                lambda: next(p for p in dsd.spot_region()["pools"] if p["name"] == "spot").get(
                    "readyAtTargetSince"
                ),
                10,
                "the quiet period started",
            )
        finally:
            second.kill()
            second.stop()
        killed_at = time.monotonic()
        time.sleep(6)
        assert counts(dsd) == (3, 2, 3, 2), "no duplicate and no loss while no operator runs"

        with OperatorProcess(local_cluster.kubeconfig, tmp_path / "third.log"):
            # The quiet period continues from status: its timer did not restart with the operator.
            wait_until(lambda: dsd.spot_region().get("fallbackReplicas") == 1, 25, "the first step back")
            region = dsd.spot_region()
            assert (
                next(p for p in region["pools"] if p["name"] == "spot")["readyAtTargetSince"] == quiet_since
            )
            first_step = datetime.fromisoformat(region["lastStepTime"])
            quiet_over = (first_step - datetime.fromisoformat(quiet_since)).total_seconds()
            assert 20 <= quiet_over < 20 + 6, f"first step {quiet_over:.1f}s after spot was back at target"
            assert time.monotonic() - killed_at < 20 + 6, "a restarted timer would wait 20 s from the restart"
            wait_until(lambda: counts(dsd) == (1, 2, 1, 2), 20, "every replica back on spot, none lost")
