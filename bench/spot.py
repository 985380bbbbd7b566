"""The spot controller, measured on the local cluster with the live data plane (a simulator process behind
each pod, traffic through the front Service on loopback):

1. shortage: spot pods Pending for capacity (their nodes cordoned, the pods recreated) until an
   on-demand replica stands in Ready for each: goal <= pendingTimeoutSeconds + 5 s;
2. interruption: a provider's notice (Karpenter's taint, its drain at once, the nodes gone later) on
   every spot node of the region, until the on-demand replacements are Ready: goal <= 5 s + the pods'
   start time; and the requests lost meanwhile, with load on the front Service;
3. a scripted day (compressed): shortages, interruptions, recovery; the ready replicas sampled twice a
   second never below the on-demand base; the share of replica-seconds on spot against the spec's.

Run: `PYTHONPATH=e2e:operator:images/simulator .venv/bin/python bench/spot.py` (or `make bench`). About
5 minutes on 2 cores. Every figure is printed with its goal; the exit status is 1 if one is missed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client
from localcluster import faults
from localcluster.addresses import require_loopback
from localcluster.cluster import LocalCluster
from localcluster.fleet import FLEET_LABEL
from localcluster.operator import CRD_FILE, OperatorProcess, install_crd_and_priority_classes

GROUP, VERSION, PLURAL = "serving.deepseek-operator.io", "v1alpha1", "deepseekdeployments"
NAMESPACE = "bench-spot"
REGION = "us-east"
SPOT_POOL = "h100-spot"
PENDING_TIMEOUT = 10  # the API's lower bound
MODEL = "r1"


def spec(replicas: int, on_demand_base: int, fallback: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": {"name": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "servedModelName": MODEL},
        "image": {"repository": "deepseek-simulator", "tag": "e2e", "pullPolicy": "Never"},
        "engine": {"maxBatchSize": 16},
        "resources": {
            "gpusPerReplica": 1,
            "gpuProducts": ["NVIDIA-H100-80GB-HBM3"],
            "cpu": "100m",
            "memory": "256Mi",
            "sharedMemorySize": "64Mi",
        },
        "regions": [{"name": REGION, "role": "Active"}],
        "replicas": replicas,
        "spot": {
            "enabled": True,
            "onDemandBase": on_demand_base,
            "spotPercentage": 100,
            "fallback": {"pendingTimeoutSeconds": PENDING_TIMEOUT, **fallback},
        },
        "failover": {"enabled": False},
        "rollout": {"drainSeconds": 5},
    }


@dataclass
class Cluster:
    local: LocalCluster
    core: Any
    apps: Any
    custom: Any

    def create(self, name: str, body_spec: dict[str, Any]) -> None:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "DeepSeekDeployment", "metadata": {"name": name}}
        self.custom.create_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL, {**body, "spec": body_spec}
        )

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
        wait(lambda: not self.pods(name), 90, f"{name}'s pods gone")

    def pods(self, name: str, pool: str | None = None) -> list[Any]:
        selector = f"{GROUP}/deployment={name}" + (f",{GROUP}/pool={pool}" if pool else "")
        return [
            pod
            for pod in self.core.list_namespaced_pod(NAMESPACE, label_selector=selector).items
            if pod.metadata.deletion_timestamp is None
        ]

    def alive_nodes(self) -> set[str]:
        return {
            node.metadata.name
            for node in self.core.list_node().items
            if any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
        }

    def serving(self, name: str) -> dict[str, int]:
        """Ready pods per pool, on nodes that are Ready (a gone node's pods stay Ready in the API a while)."""
        alive = self.alive_nodes()
        counts = {"on-demand": 0, "spot": 0}
        for pod in self.pods(name):
            if pod.spec.node_name in alive and ready(pod):
                counts[pod.metadata.labels[f"{GROUP}/pool"]] += 1
        return counts

    def spot_region(self, name: str) -> dict[str, Any]:
        found = self.custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
        return next(iter(((found.get("status") or {}).get("spot") or {}).get("regions") or []), {})

    def restore(self) -> None:
        faults.clear_interruptions(self.core, FLEET_LABEL)
        self.local.restore_fleet()


def ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def wait(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Load:
    """Workers sending chat completions back to back through a Service URL (loopback), counting answers."""

    url: str
    workers: int = 4
    ok: int = 0
    failed: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        require_loopback(urllib.parse.urlsplit(self.url).hostname or "")
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(self.workers)]
        for thread in self.threads:
            thread.start()

    def _run(self) -> None:
        body = json.dumps(
            {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16}
        ).encode()
        while not self.stop.is_set():
            request = urllib.request.Request(  # noqa: S310 - a loopback Service address
                f"{self.url}/v1/chat/completions", data=body, headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                    good = response.status == 200
            except (urllib.error.URLError, OSError):
                good = False
            with self.lock:
                if good:
                    self.ok += 1
                else:
                    self.failed += 1
            if not good:
                time.sleep(0.05)

    def finish(self) -> tuple[int, int]:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=40)
        return self.ok, self.failed


# ------------------------------------------------------------------------------------------ scenarios


def shortage(cluster: Cluster, runs: int) -> list[float]:
    """Seconds from the spot pods' Pending (their creation) to their on-demand stand-ins Ready."""
    name = "shortage"
    cluster.create(
        name, spec(replicas=3, on_demand_base=1, fallback={"quietPeriodSeconds": 5, "stepSeconds": 2})
    )
    wait(lambda: cluster.serving(name) == {"on-demand": 1, "spot": 2}, 60, "shortage: 1 + 2 ready")
    figures = []
    spot = faults.pool_selector(pool=SPOT_POOL, region=REGION)
    for _ in range(runs):
        faults.cordon_nodes(cluster.core, spot)
        for pod in cluster.pods(name, "spot"):
            cluster.core.delete_namespaced_pod(pod.metadata.name, NAMESPACE)
        started = wait(
            lambda: (
                time.monotonic()
                if [p for p in cluster.pods(name, "spot") if p.spec.node_name is None]
                and not cluster.serving(name)["spot"]
                else None
            ),
            30,
            "spot pods Pending",
            interval=0.05,
        )
        wait(
            lambda: cluster.serving(name)["on-demand"] == 3,
            60,
            "the on-demand stand-ins Ready",
            interval=0.05,
        )
        figures.append(time.monotonic() - started)
        faults.uncordon_nodes(cluster.core, spot)
        wait(lambda: cluster.serving(name) == {"on-demand": 1, "spot": 2}, 90, "back on spot")
    cluster.delete(name)
    return figures


@dataclass
class Interruption:
    replacement_seconds: float
    pod_start_seconds: float
    ok: int
    failed: int


def interruption(cluster: Cluster) -> Interruption:
    """Karpenter's interruption of the whole spot pool of the region: taint and drain at once (Karpenter
    drains in parallel with launching a replacement), the nodes gone 30 s later (EC2 gives 120 s)."""
    name = "notice"
    cluster.create(name, spec(replicas=4, on_demand_base=2, fallback={"quietPeriodSeconds": 600}))
    wait(lambda: cluster.serving(name) == {"on-demand": 2, "spot": 2}, 60, "interruption: 2 + 2 ready")
    load = Load(cluster.local.service_url(NAMESPACE, name))
    load.start()
    time.sleep(3)  # traffic flowing before the notice
    nodes = sorted({p.spec.node_name for p in cluster.pods(name, "spot")})
    before = {p.metadata.name for p in cluster.pods(name, "on-demand")}
    done = threading.Event()

    def interrupt() -> None:
        faults.interrupt_nodes(cluster.core, nodes, "karpenter", reclaim_after=30)
        done.set()

    interrupting = threading.Thread(target=interrupt, daemon=True)
    noticed = time.monotonic()
    interrupting.start()
    created: dict[str, float] = {}
    ready_at: dict[str, float] = {}
    while len(ready_at) < 2 and time.monotonic() < noticed + 60:
        for pod in cluster.pods(name, "on-demand"):
            if pod.metadata.name in before:
                continue
            created.setdefault(pod.metadata.name, time.monotonic())
            if ready(pod):
                ready_at.setdefault(pod.metadata.name, time.monotonic())
        time.sleep(0.05)
    replacement = max(ready_at.values()) - noticed
    pod_start = max(ready_at[p] - created[p] for p in ready_at)
    done.wait(60)
    time.sleep(3)
    ok, failed = load.finish()
    cluster.restore()
    cluster.delete(name)
    return Interruption(replacement, pod_start, ok, failed)


@dataclass
class Day:
    seconds: float
    replicas: int
    minimum_ready: int
    minimum_on_demand: int
    below_spec_share: float
    spot_share: float
    spec_spot_share: float
    events: list[str]
    phases: list[str] = field(default_factory=list)


def scripted_day(cluster: Cluster, length: float) -> Day:
    """A compressed day: spot short for a while, back, a node interrupted, back, spot flapping; sampled
    twice a second: ready replicas and the capacity type they run on."""
    name = "day"
    replicas, base = 4, 1
    cluster.create(
        name,
        spec(
            replicas=replicas,
            on_demand_base=base,
            fallback={
                "quietPeriodSeconds": 15,
                "stepSeconds": 5,
                "cooldown": {"interruptions": 3, "windowSeconds": 600, "seconds": 30, "groupSeconds": 5},
            },
        ),
    )
    wait(lambda: cluster.serving(name) == {"on-demand": 1, "spot": 3}, 60, "day: 1 + 3 ready")
    spot = faults.pool_selector(pool=SPOT_POOL, region=REGION)
    zone_a = faults.pool_selector(pool=SPOT_POOL, zone="us-east-1a")
    zone_b = faults.pool_selector(pool=SPOT_POOL, zone="us-east-1b")

    def short() -> None:
        faults.cordon_nodes(cluster.core, spot)
        for pod in cluster.pods(name, "spot"):
            cluster.core.delete_namespaced_pod(pod.metadata.name, NAMESPACE)

    def back() -> None:
        faults.uncordon_nodes(cluster.core, spot)

    def interrupt(selector: str) -> Callable[[], None]:
        def run() -> None:
            nodes = [n.metadata.name for n in cluster.core.list_node(label_selector=selector).items]
            threading.Thread(
                target=faults.interrupt_nodes, args=(cluster.core, nodes, "karpenter", 0.0, 5.0), daemon=True
            ).start()

        return run

    # (at a fraction of the day, what happens)
    script: list[tuple[float, str, Callable[[], None]]] = [
        (0.10, "spot short (cordoned, pods recreated)", short),
        (0.30, "spot back", back),
        (0.45, "us-east-1a spot node interrupted", interrupt(zone_a)),
        (0.55, "nodes back", cluster.restore),
        (0.65, "us-east-1b spot node interrupted", interrupt(zone_b)),
        (0.70, "us-east-1a spot node interrupted (3rd in the window: cooldown)", interrupt(zone_a)),
        (0.80, "nodes back", cluster.restore),
    ]
    samples: list[tuple[float, dict[str, int]]] = []
    phases: list[str] = []
    started = time.monotonic()
    events = []
    while (elapsed := time.monotonic() - started) < length:
        while script and elapsed >= script[0][0] * length:
            _, what, action = script.pop(0)
            action()
            events.append(f"{elapsed:5.0f}s {what}")
        samples.append((time.monotonic(), cluster.serving(name)))
        region = cluster.spot_region(name)
        phase = f"{region.get('phase')} ({region.get('fallbackReplicas', 0)} on-demand in place of spot)"
        if not phases or phases[-1].split(": ", 1)[1] != phase:
            phases.append(f"{elapsed:5.0f}s: {phase}")
        time.sleep(0.5)
    total = {"on-demand": 0.0, "spot": 0.0}
    below = 0.0
    for (at, counts), (after, _) in itertools.pairwise(samples):
        for pool in total:
            total[pool] += counts[pool] * (after - at)
        if sum(counts.values()) < replicas:
            below += after - at
    events.append(f"{length:5.0f}s end")
    cluster.restore()
    cluster.delete(name)
    return Day(
        seconds=length,
        replicas=replicas,
        below_spec_share=below / max(1e-9, samples[-1][0] - samples[0][0]),
        minimum_ready=min(sum(counts.values()) for _, counts in samples),
        minimum_on_demand=min(counts["on-demand"] for _, counts in samples),
        spot_share=total["spot"] / max(1e-9, sum(total.values())),
        spec_spot_share=(replicas - base) / replicas,
        events=events,
        phases=phases,
    )


def report(shortages: list[float], notice: Interruption, day: Day) -> tuple[list[str], bool]:
    """The printed figures, each with its goal; and whether every goal was met."""
    shortage_goal = PENDING_TIMEOUT + 5
    lines = [
        f"shortage: spot pod Pending -> on-demand stand-in Ready, {len(shortages)} runs: median "
        f"{statistics.median(shortages):.1f} s, max {max(shortages):.1f} s "
        f"(goal <= pendingTimeoutSeconds {PENDING_TIMEOUT} + 5 = {shortage_goal} s)",
        f"interruption: notice -> replacement Ready {notice.replacement_seconds:.1f} s, of which pod start "
        f"{notice.pod_start_seconds:.1f} s (goal <= 5 s + pod start = {5 + notice.pod_start_seconds:.1f} s)",
        f"interruption: requests during it {notice.ok + notice.failed}, lost {notice.failed} "
        f"({100 * notice.failed / max(1, notice.ok + notice.failed):.2f} %; goal: as few as the engine's "
        "drain allows)",
        f"scripted day ({day.seconds:.0f} s): ready replicas never below {day.minimum_ready}, on-demand never "
        f"below {day.minimum_on_demand} (goal: never below the on-demand base 1)",
        f"scripted day: fewer than the spec's {day.replicas} replicas ready {100 * day.below_spec_share:.0f} % "
        "of the time (shortages wait pendingTimeoutSeconds; replacements start)",
        f"scripted day: replica-seconds on spot {100 * day.spot_share:.0f} % "
        f"(the spec's target {100 * day.spec_spot_share:.0f} %)",
        "  what the script did:",
        *(f"  {event}" for event in day.events),
        "  what the controller said (status.spot.regions[0]):",
        *(f"  {phase}" for phase in day.phases),
    ]
    met = (
        max(shortages) <= shortage_goal
        and notice.replacement_seconds - notice.pod_start_seconds <= 5
        and day.minimum_on_demand >= 1
    )
    return lines, met


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shortage-runs", type=int, default=3)
    parser.add_argument("--day-seconds", type=float, default=150)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        local = LocalCluster(workdir=Path(workdir) / "cluster", crds=[CRD_FILE], monitoring=False)
        with local:
            api = local.api_client()
            install_crd_and_priority_classes(api)
            core: Any = client.CoreV1Api(api)
            core.create_namespace({"metadata": {"name": NAMESPACE}})
            cluster = Cluster(local, core, client.AppsV1Api(api), client.CustomObjectsApi(api))
            with OperatorProcess(local.kubeconfig, Path(workdir) / "operator.log"):
                shortages = shortage(cluster, args.shortage_runs)
                notice = interruption(cluster)
                day = scripted_day(cluster, args.day_seconds)
    lines, met = report(shortages, notice, day)
    for line in lines:
        print(line)
    print("every goal met" if met else "a goal was missed")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
