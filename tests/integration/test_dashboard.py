"""The Grafana dashboard the chart ships, against the live local Prometheus: while traffic runs through
a vLLM and an SGLang deployment of the simulator, every panel's query and every template variable
returns series. A panel whose metric the product does not export, or whose labels do not match what
Prometheus scrapes, fails here."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from localcluster.cluster import LocalCluster
from localcluster.monitoring import prometheus_api
from localcluster.operator import OperatorProcess, install_crd_and_priority_classes
from localcluster.waiting import wait_until
from operator_fixtures import Dsd

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = REPO_ROOT / "charts" / "deepseek-operator" / "dashboards" / "deepseek-operator.json"
TRAFFIC_CLIENT = REPO_ROOT / "e2e" / "tests" / "traffic_client.py"
LOAD_SECONDS = 90


def _spec(engine: str) -> dict[str, Any]:
    return {
        "model": {"name": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "servedModelName": f"r1-{engine}"},
        "image": {"repository": "deepseek-simulator", "tag": "dev"},
        "engine": {"name": engine, "maxBatchSize": 2},
        "resources": {"gpusPerReplica": 1, "cpu": "100m", "memory": "256Mi", "sharedMemorySize": "64Mi"},
        "regions": [{"name": "us-east", "role": "Active"}, {"name": "eu-west", "role": "Standby"}],
        "replicas": 1,
        "failover": {"standbyWarmReplicas": 1},
        "monitoring": {"serviceMonitor": {"enabled": True, "interval": "1s"}},
        "rollout": {"drainSeconds": 2},
    }


def _panel_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets") or []
        if target.get("expr")
    ]


def _variables() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (variable["name"], variable["definition"])
        for variable in dashboard["templating"]["list"]
        if variable["type"] == "query"
    ]


def _substitute(expr: str, namespace: str, names: list[str]) -> str:
    """Grafana's multi-value regex variables, as Grafana expands them for the selection (the names are
    DNS labels: nothing in them needs escaping in a regex)."""
    return expr.replace("$namespace", namespace).replace("$deployment", "|".join(names))


@pytest.fixture
def operator(local_cluster: LocalCluster, tmp_path: Path) -> Iterator[OperatorProcess]:
    install_crd_and_priority_classes(local_cluster.api_client())
    with OperatorProcess(
        local_cluster.kubeconfig, tmp_path / "operator.log", monitored_by=local_cluster
    ) as process:
        yield process


@pytest.fixture
def traffic(
    local_cluster: LocalCluster, api_client: Any, namespace: str, operator: OperatorProcess
) -> Iterator[list[str]]:
    """Two deployments, vLLM and SGLang, each under a bounded load through its front Service."""
    names = []
    loads = []
    for engine in ("vllm", "sglang"):
        dsd = Dsd(api_client, namespace, f"dash-{engine}")
        dsd.create(_spec(engine))
        names.append(dsd.name)
    try:
        for name in names:
            Dsd(api_client, namespace, name).wait_ready(90)
            url = local_cluster.service_url(namespace, name)
            model = f"r1-{name.removeprefix('dash-')}"
            command = [sys.executable, str(TRAFFIC_CLIENT), "load", url, model, "--workers", "4"]
            command += ["--seconds", str(LOAD_SECONDS), "--max-tokens", "20"]
            loads.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        yield names
    finally:
        for load in loads:
            load.kill()
            load.wait(timeout=10)


def test_every_panel_and_variable_returns_series_while_traffic_runs(
    local_cluster: LocalCluster, namespace: str, traffic: list[str]
) -> None:
    url = local_cluster.prometheus_url
    queries = _panel_queries()
    assert len(queries) >= 8

    def empty_panels() -> list[str]:
        empty = []
        for title, expr in queries:
            result = prometheus_api(url, "/api/v1/query", {"query": _substitute(expr, namespace, traffic)})
            if not result["result"]:
                empty.append(f"{title}: {expr}")
        return empty

    empty: list[str] = []

    def all_answer() -> bool:
        empty[:] = empty_panels()
        return not empty

    try:
        wait_until(all_answer, 75, "every dashboard panel to return series", interval=2)
    except AssertionError as error:
        raise AssertionError(f"panels without series: {empty}") from error

    for name, definition in _variables():
        match = re.fullmatch(r"label_values\((.*), (\w+)\)", definition)
        assert match, definition
        selector, label = match.groups()
        values = prometheus_api(
            url,
            f"/api/v1/label/{urllib.parse.quote(label)}/values",
            {"match[]": _substitute(selector, namespace, traffic)},
        )
        assert namespace in values or set(traffic) <= set(values), f"variable {name}: {values}"
