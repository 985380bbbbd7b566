"""Predictive pre-scaling on the live local cluster: Prometheus holds seven days (and an hour) of
synthetic request-rate history, backfilled with `promtool tsdb create-blocks-from openmetrics`, whose
daily peak starts ten minutes from now; the real operator forecasts from it, real time (no compressed
calendar).

- ForecastAndScale: the operator raises the floor now, the HPA's minimum follows, and the extra
  simulator replicas are Ready before the peak (the capacity per replica is learned from the history).
- ForecastOnly: the same forecast lands in status; the HPA and the replicas are left alone.
- Prometheus stopped: the floor is removed and the condition says why (a Prometheus of the test's own,
  holding the same kind of history, so that the session's Prometheus keeps serving the HPA).
"""

from __future__ import annotations

import contextlib
import dataclasses
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from localcluster.cluster import LocalCluster, free_port
from localcluster.history import (
    DAY,
    EngineSeries,
    TrafficPattern,
    aligned_origin,
    backfill,
    openmetrics_history,
    wait_for_history,
)
from localcluster.operator import OperatorProcess
from localcluster.tools import ensure_tools
from localcluster.waiting import wait_until
from operator_fixtures import Dsd

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

PEAK_IN_SECONDS = 600.0
PER_REPLICA = 1.0  # req/s one replica serves at the queue target, in the history
QUEUE_TARGET = 2
# Quiet nights of one replica; the peak needs four. The ramp takes five minutes.
PATTERN = TrafficPattern(peak=4.0, night_share=0.1, ramp_hours=5 / 60, weekend_share=1.0)
HISTORY_STEP = 60.0
# The operator looks every minute: the first look, an HPA sync and a few seconds of pod start.
LOOK_TIMEOUT = 150


def history_lines(namespace: str, models: list[str], now: float) -> Iterator[str]:
    pattern = dataclasses.replace(PATTERN, origin=aligned_origin(now, PATTERN, PEAK_IN_SECONDS))
    for model in models:
        yield from (
            line
            for line in openmetrics_history(
                EngineSeries(namespace, model),
                pattern.rate,
                now - 7 * DAY - 3600,
                now - HISTORY_STEP,
                HISTORY_STEP,
                PER_REPLICA,
                QUEUE_TARGET,
            )
            if line != "# EOF"
        )
    yield "# EOF"


def spec(model: str, mode: str, prometheus_url: str) -> dict[str, Any]:
    return {
        "model": {"name": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "servedModelName": model},
        "image": {"repository": "deepseek-simulator", "tag": "predictive"},
        "engine": {"maxBatchSize": 2},
        "resources": {"gpusPerReplica": 1, "cpu": "100m", "memory": "256Mi", "sharedMemorySize": "64Mi"},
        "regions": [{"name": "us-east", "role": "Active"}],
        "failover": {"enabled": False},
        "replicas": 1,
        "autoscaling": {
            "enabled": True,
            "minReplicas": 1,
            "maxReplicas": 6,
            "queueDepthTargetPerReplica": QUEUE_TARGET,
            # A floor that is gone may go at once (the default waits 5 minutes, then 1 pod per 2).
            "scaleDown": {"stabilizationWindowSeconds": 0, "maxPodsPerPeriod": 6, "periodSeconds": 1},
            "predictive": {"enabled": True, "mode": mode},
        },
        "monitoring": {
            "prometheusUrl": prometheus_url,
            "serviceMonitor": {"enabled": True, "interval": "1s"},
        },
        "rollout": {"drainSeconds": 1},
    }


def predictive_status(dsd: Dsd) -> dict[str, Any]:
    found: dict[str, Any] = (dsd.get().get("status") or {}).get("predictive") or {}
    return found


def hpa_minimum(dsd: Dsd) -> int | None:
    from kubernetes import client

    autoscaling: Any = client.AutoscalingV2Api(dsd.api_client)
    with contextlib.suppress(Exception):
        return int(
            autoscaling.read_namespaced_horizontal_pod_autoscaler(dsd.name, dsd.namespace).spec.min_replicas
        )
    return None


def test_the_floor_rises_before_a_forecast_peak_and_forecast_only_changes_nothing_but_status(
    local_cluster: LocalCluster, operator: OperatorProcess, namespace: str, api_client: Any
) -> None:
    now = time.time()
    peak_at = now + PEAK_IN_SECONDS
    local_cluster.backfill(history_lines(namespace, ["scaled", "watched"], now))
    wait_for_history(
        local_cluster.prometheus_query,
        f'vllm:request_success_total{{namespace="{namespace}",model_name="scaled"}} offset 7d',
    )
    scaled, watched = Dsd(api_client, namespace, "scaled"), Dsd(api_client, namespace, "watched")
    scaled.create(spec("scaled", "ForecastAndScale", local_cluster.prometheus_url))
    watched.create(spec("watched", "ForecastOnly", local_cluster.prometheus_url))

    # Night now (one replica's worth); the peak in ten minutes needs four at the learned 1 req/s each.
    # The floor may rise in steps while the ramp enters the horizon (a look a minute); four it must be
    # well before the peak.
    status = wait_until(
        lambda: (s := predictive_status(scaled)).get("floorReplicas") == 4 and s,
        LOOK_TIMEOUT + 120,
        "the operator to raise the floor of the ForecastAndScale deployment to 4",
    )
    assert time.time() < peak_at - 120, "the floor must be up minutes before the peak"
    assert status["wantedReplicas"] == 4
    assert status["capacitySource"] == "History"
    assert float(status["requestsPerSecondPerReplica"]) == pytest.approx(PER_REPLICA, rel=0.05)
    assert 3 < float(status["forecastRequestsPerSecond"]) <= PATTERN.peak * 1.05
    assert status["method"] == "SeasonalNaiveWeekly"
    assert status["forecastErrorPercent"] < 30
    assert status["lastFitTime"]
    condition = scaled.condition("PredictiveScaling")
    assert condition is not None
    assert condition["status"] == "True"
    assert condition["reason"] == "FloorApplied"
    # The reconcile's status writes and the pre-scaler's keep each other's fields (two field managers):
    # once the reconcile has written its conditions, the pre-scaler's are still there.
    wait_until(lambda: scaled.condition("Ready"), 30, "the reconcile's Ready condition")
    assert scaled.condition("PredictiveScaling") is not None
    assert predictive_status(scaled).get("floorReplicas") == 4

    wait_until(lambda: hpa_minimum(scaled) == 4, 30, "the HPA's minReplicas to follow the floor")
    wait_until(lambda: len(scaled.ready_pods()) == 4, 90, "four Ready simulator replicas")
    assert time.time() < peak_at, "the extra replicas must be Ready before the peak starts"
    # Every pod that became Ready was a child event, and so a reconcile and its status write: the
    # pre-scaler's fields outlived them all.
    assert scaled.condition("PredictiveScaling") is not None
    assert predictive_status(scaled).get("floorReplicas") == 4
    assert scaled.condition("Ready") is not None

    # ForecastOnly: the same forecast and what it would need, in status only.
    watched_status = wait_until(
        lambda: (s := predictive_status(watched)).get("wantedReplicas") == 4 and s,
        LOOK_TIMEOUT,
        "the ForecastOnly deployment's forecast",
    )
    assert watched_status["wantedReplicas"] == 4
    assert "floorReplicas" not in watched_status
    watched_condition = watched.condition("PredictiveScaling")
    assert watched_condition is not None
    assert watched_condition["reason"] == "ForecastOnly"
    assert hpa_minimum(watched) == 1
    assert watched.get()["spec"]["replicas"] == 1
    assert len(watched.pods()) == 1


@contextlib.contextmanager
def own_prometheus(directory: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A Prometheus of this test's own, on loopback, scraping nothing: it serves the backfilled history."""
    binary = ensure_tools(["prometheus"])["prometheus"].path
    (directory / "prometheus.yml").write_text("global: {}\n")
    port = free_port()
    process = subprocess.Popen(
        [
            str(binary),
            f"--config.file={directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=15d",
            "--log.level=warn",
        ],
        stdout=(directory / "prometheus.log").open("ab"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:  # noqa: S310 (loopback)
            return int(response.status) == 200

    try:
        wait_until(lambda: _quietly(ready), 60, "the test's own Prometheus")
        yield url, process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


def _quietly(check: Any) -> bool:
    try:
        return bool(check())
    except OSError:
        return False


def test_with_prometheus_stopped_the_floor_is_removed_and_the_condition_says_why(
    local_cluster: LocalCluster, operator: OperatorProcess, namespace: str, api_client: Any, tmp_path: Path
) -> None:
    now = time.time()
    # Blocks written before Prometheus starts are loaded at its start.
    backfill(
        ensure_tools(["promtool"])["promtool"].path,
        tmp_path / "data",
        history_lines(namespace, ["lost"], now),
    )
    with own_prometheus(tmp_path) as (url, process):
        dsd = Dsd(api_client, namespace, "lost")
        dsd.create(spec("lost", "ForecastAndScale", url))
        wait_until(lambda: predictive_status(dsd).get("floorReplicas") == 4, LOOK_TIMEOUT, "the floor")
        wait_until(lambda: hpa_minimum(dsd) == 4, 30, "the HPA's minReplicas to follow the floor")
        process.terminate()
        process.wait(timeout=30)
        wait_until(
            lambda: "floorReplicas" not in predictive_status(dsd), LOOK_TIMEOUT, "the floor to be removed"
        )
    condition = dsd.condition("PredictiveScaling")
    assert condition is not None
    assert condition["status"] == "False"
    assert condition["reason"] == "PrometheusUnreachable"
    assert url in condition["message"]
    assert "no floor: the autoscaler scales on its reactive metrics only" in condition["message"]
    wait_until(lambda: hpa_minimum(dsd) == 1, 30, "the HPA's minReplicas back to the spec's")
    # The last fit is still told (it says how old the forecast the floor came from is).
    assert predictive_status(dsd)["lastFitTime"]
