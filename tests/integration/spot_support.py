"""Helpers of the spot controller's tests on the local cluster (issue 11)."""

from __future__ import annotations

import copy
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kubernetes import client
from localcluster import faults
from localcluster.addresses import require_loopback
from localcluster.cluster import LocalCluster
from localcluster.fleet import FLEET_LABEL
from localcluster.waiting import wait_until
from operator_fixtures import DEPLOYMENT_LABEL, POOL_LABEL, REGION_LABEL, Dsd

# Short timings for tests (production defaults: 300 s, 600 s, 120 s).
FAST_FALLBACK = {"pendingTimeoutSeconds": 10, "quietPeriodSeconds": 8, "stepSeconds": 4}
POD_DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"


def spot_spec(
    replicas: int = 3,
    on_demand_base: int = 1,
    fallback: dict[str, Any] | None = None,
    region: str = "us-east",
    provider: str = "karpenter",
    simulator: bool = False,
) -> dict[str, Any]:
    """One region of H100s; `onDemandBase` on-demand replicas, every other replica on spot."""
    spec: dict[str, Any] = {
        "model": {"name": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "servedModelName": "r1"},
        "resources": {"gpusPerReplica": 1, "gpuProducts": ["NVIDIA-H100-80GB-HBM3"]},
        "regions": [{"name": region, "role": "Active"}],
        "replicas": replicas,
        "spot": {
            "enabled": True,
            "onDemandBase": on_demand_base,
            "spotPercentage": 100,
            "provider": provider,
            "fallback": {**FAST_FALLBACK, **(fallback or {})},
        },
        "failover": {"enabled": False},
    }
    if simulator:
        # A real simulator process behind each pod (the local cluster's data plane), small requests.
        spec["image"] = {"repository": "deepseek-simulator", "tag": "e2e", "pullPolicy": "Never"}
        spec["resources"].update({"cpu": "100m", "memory": "256Mi", "sharedMemorySize": "64Mi"})
        spec["engine"] = {"maxBatchSize": 8}
        spec["rollout"] = {"drainSeconds": 5}
    return copy.deepcopy(spec)


class SpotDsd(Dsd):
    """A DeepSeekDeployment with spot, and what the spot tests look at."""

    @property
    def apps_api(self) -> Any:
        return client.AppsV1Api(self.api_client)

    def spot_status(self) -> dict[str, Any]:
        return dict((self.get().get("status") or {}).get("spot") or {})

    def spot_region(self, region: str = "us-east") -> dict[str, Any]:
        for item in self.spot_status().get("regions") or []:
            if item["name"] == region:
                return dict(item)
        return {}

    def replicas(self, pool: str, region: str = "us-east") -> int:
        deployment = self.apps_api.read_namespaced_deployment(f"{self.name}-{region}-{pool}", self.namespace)
        return int(deployment.spec.replicas)

    def pool_pods(
        self, pool: str, region: str = "us-east", ready: bool | None = None, terminating: bool = False
    ) -> list[Any]:
        """The pool's pods (with `terminating`, those being deleted too)."""
        selector = f"{DEPLOYMENT_LABEL}={self.name},{REGION_LABEL}={region},{POOL_LABEL}={pool}"
        pods = [
            pod
            for pod in self.core.list_namespaced_pod(self.namespace, label_selector=selector).items
            if terminating or pod.metadata.deletion_timestamp is None
        ]
        if ready is None:
            return pods
        return [pod for pod in pods if is_ready(pod) == ready]

    def nodes_of(self, pool: str, region: str = "us-east") -> list[str]:
        return sorted({pod.spec.node_name for pod in self.pool_pods(pool, region) if pod.spec.node_name})

    def wait_pool_ready(
        self, pool: str, count: int, region: str = "us-east", timeout: float = 60
    ) -> list[Any]:
        return wait_until(
            lambda: pods if len(pods := self.pool_pods(pool, region, ready=True)) == count else None,
            timeout,
            f"{count} ready {pool} pods of {self.name} in {region}",
        )

    def events(self, reason: str) -> list[Any]:
        return [
            event
            for event in self.core.list_namespaced_event(self.namespace).items
            if event.involved_object.kind == "DeepSeekDeployment"
            and event.involved_object.name == self.name
            and event.reason == reason
        ]


def is_ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in status.get("conditions") or [] if c["type"] == kind)


@contextmanager
def fleet_restored(cluster: LocalCluster) -> Iterator[Any]:
    """The fleet as it was afterwards, whatever a test did to it: removed nodes back, every interruption
    taint and cordon lifted."""
    core: Any = client.CoreV1Api(cluster.api_client())
    try:
        yield core
    finally:
        # Uncordoned first: restore_fleet waits for nodes without node.kubernetes.io/ taints, and a cordon
        # is one (node.kubernetes.io/unschedulable).
        faults.clear_interruptions(core, FLEET_LABEL)
        cluster.restore_fleet()


def chat(url: str, model: str, count: int) -> list[int]:
    """`count` chat completions one after another through a Service URL (loopback): the HTTP statuses, 0 for
    a request that got no answer."""
    require_loopback(urllib.parse.urlsplit(url).hostname or "")
    statuses = []
    body = json.dumps(
        {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    ).encode()
    for _ in range(count):
        request = urllib.request.Request(  # noqa: S310 - a loopback Service address of the local cluster
            f"{url}/v1/chat/completions",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                statuses.append(int(response.status))
        except urllib.error.HTTPError as error:
            statuses.append(int(error.code))
        except (urllib.error.URLError, OSError):
            statuses.append(0)
    return statuses


class Timeline:
    """Samples of a value over time, for assertions on when it changed."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, Any]] = []

    def record(self, value: Any) -> None:
        if not self.samples or self.samples[-1][1] != value:
            self.samples.append((time.monotonic(), value))

    def changes(self) -> list[tuple[float, Any]]:
        return list(self.samples)
