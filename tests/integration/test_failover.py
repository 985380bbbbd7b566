"""Region failover on the local cluster, with its live data plane: a real simulator process behind each
pod, the Service proxy, Prometheus scraping every second, the operator as a real process. Every wait is
bounded and waits on what the test asserts; fixed sleeps only where a test proves that nothing happens
over a period."""

from __future__ import annotations

import os
import signal
import time
import urllib.request
from typing import Any

import pytest
from failover_support import (
    DEAD_ENGINE,
    EAST,
    ERRORS,
    HARD_SIGNALS,
    MODEL,
    NAME,
    REGIONS,
    SLOW,
    TIMEOUT,
    WEST,
    FailoverDsd,
    failover_spec,
    kubectl_get_dsd,
    operator_metric,
)
from localcluster import faults
from localcluster.cluster import LocalCluster
from localcluster.operator import REPO_ROOT, OperatorProcess
from localcluster.traffic import Traffic
from localcluster.waiting import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

PRODUCTION_SAMPLE = REPO_ROOT / "manifests" / "samples" / "production.yaml"
# Short blips, each shorter than failureThreshold - 1 intervals, for this long: never a switch.
BLIP_SECONDS = 1.2
BLIP_EVERY_SECONDS = 4.0
BLIPS_FOR_SECONDS = 120.0


@pytest.fixture
def dsd(api_client: Any, namespace: str, operator: OperatorProcess) -> FailoverDsd:
    del operator  # running for the module
    return FailoverDsd(api_client, namespace)


def start_traffic(local_cluster: LocalCluster, dsd: FailoverDsd) -> Traffic:
    return Traffic(local_cluster.service_url(dsd.namespace, NAME), MODEL).start()


def assert_switched_once(dsd: FailoverDsd, reason: str) -> dict[str, Any]:
    """Moved to eu-west once, for `reason`, every step recorded."""
    failover = dsd.wait_failover(
        lambda f: (f.get("lastFailover") or {}).get("switchedAt") is not None, "the switch recorded"
    )
    last = failover["lastFailover"]
    assert (failover["phase"], failover["activeRegion"], failover["failoverCount"]) == ("FailedOver", WEST, 1)
    assert (last["fromRegion"], last["toRegion"], last["reason"]) == (EAST, WEST, reason)
    assert last["detectedAt"] <= last["decidedAt"] <= last["switchedAt"]
    assert last["durationMilliseconds"] > 0
    assert dsd.front_region() == WEST
    assert dsd.get()["status"]["activeRegion"] == WEST
    wait_until(lambda: dsd.event_count("FailedOver") == 1, 30, "the FailedOver event")
    assert dsd.event_count("FailingOver") == 1
    return failover


# --- hard signals --------------------------------------------------------------------------------------


def test_a_region_outage_moves_the_traffic_to_the_standby_within_seconds(
    local_cluster: LocalCluster, dsd: FailoverDsd, core_api: Any, operator: OperatorProcess
) -> None:
    dsd.start(failover_spec())
    assert [row["ACTIVE"] for row in kubectl_get_dsd(local_cluster.kubeconfig, dsd.namespace)] == [EAST]
    client = start_traffic(local_cluster, dsd)
    try:
        wait_until(lambda: any(a.ok for a in client.snapshot()), 30, "answers through the front Service")
        started = time.monotonic()
        try:
            assert faults.fail_nodes(core_api, faults.region_selector(EAST))
            wait_until(lambda: dsd.front_region() == WEST, 30, "the front Service on eu-west", interval=0.05)
            moved_after = time.monotonic() - started
            failover = assert_switched_once(dsd, "NodesNotReady")
            # A user's view: the ACTIVE column, and answers from eu-west's pods.
            assert [row["ACTIVE"] for row in kubectl_get_dsd(local_cluster.kubeconfig, dsd.namespace)] == [
                WEST
            ]
            moved_at = time.monotonic()
            wait_until(
                lambda: any(
                    a.ok and a.sent > moved_at and a.region(NAME, REGIONS) == WEST for a in client.snapshot()
                ),
                30,
                "an answer from eu-west",
            )
        finally:
            local_cluster.restore_fleet()
    finally:
        answers = client.stop()
    # 1 s checks, 3 of them: the goal is failureThreshold x interval + 1 s; a loaded CI machine gets 3 s more.
    assert moved_after < 7, f"the front Service moved {moved_after:.1f}s after the fault"
    assert failover["lastFailover"]["durationMilliseconds"] < 7000
    assert not [a for a in answers if a.ok and a.region(NAME, REGIONS) not in REGIONS]
    with urllib.request.urlopen(f"http://{operator.metrics_address}/metrics", timeout=10) as response:
        text = response.read().decode()
    labels = {"namespace": dsd.namespace, "name": NAME, "reason": "NodesNotReady", "to_region": WEST}
    assert operator_metric(text, "deepseek_operator_failovers_total", labels) == 1
    health = {"namespace": dsd.namespace, "name": NAME, "region": WEST, "state": "Healthy"}
    assert operator_metric(text, "deepseek_operator_region_health", health) == 1


def test_a_dead_engine_behind_a_live_process_fails_the_region_over(dsd: FailoverDsd) -> None:
    dsd.start(failover_spec())
    dsd.set_faults(EAST, DEAD_ENGINE)
    dsd.wait_phase("FailedOver", timeout=30)
    failover = assert_switched_once(dsd, "EngineUnhealthy")
    assert "EngineUnhealthy" in failover["lastFailover"]["signals"]
    east = next(r for r in failover["regions"] if r["name"] == EAST)
    assert east["state"] == "Unhealthy"


def test_a_region_that_has_no_healthy_standby_stays_and_reports_it(dsd: FailoverDsd) -> None:
    dsd.start(failover_spec())
    dsd.set_faults(WEST, DEAD_ENGINE)
    dsd.set_faults(EAST, DEAD_ENGINE)
    failover = dsd.wait_phase("NoHealthyTarget", timeout=30)
    assert failover["activeRegion"] == EAST
    assert "no other region is healthy" in failover["message"]
    wait_until(lambda: dsd.event_count("FailoverBlocked") >= 1, 30, "the FailoverBlocked event")
    ready = dsd.condition("FailoverReady")
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("False", "NoHealthyStandby")
    # It stays: checks go on every second, and nothing moves.
    time.sleep(5)
    failover = dsd.failover()
    assert (failover["activeRegion"], failover["failoverCount"]) == (EAST, 0)
    assert dsd.front_region() == EAST
    assert dsd.event_count("FailingOver") == 0


def test_blips_over_minutes_never_switch_and_a_sustained_fault_switches_exactly_once(
    dsd: FailoverDsd,
) -> None:
    dsd.start(failover_spec())
    blips = 0
    failures_seen: list[int] = []

    def record_failures() -> None:
        east = next(r for r in dsd.failover()["regions"] if r["name"] == EAST)
        failures_seen.append(int(east["consecutiveFailures"]))

    deadline = time.monotonic() + BLIPS_FOR_SECONDS
    try:
        while time.monotonic() < deadline:
            dsd.set_faults(EAST, DEAD_ENGINE)
            time.sleep(BLIP_SECONDS)  # a blip: fewer than failureThreshold checks see it
            dsd.heal(EAST)
            blips += 1
            # Not a sleep for the controller: the fixed cadence of the blips, meanwhile reading status.
            settle = time.monotonic() + BLIP_EVERY_SECONDS - BLIP_SECONDS
            while time.monotonic() < settle:
                record_failures()
                time.sleep(0.2)
    finally:
        dsd.heal(EAST)
    failover = dsd.failover()
    east = next(r for r in failover["regions"] if r["name"] == EAST)
    assert blips >= 25
    assert (failover["failoverCount"], failover["activeRegion"], east["state"]) == (0, EAST, "Healthy")
    assert dsd.event_count("FailingOver") == 0
    assert dsd.event_count("RegionUnhealthy") == 0
    # The blips were seen (checks failed), never failureThreshold of them in a row.
    assert 1 <= max(failures_seen) <= 2, sorted(set(failures_seen))

    dsd.set_faults(EAST, DEAD_ENGINE)
    assert_switched_once(dsd, "EngineUnhealthy")
    time.sleep(10)  # and no more switches (minActiveSeconds, failback Manual)
    assert dsd.failover()["failoverCount"] == 1
    assert dsd.event_count("FailedOver") == 1


# --- metric signals, through the real Prometheus ------------------------------------------------------


def metric_spec(local_cluster: LocalCluster, signals: list[str], **failover: Any) -> dict[str, Any]:
    return failover_spec(
        local_cluster.prometheus_url,
        signals=signals,
        metricsWindow="5s",
        errorRatePercent=20,
        p99LatencyMilliseconds=1000,
        **failover,
    )


def wait_signals_evaluated(dsd: FailoverDsd) -> None:
    """The traffic is scraped: Prometheus has a value for the region taking it."""
    wait_until(lambda: dsd.condition_status("SignalsAvailable") == "True", 60, "SignalsAvailable True")


def test_a_high_error_ratio_seen_in_prometheus_fails_the_region_over(
    local_cluster: LocalCluster, dsd: FailoverDsd
) -> None:
    dsd.start(metric_spec(local_cluster, [*HARD_SIGNALS, "ErrorRate"]))
    client = start_traffic(local_cluster, dsd)
    try:
        wait_signals_evaluated(dsd)
        dsd.set_faults(EAST, ERRORS)
        failover = assert_switched_once(dsd, "ErrorRate")
        assert "of requests failed" in failover["lastFailover"]["message"]
        moved_at = time.monotonic()
        wait_until(
            lambda: any(
                a.ok and a.sent > moved_at and a.region(NAME, REGIONS) == WEST for a in client.snapshot()
            ),
            30,
            "an answer from eu-west",
        )
    finally:
        client.stop()


def test_a_high_p99_latency_seen_in_prometheus_fails_the_region_over(
    local_cluster: LocalCluster, dsd: FailoverDsd
) -> None:
    dsd.start(metric_spec(local_cluster, [*HARD_SIGNALS, "Latency"]))
    client = start_traffic(local_cluster, dsd)
    try:
        wait_signals_evaluated(dsd)
        dsd.set_faults(EAST, SLOW)
        failover = assert_switched_once(dsd, "Latency")
        assert "p99 end-to-end latency" in failover["lastFailover"]["message"]
    finally:
        client.stop()


def test_with_prometheus_stopped_metric_signals_are_unknown_never_a_failover(
    local_cluster: LocalCluster, dsd: FailoverDsd
) -> None:
    """The errors are real (a failover follows as soon as Prometheus answers again), but while it does
    not answer the ErrorRate signal is Unknown: no failover, and the condition says which and why."""
    dsd.start(metric_spec(local_cluster, ["PodsNotReady", "ErrorRate"]))
    client = start_traffic(local_cluster, dsd)
    prometheus = local_cluster.processes["prometheus"].pid
    try:
        wait_signals_evaluated(dsd)
        os.kill(prometheus, signal.SIGSTOP)
        try:
            wait_until(
                lambda: dsd.condition_status("SignalsAvailable") == "False", 30, "SignalsAvailable False"
            )
            dsd.set_faults(EAST, ERRORS)
            time.sleep(8)  # 8 checks with every request failing: over twice failureThreshold
            failover = dsd.failover()
            assert (failover["failoverCount"], failover["activeRegion"]) == (0, EAST)
            assert dsd.front_region() == EAST
            east = next(r for r in failover["regions"] if r["name"] == EAST)
            assert east["unknownSignals"] == ["ErrorRate"]
            assert east["consecutiveFailures"] == 0
            condition = dsd.condition("SignalsAvailable")
            assert condition is not None
            assert condition["reason"] == "SignalsUnavailable"
            assert f"ErrorRate in us-east: Prometheus {local_cluster.prometheus_url}" in condition["message"]
        finally:
            os.kill(prometheus, signal.SIGCONT)
        assert_switched_once(dsd, "ErrorRate")
    finally:
        client.stop()


# --- failback --------------------------------------------------------------------------------------------


def test_failback_auto_returns_once_the_region_is_healthy_again(dsd: FailoverDsd) -> None:
    dsd.start(failover_spec(failback="Auto", minActiveSeconds=5))
    dsd.set_faults(EAST, DEAD_ENGINE)
    first = assert_switched_once(dsd, "EngineUnhealthy")
    # us-east now keeps its warm replica; its engine comes back.
    wait_until(
        lambda: len([p for p in dsd.pods() if EAST in p.metadata.name]) == 1, TIMEOUT, "us-east at 1 replica"
    )
    dsd.heal(EAST)
    back = dsd.wait_failover(
        lambda f: (
            (f.get("lastFailover") or {}).get("reason") == "Failback"
            and (f.get("lastFailover") or {}).get("switchedAt") is not None
        ),
        "the failback",
    )
    assert (back["phase"], back["activeRegion"], back["failoverCount"]) == ("Healthy", EAST, 2)
    last = back["lastFailover"]
    assert (last["fromRegion"], last["toRegion"]) == (WEST, EAST)
    # minActiveSeconds after the failover, and only once us-east was healthy (successThreshold checks).
    assert last["decidedAt"] > first["lastFailover"]["switchedAt"]
    assert dsd.front_region() == EAST
    wait_until(lambda: dsd.event_count("FailedBack") == 1, 30, "the FailedBack event")


def test_failback_manual_stays_until_a_person_adopts_the_region(dsd: FailoverDsd) -> None:
    dsd.start(failover_spec(failback="Manual", minActiveSeconds=2))
    dsd.set_faults(EAST, DEAD_ENGINE)
    assert_switched_once(dsd, "EngineUnhealthy")
    wait_until(
        lambda: len([p for p in dsd.pods() if EAST in p.metadata.name]) == 1, TIMEOUT, "us-east at 1 replica"
    )
    dsd.heal(EAST)
    dsd.wait_failover(
        lambda f: next(r for r in f["regions"] if r["name"] == EAST)["state"] == "Healthy",
        "us-east healthy again",
    )
    time.sleep(5)  # healthy, past minActiveSeconds: with Manual, the traffic still stays
    failover = dsd.failover()
    assert (failover["phase"], failover["activeRegion"], failover["failoverCount"]) == ("FailedOver", WEST, 1)
    assert "until a person changes the spec" in failover["message"]
    assert dsd.front_region() == WEST

    # The person adopts eu-west: it becomes the Active region, and nothing moves.
    dsd.patch_spec({"regions": [{"name": EAST, "role": "Standby"}, {"name": WEST, "role": "Active"}]})
    adopted = dsd.wait_failover(lambda f: f.get("homeRegion") == WEST, "eu-west adopted as the Active region")
    assert (adopted["phase"], adopted["activeRegion"], adopted["failoverCount"]) == ("Healthy", WEST, 1)
    assert dsd.front_region() == WEST
    wait_until(lambda: dsd.event_count("FailoverAdopted") == 1, 30, "the FailoverAdopted event")


# --- the make dev demo ------------------------------------------------------------------------------------


def test_the_dev_sample_fails_over_on_fail_region_and_back_on_restore(
    local_cluster: LocalCluster, api_client: Any, namespace: str, core_api: Any, operator: OperatorProcess
) -> None:
    """What `make dev` shows: the production sample as hack/dev.py applies it (simulator pods, 1 s checks,
    failback Auto, the cluster's Prometheus); `fail-region us-east`, then `restore-region`."""
    del operator
    sample = hack_dev_module().dev_sample(PRODUCTION_SAMPLE, local_cluster.prometheus_url)
    dsd = FailoverDsd(api_client, namespace, sample["metadata"]["name"])
    dsd.start(sample["spec"])
    failed_at = time.monotonic()
    try:
        faults.fail_nodes(core_api, faults.region_selector(EAST))
        wait_until(
            lambda: [row["ACTIVE"] for row in kubectl_get_dsd(local_cluster.kubeconfig, namespace)] == [WEST],
            30,
            "ACTIVE eu-west",
        )
        moved_after = time.monotonic() - failed_at
    finally:
        local_cluster.restore_fleet()
    wait_until(
        lambda: [row["ACTIVE"] for row in kubectl_get_dsd(local_cluster.kubeconfig, namespace)] == [EAST],
        TIMEOUT,
        "ACTIVE back to us-east after restore-region",
    )
    failover = dsd.failover()
    assert (failover["failoverCount"], failover["lastFailover"]["reason"]) == (2, "Failback")
    assert moved_after < 10, f"ACTIVE moved {moved_after:.1f}s after fail-region"


def hack_dev_module() -> Any:
    """hack/dev.py, imported by path (hack/ is no package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "hack_dev", PRODUCTION_SAMPLE.parents[2] / "hack" / "dev.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- one region -------------------------------------------------------------------------------------------


def test_a_one_region_deployment_needs_no_failover_section(dsd: FailoverDsd) -> None:
    spec = failover_spec()
    spec["regions"] = [{"name": EAST, "role": "Active"}]
    del spec["failover"]
    dsd.create(spec)
    dsd.wait_ready(timeout=TIMEOUT)
    failover = dsd.wait_phase("Disabled")
    assert failover["message"] == "one region (us-east): nowhere to fail over to"
    ready = dsd.condition("FailoverReady")
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("False", "NoStandbyRegion")
