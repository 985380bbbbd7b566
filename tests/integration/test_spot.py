"""The spot controller on the local cluster (issue 11): on-demand fallback on shortage and on interruption,
the move back with hysteresis, flap damping, the opt-in spill to spot. The real scheduler, controllers and
(for serving) the live data plane decide; the test only breaks the fleet as a provider would."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from localcluster import faults
from localcluster.cluster import LocalCluster
from localcluster.operator import OperatorProcess
from localcluster.tools import ensure_tools
from localcluster.waiting import wait_until
from spot_support import (
    POD_DELETION_COST,
    SpotDsd,
    Timeline,
    chat,
    condition,
    fleet_restored,
    spot_spec,
)

pytestmark = pytest.mark.cluster

SPOT_POOL = "h100-spot"
ON_DEMAND_POOL = "h100-on-demand"


@pytest.fixture
def fleet(local_cluster: LocalCluster) -> Iterator[Any]:
    with fleet_restored(local_cluster) as core:
        yield core


@pytest.fixture
def make_dsd(api_client: Any, namespace: str, operator: OperatorProcess) -> Any:
    def make(name: str, spec: dict[str, Any]) -> SpotDsd:
        dsd = SpotDsd(api_client, namespace, name)
        dsd.create(spec)
        dsd.wait_ready(timeout=60)
        return dsd

    return make


def operator_metric(operator: OperatorProcess, prefix: str) -> float:
    with urllib.request.urlopen(f"http://{operator.metrics_address}/metrics", timeout=5) as response:
        lines = response.read().decode().splitlines()
    return sum(float(line.split()[-1]) for line in lines if line.startswith(prefix))


def test_spot_shortage_falls_back_after_the_timeout_serves_and_moves_back_stepwise(
    make_dsd: Any, fleet: Any, local_cluster: LocalCluster, operator: OperatorProcess
) -> None:
    """Spot short (its nodes cordoned, its pods recreated): nothing for pendingTimeoutSeconds, then on-demand
    replicas in place of the Pending spot ones, serving; once spot is back, one replica back per step after
    the quiet period, the one marked with the lowest pod-deletion-cost."""
    dsd = make_dsd("short", spot_spec(replicas=3, simulator=True))
    assert (dsd.replicas("on-demand"), dsd.replicas("spot")) == (1, 2)
    dsd.wait_pool_ready("spot", 2)

    faults.cordon_nodes(fleet, faults.pool_selector(pool=SPOT_POOL, region="us-east"))
    for pod in dsd.pool_pods("spot"):
        dsd.core.delete_namespaced_pod(pod.metadata.name, dsd.namespace)
    pending = wait_until(
        lambda: dsd.spot_region().get("phase") == "Shortage" and dsd.spot_region(),
        20,
        "the spot pods Pending for capacity to show",
    )
    pending_since = time.monotonic()
    assert "2 spot pods Pending: 2 spot nodes cordoned" in pending["message"]
    # Nothing happens within the timeout (10 s from the pods' creation): a pod may yet be scheduled.
    while time.monotonic() < pending_since + 6:
        assert dsd.replicas("on-demand") == 1
        assert dsd.spot_region()["fallbackReplicas"] == 0
        time.sleep(0.5)

    wait_until(lambda: dsd.replicas("on-demand") == 3, 15, "2 on-demand replicas in place of the spot ones")
    dsd.wait_pool_ready("on-demand", 3, timeout=30)
    fallen_back = dsd.get()["status"]
    region = fallen_back["spot"]["regions"][0]
    assert (region["phase"], region["reason"], region["fallbackReplicas"]) == (
        "FallenBack",
        "SpotShortage",
        2,
    )
    assert region["message"].startswith(
        "2 on-demand replicas in place of spot: 2 spot pods Pending: 2 spot nodes cordoned for "
    )
    # The spot Deployment keeps its target: its Pending pods show when capacity returns.
    assert dsd.replicas("spot") == 2
    assert len(dsd.pool_pods("spot", ready=False)) == 2
    assert condition(fallen_back, "SpotAvailable")["status"] == "False"
    assert condition(fallen_back, "FallbackActive")["status"] == "True"
    assert condition(fallen_back, "FallbackActive")["reason"] == "SpotShortage"
    assert fallen_back["spot"]["fallbackReplicas"] == 2
    # Serving at full strength: Ready, and requests through the front Service are answered.
    wait_until(lambda: dsd.ready_for_generation(), 30, "Ready with the fallback")
    assert dsd.get()["status"]["ready"] == "3/3"
    statuses = chat(local_cluster.service_url(dsd.namespace, dsd.name), "r1", 6)
    assert statuses == [200] * 6
    wait_until(lambda: dsd.events("SpotFallback"), 10, "a SpotFallback event")
    # What `kubectl get dsd` shows.
    kubectl = str(ensure_tools(["kubectl"])["kubectl"].path)
    table = subprocess.run(
        [kubectl, f"--kubeconfig={local_cluster.kubeconfig}", "-n", dsd.namespace, "get", "dsd", dsd.name],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.split()
    assert table[:8] == ["NAME", "ACTIVE", "READY", "SPOT", "FALLBACK", "FALLBACK-REASON", "STATUS", "AGE"]
    assert table[8:15] == ["short", "us-east", "3/3", "66%", "2", "SpotShortage", "True"]

    # Spot capacity returns: the Pending spot pods are scheduled.
    faults.uncordon_nodes(fleet, faults.pool_selector(pool=SPOT_POOL, region="us-east"))
    dsd.wait_pool_ready("spot", 2, timeout=30)
    decisions = Timeline()  # (on-demand fallback replicas, when the controller last stepped)
    marked: dict[str, str] = {}
    on_demand_before = {pod.metadata.name for pod in dsd.pool_pods("on-demand")}
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and (decisions.samples[-1][1][0] if decisions.samples else 2) > 0:
        region = dsd.spot_region()
        decisions.record((region["fallbackReplicas"], region.get("lastStepTime")))
        for pod in dsd.pool_pods("on-demand", terminating=True):
            cost = (pod.metadata.annotations or {}).get(POD_DELETION_COST)
            if cost is not None:
                marked[pod.metadata.name] = cost
        time.sleep(0.1)
    changes = [value for _, value in decisions.changes()]
    assert [fallback for fallback, _ in changes] == [2, 1, 0], changes
    spot_at_target = next(p for p in region["pools"] if p["name"] == "spot")["readyAtTargetSince"]
    first_step, second_step = (datetime.fromisoformat(step) for _, step in changes[1:])
    # Not before the quiet period (8 s of spot ready at target), then one replica per step (4 s).
    assert (first_step - datetime.fromisoformat(spot_at_target)).total_seconds() >= 8, changes
    assert (second_step - first_step).total_seconds() >= 4, changes
    wait_until(
        lambda: dsd.replicas("on-demand") == 1 and len(dsd.pool_pods("on-demand")) == 1, 15, "1 on-demand pod"
    )
    # The pods that left were the ones marked to leave first.
    left = on_demand_before - {pod.metadata.name for pod in dsd.pool_pods("on-demand")}
    assert len(left) == 2
    assert left <= set(marked), (left, marked)
    assert set(marked.values()) == {"-1000"}
    steady = dsd.spot_region()
    assert (steady["phase"], steady["fallbackReplicas"]) == ("Steady", 0)
    wait_until(lambda: dsd.events("SpotMovedBack"), 10, "a SpotMovedBack event")


def test_an_interruption_notice_replaces_spot_replicas_on_on_demand_before_they_are_gone(
    make_dsd: Any, fleet: Any, operator: OperatorProcess
) -> None:
    dsd = make_dsd("notice", spot_spec(replicas=3))
    dsd.wait_pool_ready("spot", 2)
    (node, *_) = dsd.nodes_of("spot")
    doomed = {pod.metadata.name for pod in dsd.pool_pods("spot") if pod.spec.node_name == node}
    # (the exposition format sorts the labels by name)
    counted = f'deepseek_operator_spot_interruptions_total{{name="notice",namespace="{dsd.namespace}"'
    interruptions_before = operator_metric(operator, counted)
    replacements_before = operator_metric(
        operator, 'deepseek_operator_spot_replacement_seconds_count{cause="Interruption"}'
    )

    noticed = time.monotonic()
    faults.taint_interruption(fleet, [node], "karpenter")
    try:
        wait_until(
            lambda: dsd.replicas("on-demand") == 1 + len(doomed), 5, "the on-demand replacements, at once"
        )
    except AssertionError as error:
        raise AssertionError(f"{error}\nspot status: {dsd.spot_region()}\n{operator.log_tail(60)}") from None
    dsd.wait_pool_ready("on-demand", 1 + len(doomed), timeout=10)
    replaced_in = time.monotonic() - noticed
    # ... while the interrupted spot pods still run: nothing has evicted them yet.
    still = {pod.metadata.name for pod in dsd.pool_pods("spot") if pod.spec.node_name == node}
    assert still == doomed
    assert replaced_in < 5 + 2, f"replacement ready {replaced_in:.1f}s after the notice"
    region = dsd.spot_region()
    assert (region["phase"], region["reason"]) == ("FallenBack", "SpotInterrupted")
    assert node in region["message"]
    assert [i["node"] for i in region["interruptions"]] == [node]
    wait_until(
        lambda: operator_metric(operator, counted) == interruptions_before + 1,
        10,
        f"the interruption counted (from {interruptions_before}: {operator_metric(operator, counted)})",
    )
    wait_until(
        lambda: (
            operator_metric(
                operator, 'deepseek_operator_spot_replacement_seconds_count{cause="Interruption"}'
            )
            >= replacements_before + 1
        ),
        10,
        "the replacement time observed",
    )

    # Then the provider drains the node and reclaims it: nothing is lost, no second fallback.
    evicted, refused = faults.evict_pods(fleet, node)
    assert not refused, "no PodDisruptionBudget holds up the drain of spot pods"
    assert len(evicted) == len(doomed)
    fleet.delete_node(node)
    wait_until(lambda: len(dsd.ready_pods()) >= 3, 30, "3 ready replicas after the reclaim")
    assert dsd.replicas("on-demand") == 1 + len(doomed)
    assert [i["node"] for i in dsd.spot_region()["interruptions"]] == [node]


def test_a_whole_zone_interrupted_at_once_falls_back_at_once_and_counts_once(
    make_dsd: Any, fleet: Any, operator: OperatorProcess
) -> None:
    dsd = make_dsd(
        "zone",
        spot_spec(
            replicas=5, fallback={"cooldown": {"interruptions": 2, "windowSeconds": 600, "groupSeconds": 60}}
        ),
    )
    dsd.wait_pool_ready("spot", 4)
    in_zone = [pod for pod in dsd.pool_pods("spot") if pod.spec.node_name.startswith("gpu-us-east-1a-")]
    assert in_zone, "the zone spread puts spot pods in us-east-1a"
    on_demand_in_zone = [
        p for p in dsd.pool_pods("on-demand") if p.spec.node_name.startswith("gpu-us-east-1a-")
    ]
    removed = faults.remove_nodes(fleet, faults.pool_selector(zone="us-east-1a"))
    assert {"gpu-us-east-1a-h100-spot-0", "gpu-us-east-1a-h100-on-demand-0"} <= set(removed)
    wait_until(
        lambda: dsd.spot_region().get("fallbackReplicas", 0) >= len(in_zone),
        10,
        f"{len(in_zone)} on-demand replicas in place of the zone's spot replicas",
    )
    region = dsd.spot_region()
    assert region["reason"] == "SpotInterrupted"
    assert "NodeGone" in region["message"]
    # One zone going at once is one interruption: below the cooldown threshold of 2.
    assert region["phase"] != "Suppressed"
    assert len(region["interruptions"]) == 1

    def serving() -> int:
        """Ready pods on nodes that still exist (the zone's pods stay Ready in the API until garbage
        collection deletes them, though nothing runs them any more)."""
        alive = {node.metadata.name for node in fleet.list_node().items}
        return sum(1 for pod in dsd.ready_pods() if pod.spec.node_name in alive)

    # Every spot replica of the zone is served again on on-demand nodes, at once; an on-demand replica the
    # zone took comes back only once pod garbage collection has deleted its pod (not the spot controller's).
    expected = 5 - len(on_demand_in_zone)
    wait_until(lambda: serving() >= expected, 15, f"{expected} ready replicas on the nodes left")


def test_flapping_spot_is_not_used_for_a_cooldown(
    make_dsd: Any, fleet: Any, operator: OperatorProcess
) -> None:
    """Two interruptions (a few seconds apart here) within the window stop spot in the region for the
    cooldown: every spot replica on on-demand, then the spot replicas withheld; after it, spot again."""
    dsd = make_dsd(
        "flap",
        spot_spec(
            replicas=3,
            fallback={
                "cooldown": {"interruptions": 2, "windowSeconds": 600, "seconds": 15, "groupSeconds": 1}
            },
        ),
    )
    dsd.wait_pool_ready("spot", 2)
    first, second = (faults.pool_selector(pool=SPOT_POOL, zone=zone) for zone in ("us-east-1a", "us-east-1b"))
    (node_a,) = faults.cordon_nodes(fleet, first)
    faults.taint_interruption(fleet, [node_a], "karpenter")
    wait_until(lambda: dsd.spot_region().get("fallbackReplicas", 0) >= 1, 10, "the first fallback")
    faults.clear_interruptions(fleet, first)
    time.sleep(1.5)  # the second notice comes later than groupSeconds: a second interruption
    (node_b,) = faults.cordon_nodes(fleet, second)
    faults.taint_interruption(fleet, [node_b], "karpenter")
    suppressed = wait_until(
        lambda: region if (region := dsd.spot_region()).get("phase") == "Suppressed" else None,
        10,
        "spot suppressed after the second interruption",
    )
    faults.clear_interruptions(fleet, second)
    assert suppressed["fallbackReplicas"] == 2, "every spot replica on on-demand"
    wait_until(lambda: len(dsd.events("SpotSuppressed")) == 1, 10, "a SpotSuppressed event")
    # Make before break: once the on-demand stand-ins are ready, the spot replicas are withheld.
    dsd.wait_pool_ready("on-demand", 3, timeout=15)
    wait_until(lambda: dsd.replicas("spot") == 0, 10, "the spot replicas withheld during the cooldown")
    started = time.monotonic()
    # The cooldown holds (15 s from the stop): spot stays unused although its nodes are fine again.
    while time.monotonic() < started + 8:
        assert dsd.replicas("spot") == 0
        assert dsd.spot_region()["phase"] == "Suppressed"
        time.sleep(0.5)
    wait_until(lambda: dsd.replicas("spot") == 2, 20, "spot tried again after the cooldown")
    wait_until(lambda: dsd.events("SpotCooldownOver"), 10, "a SpotCooldownOver event")
    region = dsd.spot_region()
    assert region["suppressions"] == 1
    assert region["phase"] in ("FallenBack", "Recovering", "Steady")


@pytest.mark.parametrize("spill", [False, True], ids=["spill-not-allowed", "spill-allowed"])
def test_on_demand_shortage_spills_to_spot_only_when_allowed(
    make_dsd: Any, fleet: Any, operator: OperatorProcess, spill: bool
) -> None:
    dsd = make_dsd("od-short", spot_spec(replicas=3, on_demand_base=2, fallback={"spillToSpot": spill}))
    assert (dsd.replicas("on-demand"), dsd.replicas("spot")) == (2, 1)
    dsd.wait_pool_ready("on-demand", 2)
    faults.cordon_nodes(fleet, faults.pool_selector(pool=ON_DEMAND_POOL, region="us-east"))
    for pod in dsd.pool_pods("on-demand"):
        dsd.core.delete_namespaced_pod(pod.metadata.name, dsd.namespace)
    wait_until(
        lambda: dsd.spot_region().get("reason") == "OnDemandPending", 20, "on-demand Pending for capacity"
    )
    if not spill:
        # Past the timeout, nothing moves to spot: the user did not allow it.
        started = time.monotonic()
        while time.monotonic() < started + 14:
            assert dsd.replicas("spot") == 1
            time.sleep(0.5)
        region = dsd.spot_region()
        assert (region["phase"], region["spillReplicas"]) == ("OnDemandShortage", 0)
        assert region["message"].endswith("spot.fallback.spillToSpot is off")
        return
    wait_until(lambda: dsd.replicas("spot") == 3, 20, "the 2 missing on-demand replicas on spot")
    dsd.wait_pool_ready("spot", 3, timeout=20)
    region = dsd.spot_region()
    assert (region["phase"], region["spillReplicas"]) == ("Spilled", 2)
    assert condition(dsd.get()["status"], "FallbackActive")["reason"] == "OnDemandShortage"
    # On-demand returns: the spilled replicas go back, one per step after the quiet period.
    faults.uncordon_nodes(fleet, faults.pool_selector(pool=ON_DEMAND_POOL, region="us-east"))
    dsd.wait_pool_ready("on-demand", 2, timeout=30)
    wait_until(lambda: dsd.replicas("spot") == 1, 30, "the spilled replicas back on on-demand")
    assert dsd.spot_region()["phase"] == "Steady"


def test_the_spot_status_has_its_own_field_manager_and_goes_with_spot(
    make_dsd: Any, fleet: Any, operator: OperatorProcess
) -> None:
    """The reconcile and the spot controller write status with server-side apply under two field managers:
    neither removes the other's fields; turning spot off removes the spot controller's."""
    dsd = make_dsd("owners", spot_spec(replicas=3))
    wait_until(lambda: dsd.spot_status().get("regions"), 20, "status.spot written")
    managers = {
        entry["manager"]: entry
        for entry in dsd.get()["metadata"]["managedFields"]
        if entry.get("subresource") == "status" and entry["operation"] == "Apply"
    }
    assert set(managers) == {"deepseek-operator", "deepseek-operator-spot"}
    assert "f:spot" in managers["deepseek-operator-spot"]["fieldsV1"]["f:status"]
    assert "f:spot" not in managers["deepseek-operator"]["fieldsV1"]["f:status"]
    # A spec change makes the reconcile write its status again: the spot fields stay.
    dsd.patch_spec({"replicas": 4})
    dsd.wait_ready(timeout=30)
    status = dsd.get()["status"]
    assert status["spot"]["regions"][0]["name"] == "us-east"
    assert {c["type"] for c in status["conditions"]} == {
        "Ready",
        "Progressing",
        "Degraded",
        "SpotAvailable",
        "FallbackActive",
    }
    # Spot off: the spot controller's fields go, the reconcile's stay.
    dsd.patch_spec({"spot": {"enabled": False}})
    wait_until(lambda: "spot" not in dsd.get()["status"], 40, "status.spot removed")
    status = dsd.get()["status"]
    assert {c["type"] for c in status["conditions"]} == {"Ready", "Progressing", "Degraded"}
    dsd.wait_ready(timeout=30)
