"""What the failover tests do on the local cluster: a simulator-backed DeepSeekDeployment checked every
second, faults in its regions, and what its status, Services, events and clients show."""

from __future__ import annotations

import copy
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from kubernetes import client
from localcluster import faults
from localcluster.tools import ensure_tools
from localcluster.waiting import wait_until
from operator_fixtures import GROUP, REGION_LABEL, Dsd

NAME = "fo"
MODEL = "deepseek-r1-7b"
EAST, WEST = "us-east", "eu-west"
REGIONS = (EAST, WEST)
# What a dead engine looks like (vLLM's EngineDeadError): /health 503 and every request 503.
DEAD_ENGINE = {"unhealthy": True, "error_rate": 1.0, "error_status": 503}
ERRORS = {"error_rate": 1.0, "error_status": 503}
SLOW = {"extra_latency_ms": 2000}
HARD_SIGNALS = ["NodesNotReady", "PodsNotReady", "EngineUnhealthy"]
# Startup of the simulator pods, successThreshold checks, then a decision: generous for a loaded machine.
TIMEOUT = 90.0


def failover_spec(prometheus_url: str | None = None, **failover: Any) -> dict[str, Any]:
    """us-east Active (2 replicas), eu-west Standby (1 warm), simulator pods, checked every second."""
    spec: dict[str, Any] = {
        "model": {"name": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "servedModelName": MODEL},
        "image": {"repository": "deepseek-simulator", "tag": "e2e", "pullPolicy": "Never"},
        "engine": {"name": "vllm", "maxBatchSize": 16},
        "resources": {
            "gpusPerReplica": 1,
            "gpuProducts": ["NVIDIA-H100-80GB-HBM3"],
            "cpu": "100m",
            "memory": "256Mi",
            "sharedMemorySize": "64Mi",
        },
        "regions": [{"name": EAST, "role": "Active"}, {"name": WEST, "role": "Standby"}],
        "replicas": 2,
        "rollout": {"drainSeconds": 2},
        "failover": {
            "probeIntervalSeconds": 1,
            "failureThreshold": 3,
            "successThreshold": 3,
            "signals": HARD_SIGNALS,
            "standbyWarmReplicas": 1,
            "minActiveSeconds": 600,
            **failover,
        },
    }
    if prometheus_url is not None:
        spec["monitoring"] = {
            "prometheusUrl": prometheus_url,
            "serviceMonitor": {"enabled": True, "interval": "1s"},
        }
    return spec


def with_failover(spec: Mapping[str, Any], **failover: Any) -> dict[str, Any]:
    changed = copy.deepcopy(dict(spec))
    changed["failover"] = {**changed["failover"], **failover}
    return changed


class FailoverDsd(Dsd):
    """The DeepSeekDeployment of a failover test, and what the test reads and does to it."""

    def __init__(self, api_client: Any, namespace: str, name: str = NAME) -> None:
        super().__init__(api_client, namespace, name)

    def failover(self) -> dict[str, Any]:
        return dict((self.get().get("status") or {}).get("failover") or {})

    def phase(self) -> str | None:
        return self.failover().get("phase")

    def wait_failover(
        self, check: Callable[[dict[str, Any]], bool], what: str, timeout: float = TIMEOUT
    ) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        def current() -> dict[str, Any] | None:
            seen.clear()
            seen.update(self.failover())
            return dict(seen) if check(seen) else None

        try:
            return wait_until(current, timeout, f"{self.name}: {what}", interval=0.1)
        except AssertionError as error:
            raise AssertionError(
                f"{error}\n  status.failover phase {seen.get('phase')}: {seen.get('message')}"
            ) from error

    def wait_phase(self, phase: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        return self.wait_failover(lambda failover: failover.get("phase") == phase, f"phase {phase}", timeout)

    def start(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Create it and wait until both regions are healthy and a standby can take over."""
        self.create(dict(spec))
        self.wait_ready(timeout=TIMEOUT)
        failover = self.wait_phase("Healthy")
        wait_until(lambda: self.condition_status("FailoverReady") == "True", TIMEOUT, "FailoverReady True")
        return failover

    def condition_status(self, kind: str) -> str | None:
        found = self.condition(kind)
        return None if found is None else str(found["status"])

    def front_region(self) -> str | None:
        """The region the front Service selects."""
        service = self.core.read_namespaced_service(self.name, self.namespace)
        return (service.spec.selector or {}).get(REGION_LABEL)

    def region_selector(self, region: str) -> str:
        return f"{GROUP}/deployment={self.name},{REGION_LABEL}={region}"

    def set_faults(self, region: str, simulator_faults: Mapping[str, Any]) -> list[str]:
        changed = faults.set_simulator_faults(
            self.core, self.namespace, self.region_selector(region), simulator_faults
        )
        assert changed, f"no simulator pod in {region} to inject {dict(simulator_faults)} into"
        return changed

    def heal(self, region: str) -> list[str]:
        return self.set_faults(region, faults.HEALTHY_SIMULATOR)

    def events(self, reason: str | None = None) -> list[Any]:
        found = self.core.list_namespaced_event(
            self.namespace,
            field_selector=f"involvedObject.name={self.name},involvedObject.kind=DeepSeekDeployment",
        ).items
        return [event for event in found if reason is None or event.reason == reason]

    def event_count(self, reason: str) -> int:
        return sum(event.count or 1 for event in self.events(reason))


def kubectl_get_dsd(kubeconfig: Path, namespace: str) -> list[dict[str, str]]:
    """`kubectl get dsd` as a user reads it: one dict per row, keyed by column header."""
    kubectl = ensure_tools(["kubectl"])["kubectl"].path
    result = subprocess.run(
        [str(kubectl), f"--kubeconfig={kubeconfig}", "get", "dsd", "-n", namespace],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = [line.split() for line in result.stdout.splitlines() if line.strip()]
    return [dict(zip(lines[0], row, strict=False)) for row in lines[1:]]


def operator_metric(metrics_text: str, name: str, labels: Mapping[str, str]) -> float:
    """The value of one series in the operator's /metrics text (0 when absent)."""
    total = 0.0
    for line in metrics_text.splitlines():
        if not line.startswith(name + "{"):
            continue
        series = line[len(name) + 1 : line.index("}")]
        pairs = dict(item.split("=", 1) for item in series.split(",") if item)
        if all(pairs.get(key) == f'"{value}"' for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def fleet_nodes(core: Any, region: str) -> list[str]:
    return [
        node.metadata.name for node in core.list_node(label_selector=faults.region_selector(region)).items
    ]


def cordon(core: Any, names: list[str], unschedulable: bool) -> None:
    for name in names:
        core.patch_node(name, {"spec": {"unschedulable": unschedulable}})


def api(api_client: Any) -> tuple[Any, Any]:
    return client.CoreV1Api(api_client), client.CustomObjectsApi(api_client)
