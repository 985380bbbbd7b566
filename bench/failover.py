"""How fast the failover controller moves the traffic, what clients see, and what probing costs.

Switch times, on the local cluster with its live data plane (a simulator process behind each pod, the
Service proxy, Prometheus scraping every second), the operator as a real process, and a DeepSeekDeployment
with probeIntervalSeconds 1 and failureThreshold 3 (us-east Active with 2 replicas, eu-west Standby with 1
warm). A client sends bounded loopback traffic through the front Service (4 workers, at most 20 requests
a second, a new connection per request). Per fault kind, over several runs:
- outage: `fail-region us-east` (its nodes NotReady; the pod runtime kills their processes);
- engine: the simulators of us-east answer /health 503 and every request 503 (a dead engine);
- errors: they answer every request 503 (/health still 200);
- latency: every request takes 2 s more (p99 latency limit 1000 ms).
Figures: fault -> decision (status.failover.lastFailover.decidedAt), fault -> front Service on eu-west
(its selector, polled every 20 ms), client gap (last success from us-east -> first from eu-west), failed
requests during the switch. Min, median and max over the runs, next to the goal (failureThreshold x
probeIntervalSeconds + 1 s) and the peers' figures.

Cost: the controller's loop in-process against N synthetic deployments (3 pods each, 2 regions, every
signal on, interval 1 s), Prometheus and the pods replaced by counting stubs: requests per second to
each, against what one query per deployment and signal and one probe per pod would cost.

    PYTHONPATH=e2e:operator:images/simulator .venv/bin/python bench/failover.py [--runs 3] [--kinds outage,engine,errors,latency]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deepseek_operator.failover.controller import HEARTBEAT_SECONDS
from kubernetes import client
from localcluster import faults
from localcluster.cluster import LocalCluster
from localcluster.operator import CRD_FILE, OperatorProcess, install_crd_and_priority_classes
from localcluster.traffic import Traffic, switch_seen
from localcluster.waiting import wait_until

GROUP, VERSION, PLURAL = "serving.deepseek-operator.io", "v1alpha1", "deepseekdeployments"
NAME = "bench"
MODEL = "deepseek-r1-7b"
REGIONS = ("us-east", "eu-west")
INTERVAL_SECONDS = 1
FAILURE_THRESHOLD = 3
GOAL_SECONDS = FAILURE_THRESHOLD * INTERVAL_SECONDS + 1
KINDS = ("outage", "engine", "errors", "latency")
SIMULATOR_FAULTS: dict[str, dict[str, Any]] = {
    "engine": {"unhealthy": True, "error_rate": 1.0, "error_status": 503},
    "errors": {"error_rate": 1.0, "error_status": 503},
    "latency": {"extra_latency_ms": 2000},
}


def spec(prometheus_url: str) -> dict[str, Any]:
    return {
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
        "regions": [{"name": REGIONS[0], "role": "Active"}, {"name": REGIONS[1], "role": "Standby"}],
        "replicas": 2,
        "monitoring": {
            "prometheusUrl": prometheus_url,
            "serviceMonitor": {"enabled": True, "interval": "1s"},
        },
        "failover": {
            "probeIntervalSeconds": INTERVAL_SECONDS,
            "failureThreshold": FAILURE_THRESHOLD,
            "successThreshold": 2,
            "signals": ["NodesNotReady", "PodsNotReady", "EngineUnhealthy", "ErrorRate", "Latency"],
            "metricsWindow": "5s",
            "errorRatePercent": 20,
            "p99LatencyMilliseconds": 1000,
            "standbyWarmReplicas": 1,
            "minActiveSeconds": 600,
        },
        "rollout": {"drainSeconds": 2},
    }


@dataclass
class Run:
    kind: str
    decision: float  # seconds from the fault
    service: float
    gap: float | None
    failed: int
    answered: int


@dataclass
class Bench:
    cluster: LocalCluster
    api: Any
    runs: list[Run] = field(default_factory=list)

    @property
    def custom(self) -> Any:
        return client.CustomObjectsApi(self.api)

    @property
    def core(self) -> Any:
        return client.CoreV1Api(self.api)

    def get(self, namespace: str) -> dict[str, Any]:
        found: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, NAME
        )
        return found

    def failover(self, namespace: str) -> dict[str, Any]:
        return dict((self.get(namespace).get("status") or {}).get("failover") or {})

    def condition(self, namespace: str, kind: str) -> str | None:
        for item in (self.get(namespace).get("status") or {}).get("conditions") or []:
            if item["type"] == kind:
                return str(item["status"])
        return None

    def selector_region(self, namespace: str) -> str | None:
        service = self.core.read_namespaced_service(NAME, namespace)
        return (service.spec.selector or {}).get(f"{GROUP}/region")

    def one(self, kind: str, index: int) -> Run:
        namespace = f"bench-{kind}-{index}"
        self.core.create_namespace({"metadata": {"name": namespace}})
        wait_until(
            lambda: any(
                sa.metadata.name == "default"
                for sa in self.core.list_namespaced_service_account(namespace).items
            ),
            30,
            "the default ServiceAccount",
        )
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "DeepSeekDeployment", "metadata": {"name": NAME}}
        self.custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, {**body, "spec": spec(self.cluster.prometheus_url)}
        )
        wait_until(
            lambda: self.failover(namespace).get("phase") == "Healthy", 90, f"{namespace}: failover Healthy"
        )
        url = self.cluster.service_url(namespace, NAME)
        traffic = Traffic(url, MODEL).start()
        try:
            # Metric signals evaluated (traffic scraped), a healthy standby, a steady stream of answers.
            wait_until(
                lambda: self.condition(namespace, "SignalsAvailable") == "True", 60, "signals evaluated"
            )
            wait_until(lambda: self.condition(namespace, "FailoverReady") == "True", 60, "a healthy standby")
            time.sleep(2)
            fault_wall, fault_at = datetime.now(UTC), time.monotonic()
            if kind == "outage":
                faults.fail_nodes(self.core, faults.region_selector(REGIONS[0]))
            else:
                selector = f"{GROUP}/deployment={NAME},{GROUP}/region={REGIONS[0]}"
                faults.set_simulator_faults(self.core, namespace, selector, SIMULATOR_FAULTS[kind])
            wait_until(
                lambda: self.selector_region(namespace) == REGIONS[1],
                60,
                "the front Service on eu-west",
                interval=0.02,
            )
            service = time.monotonic() - fault_at
            time.sleep(3)
        finally:
            answers = traffic.stop()
            if kind == "outage":
                self.cluster.restore_fleet()
        last = self.failover(namespace).get("lastFailover") or {}
        decided = datetime.fromisoformat(str(last["decidedAt"]).replace("Z", "+00:00"))
        seen = switch_seen(answers, NAME, REGIONS, REGIONS[0], REGIONS[1], fault_at)
        self.core.delete_namespace(namespace)
        return Run(
            kind, (decided - fault_wall).total_seconds(), service, seen.gap, seen.failed, seen.answered
        )


def spread(values: Sequence[float]) -> str:
    if not values:
        return "n/a"
    return f"min {min(values):5.2f}  median {statistics.median(values):5.2f}  max {max(values):5.2f}"


def report(runs: Sequence[Run], kinds: Sequence[str]) -> list[str]:
    lines = [
        f"switch times, {len([r for r in runs if r.kind == kinds[0]])} runs per fault kind "
        f"(probeIntervalSeconds {INTERVAL_SECONDS}, failureThreshold {FAILURE_THRESHOLD}); seconds:",
    ]
    for kind in kinds:
        mine = [r for r in runs if r.kind == kind]
        if not mine:
            continue
        gaps = [r.gap for r in mine if r.gap is not None]
        lines += [
            f"  {kind}:",
            f"    fault -> decision:                 {spread([r.decision for r in mine])}",
            f"    fault -> front Service on eu-west: {spread([r.service for r in mine])}   goal <= {GOAL_SECONDS} s",
            f"    client gap (last us-east OK -> first eu-west OK): {spread(gaps)}",
            f"    failed requests during the switch: {spread([float(r.failed) for r in mine])}"
            f" (of {spread([float(r.answered) for r in mine])} sent)",
        ]
    lines.append(
        "  peers: seed articles claim '< 5 s after 3 failed checks'; k8gb reconciles every 30 s "
        "(RECONCILE_REQUEUE_SECONDS) plus the DNS TTL (30 s by default)"
    )
    return lines


# ---------------------------------------------------------------------------------------------- cost


class _CountingResponse:
    status = 200

    async def __aenter__(self) -> _CountingResponse:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None


class CountingSession:
    """Stands in for the pods: counts GET /health and answers 200."""

    def __init__(self) -> None:
        self.requests = 0
        self.closed = False

    def get(self, url: str, **_: Any) -> _CountingResponse:
        self.requests += 1
        return _CountingResponse()

    async def close(self) -> None:
        self.closed = True


class CountingPrometheus:
    """Stands in for Prometheus: counts queries and answers every region with a passing value."""

    def __init__(self, names: Sequence[tuple[str, str]]) -> None:
        self.requests = 0
        self.names = names

    def query(self, url: str, promql: str, timeout: float) -> Any:
        from deepseek_operator.failover.observe import QueryResult

        self.requests += 1
        return QueryResult(
            samples={(ns, name, region): 0.0 for ns, name in self.names for region in REGIONS}, series=1
        )


class FakeKube:
    """Stands in for the API server: counts status writes and applies them to the object, as the watch
    would show them to kopf's live view."""

    def __init__(self, bodies: dict[tuple[str, str], dict[str, Any]]) -> None:
        self.writes = 0
        self.bodies = bodies

    def apply_failover_status(
        self, namespace: str, name: str, failover: Any, conditions: Any, resource_version: str
    ) -> dict[str, Any]:
        self.writes += 1
        body = self.bodies[(namespace, name)]
        others = [
            c
            for c in body["status"].get("conditions", [])
            if c["type"] not in {c["type"] for c in conditions}
        ]
        body["status"] = {**body["status"], "failover": failover, "conditions": [*others, *conditions]}
        return body

    def post_event(self, *_: Any) -> None:
        return None


@dataclass(frozen=True)
class Cost:
    deployments: int
    pods: int
    metric_signals: int
    queries_per_second: float
    probes_per_second: float
    writes_per_second: float
    check_seconds: float  # one check of every deployment (median)


def cost_spec() -> dict[str, Any]:
    """Every signal on."""
    checked = spec("http://prometheus.invalid:9090")
    checked["failover"]["signals"] = [
        "NodesNotReady",
        "PodsNotReady",
        "EngineUnhealthy",
        "ErrorRate",
        "Latency",
        "TimeToFirstToken",
    ]
    return checked


def cost(deployments: int, seconds: float) -> Cost:
    """Requests per second to Prometheus and to pods, and status writes, with `deployments` healthy
    deployments checked every second (after a settling period: their first writes)."""
    from deepseek_operator.api import CapacityPool
    from deepseek_operator.failover.controller import FailoverController
    from deepseek_operator.indexes import NodeSummary, PodSummary

    names = [("bench", f"d{index}") for index in range(deployments)]
    pods: dict[tuple[str, str], list[PodSummary]] = {
        (namespace, name): [
            PodSummary(
                namespace=namespace,
                name=f"{name}-{region}-{i}",
                deployment=name,
                region=region,
                pool=CapacityPool.ON_DEMAND,
                node=f"node-{region}",
                phase="Running",
                ready=True,
                terminating=False,
                pod_ip="10.0.0.1",
                annotations={"probe": "127.0.0.1"},
                unschedulable_message=None,
                disruption_reason=None,
                created_at=None,
            )
            for region, count in ((REGIONS[0], 2), (REGIONS[1], 1))
            for i in range(count)
        ]
        for namespace, name in names
    }
    nodes = {
        f"node-{region}": [
            NodeSummary(f"node-{region}", {"topology.kubernetes.io/region": region}, (), True, False, False)
        ]
        for region in REGIONS
    }
    bodies = {
        (namespace, name): {
            "metadata": {"namespace": namespace, "name": name, "resourceVersion": "1", "generation": 1},
            "spec": cost_spec(),
            "status": {},
        }
        for namespace, name in names
    }
    kube = FakeKube(bodies)
    controller = FailoverController(kube=lambda: kube, reconcile=lambda *_: None, probe_annotation="probe")  # type: ignore[arg-type, return-value]
    prometheus = CountingPrometheus(names)
    session = CountingSession()
    controller._prometheus = prometheus  # type: ignore[assignment]
    controller._session = session  # type: ignore[assignment]
    checks: list[float] = []
    check = controller.check

    async def timed_check(due: Any) -> None:
        started = time.monotonic()
        await check(due)
        checks.append(time.monotonic() - started)

    controller.check = timed_check  # type: ignore[method-assign]

    async def run() -> None:
        for body in bodies.values():
            controller.register(body, _Logger(), pods, nodes)
        await asyncio.sleep(4)  # settle: the first checks write every deployment's status once
        kube.writes = prometheus.requests = session.requests = 0
        checks.clear()
        await asyncio.sleep(seconds)
        await controller.close()

    asyncio.run(run())
    return Cost(
        deployments=deployments,
        pods=sum(len(found) for found in pods.values()),
        metric_signals=3,
        queries_per_second=prometheus.requests / seconds,
        probes_per_second=session.requests / seconds,
        writes_per_second=kube.writes / seconds,
        check_seconds=statistics.median(checks) if checks else math.nan,
    )


class _Logger:
    def info(self, *_: Any) -> None: ...
    def warning(self, *_: Any) -> None: ...
    def error(self, *_: Any, **__: Any) -> None: ...


def cost_report(figures: Sequence[Cost], seconds: float) -> list[str]:
    lines = [
        f"probing cost: healthy deployments checked every 1 s with every signal on, measured over {seconds:.0f} s "
        "of the controller's loop (Prometheus and the pods replaced by counters):"
    ]
    for figure in sorted(figures, key=lambda f: f.deployments):
        lines.append(
            f"  {figure.deployments:4d} deployments ({figure.pods} pods): "
            f"{figure.queries_per_second:6.1f} PromQL queries/s (per deployment and signal it would be "
            f"{figure.deployments * figure.metric_signals}/s), {figure.probes_per_second:6.1f} engine probes/s "
            f"(every pod every second would be {figure.pods}/s), {figure.writes_per_second:5.1f} status writes/s "
            f"(changes; plus lastProbeTime every {HEARTBEAT_SECONDS:.0f} s: "
            f"{figure.deployments / HEARTBEAT_SECONDS:.1f}/s); one check of all of them takes "
            f"{1000 * figure.check_seconds:.0f} ms of the operator's event loop"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--cost-seconds", type=float, default=10.0)
    parser.add_argument("--skip-switch", action="store_true", help="only the cost figures")
    args = parser.parse_args()
    kinds = [kind for kind in args.kinds.split(",") if kind]
    figures = [cost(n, args.cost_seconds) for n in (50, 500)]
    runs: list[Run] = []
    if not args.skip_switch:
        with tempfile.TemporaryDirectory() as workdir:
            cluster = LocalCluster(workdir=Path(workdir) / "cluster", crds=[CRD_FILE])
            with cluster:
                api = cluster.api_client()
                install_crd_and_priority_classes(api)
                with OperatorProcess(cluster.kubeconfig, Path(workdir) / "operator.log"):
                    bench = Bench(cluster, api)
                    for index in range(args.runs):
                        for kind in kinds:
                            run = bench.one(kind, index)
                            print(f"[bench] {kind} run {index + 1}: {run}", flush=True)
                            runs.append(run)
    for line in (
        [*report(runs, kinds), *cost_report(figures, args.cost_seconds)]
        if runs
        else cost_report(figures, args.cost_seconds)
    ):
        print(line)


if __name__ == "__main__":
    main()
