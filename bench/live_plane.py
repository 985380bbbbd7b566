"""The live data plane, measured on the local cluster (real Prometheus, prometheus-adapter, HPA, and a
simulator process behind every pod).

1. Autoscale reaction (`--runs`, default 3): a DeepSeekDeployment of 2 replicas (2 sequences each, queue
   target 2 per replica, at most 4 replicas) gets 16 clients at once through its front Service. Timed
   from the load's start: the queue above target visible in Prometheus, the HPA's desired replicas
   raised, the new pods Ready, the queue back under target; next to the floor the configuration sets
   (scrape interval + HPA sync period).
2. What the live plane costs: resident memory and CPU of Prometheus, prometheus-adapter, the config
   sync loop, the data plane and the simulator processes, at rest and under load.
3. How many simulator pods this machine sustains (`--pods`, default 8,16,32,64,128): one deployment scaled
   to N pods at once (a larger fleet, so GPUs are not the limit): time until all are Ready, memory, CPU
   at rest, and a 15 s load of N clients (requests answered, failed).

Run: `PYTHONPATH=e2e:operator:images/simulator .venv/bin/python bench/live_plane.py` (or `make bench`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from deepseek_operator.status import is_ready_for_its_generation
from kubernetes import client
from localcluster.cluster import LocalCluster
from localcluster.fleet import DEFAULT_FLEET
from localcluster.operator import CRD_FILE, OperatorProcess, install_crd_and_priority_classes

GROUP, VERSION, PLURAL = "serving.deepseek-operator.io", "v1alpha1", "deepseekdeployments"
REPO_ROOT = Path(__file__).resolve().parents[1]
TRAFFIC_CLIENT = REPO_ROOT / "e2e" / "tests" / "traffic_client.py"
MODEL = "deepseek-r1-7b"
SCRAPE_INTERVAL_SECONDS = 1
QUEUE_TARGET = 2
POLL_SECONDS = 0.2
PLANE_PROCESSES = ("prometheus", "prometheus-adapter", "promsync", "dataplane")


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def spec(replicas: int, *, autoscaling: bool, regions: int = 2) -> dict[str, Any]:
    document: dict[str, Any] = {
        "model": {"name": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "servedModelName": MODEL},
        "image": {"repository": "deepseek-simulator", "tag": "bench"},
        "engine": {"maxBatchSize": 2},
        "resources": {"gpusPerReplica": 1, "cpu": "100m", "memory": "256Mi", "sharedMemorySize": "64Mi"},
        "regions": [{"name": "us-east", "role": "Active"}, {"name": "eu-west", "role": "Standby"}][:regions],
        "replicas": replicas,
        "failover": {"enabled": regions > 1, "standbyWarmReplicas": 1},
        "monitoring": {"serviceMonitor": {"enabled": True, "interval": f"{SCRAPE_INTERVAL_SECONDS}s"}},
        "rollout": {"drainSeconds": 2},
    }
    if autoscaling:
        document["autoscaling"] = {
            "enabled": True,
            "minReplicas": replicas,
            "maxReplicas": 4,
            "queueDepthTargetPerReplica": QUEUE_TARGET,
            "scaleUp": {"stabilizationWindowSeconds": 0, "maxPodsPerPeriod": 2, "periodSeconds": 15},
        }
    return document


# ------------------------------------------------------------------------------------------ processes


@dataclass(frozen=True)
class Usage:
    rss_mb: float
    cpu_seconds: float


def usage(pid: int) -> Usage:
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return Usage(rss_kb / 1024, (int(fields[11]) + int(fields[12])) / ticks)


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if parent == pid:
                found.append(int(entry.name))
    return found


def plane_pids(cluster: LocalCluster) -> dict[str, list[int]]:
    pids = {name: [cluster.processes[name].pid] for name in PLANE_PROCESSES if name in cluster.processes}
    pids["simulators"] = children_of(cluster.processes["dataplane"].pid)
    return pids


def _usage_or_none(pid: int) -> Usage | None:
    try:
        return usage(pid)
    except (OSError, StopIteration):
        return None  # it ended meanwhile


def measure(pids: dict[str, list[int]], seconds: float) -> dict[str, tuple[float, float]]:
    """name -> (RSS MB summed, CPU % of one core averaged over `seconds`), over the processes alive at
    both ends of the window."""
    before = {pid: _usage_or_none(pid) for group in pids.values() for pid in group}
    time.sleep(seconds)
    result = {}
    for name, group in pids.items():
        pairs = [
            (b, a)
            for pid in group
            if (b := before[pid]) is not None and (a := _usage_or_none(pid)) is not None
        ]
        cpu = sum(a.cpu_seconds - b.cpu_seconds for b, a in pairs)
        result[name] = (sum(a.rss_mb for _, a in pairs), 100 * cpu / seconds)
    return result


def cost_lines(title: str, figures: dict[str, tuple[float, float]], simulators: int) -> list[str]:
    lines = [f"{title}:"]
    for name, (rss, cpu) in figures.items():
        per = f" ({rss / simulators:.0f} MB each)" if name == "simulators" and simulators else ""
        lines.append(f"  {name:<20} RSS {rss:7.0f} MB{per}  CPU {cpu:5.1f}% of a core")
    total_rss = sum(rss for rss, _ in figures.values())
    total_cpu = sum(cpu for _, cpu in figures.values())
    lines.append(
        f"  {'total':<20} RSS {total_rss:7.0f} MB  CPU {total_cpu:5.1f}% (machine: {os.cpu_count()} cores)"
    )
    return lines


# ------------------------------------------------------------------------------------------ cluster


class Bench:
    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        api = cluster.api_client()
        self.custom: Any = client.CustomObjectsApi(api)
        self.core: Any = client.CoreV1Api(api)
        self.autoscaling: Any = client.AutoscalingV2Api(api)
        self._namespaces = 0

    def namespace(self) -> str:
        self._namespaces += 1
        name = f"bench-{self._namespaces}"
        self.core.create_namespace({"metadata": {"name": name}})
        wait(
            lambda: any(
                sa.metadata.name == "default" for sa in self.core.list_namespaced_service_account(name).items
            ),
            30,
        )
        return name

    def create(self, namespace: str, name: str, body: dict[str, Any]) -> None:
        document = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "DeepSeekDeployment",
            "metadata": {"name": name},
            "spec": body,
        }
        self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, document)

    def dsd(self, namespace: str, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name
        )
        return found

    def ready_everywhere(self, namespace: str, name: str) -> bool:
        current = self.dsd(namespace, name)
        regions = (current.get("status") or {}).get("regions") or []
        return is_ready_for_its_generation(current) and all(
            r.get("readyReplicas") == r.get("desiredReplicas") for r in regions
        )

    def queue_per_pod(self, namespace: str) -> float | None:
        selector = f'namespace="{namespace}",serving_deepseek_operator_io_region="us-east"'
        result = self.cluster.prometheus_query(f"avg(vllm:num_requests_waiting{{{selector}}})")
        return float(result[0]["value"][1]) if result else None

    def hpa(self, namespace: str, name: str) -> Any:
        return self.autoscaling.read_namespaced_horizontal_pod_autoscaler(name, namespace).status

    def delete_namespace(self, namespace: str) -> None:
        self.core.delete_namespace(namespace)


def wait(check: Callable[[], object], timeout: float, what: str = "a condition") -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        # An answer not there yet (no series, no status) is retried, like an error of the moment.
        with contextlib.suppress(Exception):
            if check():
                return time.monotonic() - started
        time.sleep(POLL_SECONDS)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


@contextmanager
def load(url: str, workers: int, seconds: float, max_tokens: int) -> Iterator[subprocess.Popen[str]]:
    command = [sys.executable, str(TRAFFIC_CLIENT), "load", url, MODEL, "--workers", str(workers)]
    command += ["--seconds", str(seconds), "--max-tokens", str(max_tokens)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


# ------------------------------------------------------------------------------------------ 1. reaction


@dataclass(frozen=True)
class Reaction:
    queue_visible: float
    hpa_raised: float
    pods_ready: float
    queue_back: float


def autoscale_run(bench: Bench) -> Reaction:
    namespace = bench.namespace()
    name = "react"
    bench.create(namespace, name, spec(2, autoscaling=True))
    wait(lambda: bench.ready_everywhere(namespace, name), 120, "Ready")
    wait(lambda: bench.hpa(namespace, name).current_metrics, 120, "the HPA to read its metrics")
    url = bench.cluster.service_url(namespace, name)
    with load(url, workers=16, seconds=120, max_tokens=100):
        started = time.monotonic()
        queue_visible = wait(
            lambda: (q := bench.queue_per_pod(namespace)) is not None and q > QUEUE_TARGET, 60
        )
        hpa_raised = wait(lambda: (bench.hpa(namespace, name).desired_replicas or 0) > 2, 60) + queue_visible
        pods_ready = (
            time.monotonic()
            - started
            + wait(lambda: bench.dsd(namespace, name)["status"].get("readyReplicas") == 4, 120)
        )
        queue_back = (
            time.monotonic()
            - started
            + wait(lambda: (q := bench.queue_per_pod(namespace)) is not None and q <= QUEUE_TARGET, 120)
        )
    bench.delete_namespace(namespace)
    return Reaction(queue_visible, hpa_raised, pods_ready, queue_back)


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):5.1f} s  (min {min(values):.1f}, max {max(values):.1f})"


def reaction_lines(runs: list[Reaction], hpa_sync_seconds: float, relist_seconds: float) -> list[str]:
    bound = SCRAPE_INTERVAL_SECONDS + hpa_sync_seconds
    return [
        f"autoscale reaction, {len(runs)} runs (16 clients on 2 replicas of 2 sequences, queue target {QUEUE_TARGET}):",
        f"  load -> queue above target in Prometheus   {spread([r.queue_visible for r in runs])}",
        f"  load -> HPA desired replicas raised        {spread([r.hpa_raised for r in runs])}",
        f"  load -> 4 replicas Ready                   {spread([r.pods_ready for r in runs])}",
        f"  load -> queue back under target            {spread([r.queue_back for r in runs])}",
        f"  the chain's configured delays: scrape {SCRAPE_INTERVAL_SECONDS} s + HPA sync period {hpa_sync_seconds:.0f} s"
        f" = at most {bound:.0f} s from a queue to a decision (queue -> decision measured: "
        f"{spread([r.hpa_raised - r.queue_visible for r in runs])}); the adapter's relist ({relist_seconds:.0f} s)"
        " delays only the new pods' own series",
    ]


# ------------------------------------------------------------------------------------------ 3. capacity


def big_fleet(directory: Path) -> Path:
    """The default fleet with 9 H100 on-demand nodes per zone: 144 GPUs in us-east, so GPUs never run out."""
    fleet = yaml.safe_load(DEFAULT_FLEET.read_text())
    for pool in fleet["gpuPools"]:
        if pool["name"] == "h100-on-demand":
            pool["nodesPerZone"] = 9
    path = directory / "fleet.yaml"
    path.write_text(yaml.safe_dump(fleet))
    return path


def capacity_step(bench: Bench, pods: int) -> tuple[str, bool]:
    # Pods of earlier steps (deleted with their namespace) drain first: measure this step's alone.
    wait(lambda: not children_of(bench.cluster.processes["dataplane"].pid), 180, "earlier pods to end")
    namespace = bench.namespace()
    name = f"cap-{pods}"
    started = time.monotonic()
    bench.create(namespace, name, spec(pods, autoscaling=False, regions=1))
    try:
        ready = wait(lambda: bench.ready_everywhere(namespace, name), 180, f"{pods} pods Ready")
    except TimeoutError:
        bench.delete_namespace(namespace)
        return f"  {pods:3d} pods: not all Ready within 180 s", False
    del started
    pids = plane_pids(bench.cluster)
    idle = measure(pids, 10)
    url = bench.cluster.service_url(namespace, name)
    with load(url, workers=pods, seconds=15, max_tokens=16) as process:
        loaded = measure(pids, 10)
        output, _ = process.communicate(timeout=60)
    outcome = yaml.safe_load(output.strip().splitlines()[-1]) if output.strip() else {"ok": 0, "failed": -1}
    sims_rss, _ = idle["simulators"]
    line = (
        f"  {pods:3d} pods: all Ready {ready:5.1f} s after apply; simulators {sims_rss:6.0f} MB "
        f"({sims_rss / pods:.0f} MB each); plane CPU at rest {sum(c for _, c in idle.values()):5.1f}%, "
        f"under load {sum(c for _, c in loaded.values()):5.1f}% of a core; {pods} clients x 15 s: "
        f"{outcome['ok']} answered ({outcome['ok'] / 15:.0f}/s), {outcome['failed']} failed"
    )
    bench.delete_namespace(namespace)
    wait(lambda: not children_of(bench.cluster.processes["dataplane"].pid), 120, "the pods' processes to end")
    return line, outcome["failed"] == 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="autoscale reaction runs")
    parser.add_argument(
        "--pods", default="8,16,32,64,128", help="capacity steps (comma-separated pod counts)"
    )
    args = parser.parse_args()
    from localcluster.cluster import HPA_SYNC_PERIOD
    from localcluster.monitoring import ADAPTER_RELIST_INTERVAL

    hpa_sync = float(HPA_SYNC_PERIOD.removesuffix("s"))
    with tempfile.TemporaryDirectory() as workdir:
        directory = Path(workdir)
        started = time.monotonic()
        with LocalCluster(
            workdir=directory / "cluster", crds=[CRD_FILE], fleet_file=big_fleet(directory)
        ) as cluster:
            say(
                f"live local cluster start (control plane, data plane, Prometheus, adapter): {time.monotonic() - started:.1f} s"
            )
            install_crd_and_priority_classes(cluster.api_client())
            with OperatorProcess(cluster.kubeconfig, directory / "operator.log", monitored_by=cluster):
                bench = Bench(cluster)
                say(*cost_lines("cost with no inference pod", measure(plane_pids(cluster), 10), 0))
                runs = []
                for index in range(args.runs):
                    log(f"autoscale run {index + 1}/{args.runs}")
                    runs.append(autoscale_run(bench))
                say(*reaction_lines(runs, hpa_sync, float(ADAPTER_RELIST_INTERVAL.removesuffix("s"))))
                say("simulator pods this machine sustains (one region, one deployment scaled to N):")
                for pods in [int(n) for n in args.pods.split(",")]:
                    log(f"capacity step: {pods} pods")
                    line, ok = capacity_step(bench, pods)
                    say(line)
                    if not ok:
                        break


def say(*lines: str) -> None:
    """Print figures as soon as they are measured (a later step that fails loses nothing)."""
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
