"""Predictive pre-scaling, measured: a replayed day, reactive HPA alone vs predictive floor plus HPA.

One live local cluster, both deployments at once under the same load, so they share the machine's
moments: `reactive` (HPA on the queue and p99 only) and `predictive` (the same HPA, plus
`autoscaling.predictive` in ForecastAndScale). Every simulator replica "loads its model" for
`--model-load-seconds` before it is Ready (LocalCluster(model_load_seconds=...)).

The day is compressed `--time-scale` times (60: a day lasts 24 minutes, an hour one minute): the
operator runs with DEEPSEEK_OPERATOR_PREDICTIVE_TIME_SCALE set to it, which divides its calendar (day,
week, anchor hour, horizon, 5-minute grid) and its look interval. That setting exists for this
benchmark only. What is not compressed: the HPA sync period (5 s, i.e. 5 day-minutes at scale 60, where
a real cluster has 15 s), the 1 s scrape interval (1 day-minute) and the scale-up/down policies, which
are given in the spec in real seconds; the model load is 5 s (5 day-minutes).

1. History: Prometheus gets 7 compressed days (plus the anchor hour) of both deployments' request
   rate, backfilled with promtool (`localcluster.history`): a morning ramp, a quieter weekend.
2. Replay: the next day (a weekday) is sent for real through each front Service by an open-loop
   client (arrivals at the day's rate, whatever the answers), plus a spike the history never had.
3. Every real second (one day-minute at scale 60) the benchmark samples each deployment: queue per ready
   replica (Prometheus), p99 of the requests sent in that minute, replicas (pods that exist, Ready or
   loading: a loading replica costs a GPU too) and the floor.

Figures (day-minutes): minutes with the queue above target or the p99 above target, over the ramp
(06:00-12:00), the spike and the whole day; failed requests; replica-minutes. Goal: predictive at most
half the reactive ramp's violation minutes, for at most 15 % more replica-minutes.

Run: `PYTHONPATH=e2e:operator:images/simulator .venv/bin/python bench/predictive.py` (or `make bench`);
`--trace FILE` writes the samples (JSON lines) that hack/plot_predictive.py draws.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import json
import math
import os
import random
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client
from localcluster.cluster import LocalCluster
from localcluster.history import (
    EngineSeries,
    Spike,
    TrafficPattern,
    openmetrics_history,
    wait_for_history,
)
from localcluster.operator import CRD_FILE, OperatorProcess, install_crd_and_priority_classes

GROUP, VERSION, PLURAL = "serving.deepseek-operator.io", "v1alpha1", "deepseekdeployments"
MODEL = "r1"
NAMES = ("reactive", "predictive")
QUEUE_TARGET = 2
LATENCY_TARGET_SECONDS = 4.0
MAX_TOKENS = 20
# The simulator's capacity model: one request holds a slot ttft + (tokens - 1) / 40 s = 0.675 s; 2 slots.
PER_REPLICA = 2.5
PEAK = 10.0
SPIKE_HOUR, SPIKE_HOURS, SPIKE_EXTRA = 15.0, 1.0, 0.6
RAMP_WINDOW = (6.0, 12.0)
MAX_FORECAST_ERROR_PERCENT = 80


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def say(*lines: str) -> None:
    print("\n".join(lines), flush=True)


def pattern(scale: float, origin: float, spikes: tuple[Spike, ...] = ()) -> TrafficPattern:
    return TrafficPattern(
        origin=origin,
        peak=PEAK,
        night_share=0.1,
        ramp_start_hour=7.0,
        ramp_hours=2.0,
        weekend_share=0.5,
        noise=0.05,
        time_scale=scale,
        spikes=spikes,
    )


def spec(name: str, prometheus_url: str) -> dict[str, Any]:
    return {
        "model": {"name": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "servedModelName": MODEL},
        "image": {"repository": "deepseek-simulator", "tag": "bench"},
        "engine": {"maxBatchSize": 2},
        "resources": {"gpusPerReplica": 1, "cpu": "100m", "memory": "256Mi", "sharedMemorySize": "64Mi"},
        "regions": [{"name": "us-east", "role": "Active"}],
        "failover": {"enabled": False},
        "replicas": 1,
        "autoscaling": {
            "enabled": True,
            "minReplicas": 1,
            "maxReplicas": 10,
            "queueDepthTargetPerReplica": QUEUE_TARGET,
            "p99LatencyTargetMilliseconds": int(LATENCY_TARGET_SECONDS * 1000),
            "scaleUp": {"stabilizationWindowSeconds": 0, "maxPodsPerPeriod": 2, "periodSeconds": 5},
            "scaleDown": {"stabilizationWindowSeconds": 20, "maxPodsPerPeriod": 1, "periodSeconds": 5},
            "predictive": {
                "enabled": name == "predictive",
                "mode": "ForecastAndScale",
                "requestsPerSecondPerReplica": str(PER_REPLICA),
                # A compressed 5-minute point holds 5 s of requests (5 to 50 here): counting noise
                # alone makes the most recent day's forecast error 25-50 % (a real point holds 60
                # times as many requests). The default bound (30 %) would keep the floor off.
                "maxForecastErrorPercent": MAX_FORECAST_ERROR_PERCENT,
            },
        },
        "monitoring": {
            "prometheusUrl": prometheus_url,
            "serviceMonitor": {"enabled": True, "interval": "1s"},
        },
        "rollout": {"drainSeconds": 1},
    }


# ------------------------------------------------------------------------------------------ load


@dataclass
class Outcomes:
    """Per real second since the replay began: latencies of the requests sent in it, and failures."""

    latencies: dict[int, list[float]] = field(default_factory=dict)
    failed: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, second: int, latency: float | None) -> None:
        with self.lock:
            if latency is None:
                self.failed[second] = self.failed.get(second, 0) + 1
            else:
                self.latencies.setdefault(second, []).append(latency)


def request(url: str) -> float | None:
    body = json.dumps(
        {"model": MODEL, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": MAX_TOKENS}
    ).encode()
    started = time.monotonic()
    req = urllib.request.Request(  # noqa: S310 (a loopback Service address)
        f"{url}/v1/chat/completions", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as response:  # noqa: S310
            response.read()
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return time.monotonic() - started


def open_loop(
    url: str,
    rate: Any,
    start: float,
    seconds: float,
    outcomes: Outcomes,
    stop: threading.Event,
    seed: int,
) -> None:
    """Arrivals at ``rate(t)`` per second (a Poisson process), each sent at once on its own worker."""
    generator = random.Random(seed)
    with concurrent.futures.ThreadPoolExecutor(max_workers=96) as pool:
        now = time.monotonic()
        while not stop.is_set() and now - start < seconds:
            if stop.wait(generator.expovariate(max(0.01, rate(time.time())))):
                break
            now = time.monotonic()
            second = int(now - start)

            def send(second: int = second) -> None:
                outcomes.record(second, request(url))

            pool.submit(send)


# ------------------------------------------------------------------------------------------ samples


def p99(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


class Sampler:
    def __init__(self, cluster: LocalCluster, namespaces: dict[str, str]) -> None:
        api = cluster.api_client()
        self.cluster = cluster
        self.custom: Any = client.CustomObjectsApi(api)
        self.core: Any = client.CoreV1Api(api)
        self.namespaces = namespaces

    def sample(self, name: str) -> dict[str, Any]:
        namespace = self.namespaces[name]
        found = self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        status = found.get("status") or {}
        pods = [
            p for p in self.core.list_namespaced_pod(namespace).items if p.metadata.deletion_timestamp is None
        ]
        queue = self.cluster.prometheus_query(
            f'sum(vllm:num_requests_waiting{{namespace="{namespace}"}}) / '
            f'clamp_min(count(vllm:num_requests_waiting{{namespace="{namespace}"}}), 1)'
        )
        predictive = status.get("predictive") or {}
        reason = next(
            (c.get("reason") for c in status.get("conditions") or [] if c.get("type") == "PredictiveScaling"),
            None,
        )
        return {
            "reason": reason,
            "replicas": len(pods),
            "ready": int(status.get("readyReplicas") or 0),
            "wanted": int(found["spec"].get("replicas") or 0),
            "queue": float(queue[0]["value"][1]) if queue else 0.0,
            "floor": predictive.get("floorReplicas"),
            "forecast": float(predictive["forecastRequestsPerSecond"])
            if predictive.get("forecastRequestsPerSecond")
            else None,
        }


# ------------------------------------------------------------------------------------------ figures


@dataclass
class Figures:
    ramp_violations: float
    spike_violations: float
    day_violations: float
    failed: int
    sent: int
    replica_minutes: float


def figures(trace: list[dict[str, Any]], name: str, outcomes: Outcomes, scale: float) -> Figures:
    """Each sample stands for the real seconds until the next one (one, unless sampling fell behind),
    reported in day-minutes (``scale / 60`` per real second); its p99 is over the requests sent in
    those seconds."""
    per_second = scale / 60

    def covered(index: int) -> range:
        second: int = trace[index]["second"]
        following: int = trace[index + 1]["second"] if index + 1 < len(trace) else second + 1
        return range(second, max(second + 1, following))

    def violated(index: int) -> bool:
        latencies = [v for second in covered(index) for v in outcomes.latencies.get(second, [])]
        latency = p99(latencies)
        queue: float = trace[index][name]["queue"]
        return queue > QUEUE_TARGET or (latency is not None and latency > LATENCY_TARGET_SECONDS)

    def minutes(low: float, high: float) -> float:
        return per_second * sum(
            len(covered(i)) for i, row in enumerate(trace) if low <= row["hour"] < high and violated(i)
        )

    return Figures(
        ramp_violations=minutes(*RAMP_WINDOW),
        spike_violations=minutes(SPIKE_HOUR, SPIKE_HOUR + SPIKE_HOURS + 1),
        day_violations=minutes(0, 24),
        failed=sum(outcomes.failed.values()),
        sent=sum(outcomes.failed.values()) + sum(len(v) for v in outcomes.latencies.values()),
        replica_minutes=per_second
        * sum(len(covered(i)) * row[name]["replicas"] for i, row in enumerate(trace)),
    )


def report(reactive: Figures, predictive: Figures, minutes: float) -> list[str]:
    ramp_ratio = predictive.ramp_violations / reactive.ramp_violations if reactive.ramp_violations else None
    cost = predictive.replica_minutes / reactive.replica_minutes - 1 if reactive.replica_minutes else 0.0
    ratio_text = f"{ramp_ratio:.2f}x" if ramp_ratio is not None else "n/a (reactive had none)"
    ramp_ok = ramp_ratio is not None and ramp_ratio <= 0.5
    return [
        f"replayed: {minutes:.0f} day-minutes; SLO: queue per replica <= {QUEUE_TARGET} and p99 <= "
        f"{LATENCY_TARGET_SECONDS:g} s, sampled every real second",
        f"  {'':<42} {'reactive':>10} {'predictive':>11}",
        f"  {'SLO-violation minutes, ramp (06-12h)':<42} {reactive.ramp_violations:>10.0f} {predictive.ramp_violations:>11.0f}"
        f"   goal: at most half -> {ratio_text} ({'met' if ramp_ok else 'NOT met'})",
        f"  {'SLO-violation minutes, spike (unforeseen)':<42} {reactive.spike_violations:>10.0f} {predictive.spike_violations:>11.0f}",
        f"  {'SLO-violation minutes, whole day':<42} {reactive.day_violations:>10.0f} {predictive.day_violations:>11.0f}",
        f"  {'requests failed / sent':<42} {f'{reactive.failed}/{reactive.sent}':>10} {f'{predictive.failed}/{predictive.sent}':>11}",
        f"  {'replica-minutes':<42} {reactive.replica_minutes:>10.0f} {predictive.replica_minutes:>11.0f}"
        f"   goal: at most +15 % -> {cost * 100:+.1f} % ({'met' if cost <= 0.15 else 'NOT met'})",
    ]


# ------------------------------------------------------------------------------------------ run


@contextlib.contextmanager
def operator_env(scale: float) -> Iterator[None]:
    previous = os.environ.get("DEEPSEEK_OPERATOR_PREDICTIVE_TIME_SCALE")
    os.environ["DEEPSEEK_OPERATOR_PREDICTIVE_TIME_SCALE"] = f"{scale:g}"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["DEEPSEEK_OPERATOR_PREDICTIVE_TIME_SCALE"]
        else:
            os.environ["DEEPSEEK_OPERATOR_PREDICTIVE_TIME_SCALE"] = previous


def run(args: argparse.Namespace, workdir: Path) -> None:
    scale = args.time_scale
    day = 86_400.0 / scale
    with LocalCluster(
        workdir=workdir / "cluster", crds=[CRD_FILE], model_load_seconds=args.model_load_seconds
    ) as cluster:
        install_crd_and_priority_classes(cluster.api_client())
        core: Any = client.CoreV1Api(cluster.api_client())
        namespaces = {name: f"bench-{name}" for name in NAMES}
        for namespace in namespaces.values():
            core.create_namespace({"metadata": {"name": namespace}})
        with (
            operator_env(scale),
            OperatorProcess(cluster.kubeconfig, workdir / "operator.log", monitored_by=cluster),
        ):
            custom: Any = client.CustomObjectsApi(cluster.api_client())
            for name in NAMES:
                custom.create_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    namespaces[name],
                    PLURAL,
                    {
                        "apiVersion": f"{GROUP}/{VERSION}",
                        "kind": "DeepSeekDeployment",
                        "metadata": {"name": name},
                        "spec": spec(name, cluster.prometheus_url),
                    },
                )
            sampler = Sampler(cluster, namespaces)
            deadline = time.monotonic() + 120
            while not all(sampler.sample(name)["ready"] >= 1 for name in NAMES):
                if time.monotonic() > deadline:
                    raise TimeoutError("the deployments did not get a Ready replica within 120 s")
                time.sleep(1)
            # The history is the 7 compressed days (and the anchor hour) before now; the replay starts
            # now, at a compressed Monday midnight. Prometheus loads the backfilled blocks within a
            # minute (one night-time hour of the replay): until then the forecast says NotEnoughHistory.
            replay_start = time.time()
            origin = replay_start - 7 * day
            history = pattern(scale, origin)
            step = 60.0 / scale  # a sample every day-minute (the operator reads rates over 5)
            lines: list[str] = []
            for name in NAMES:
                lines += [
                    line
                    for line in openmetrics_history(
                        EngineSeries(namespaces[name], MODEL),
                        history.rate,
                        origin - 3600 / scale,
                        replay_start - step,
                        step,
                        PER_REPLICA,
                        QUEUE_TARGET,
                    )
                    if line != "# EOF"
                ]
            cluster.backfill(iter([*lines, "# EOF"]))
            loaded = (
                f'vllm:request_success_total{{namespace="{namespaces["predictive"]}"}} offset {int(6 * day)}s'
            )

            def announce_history() -> None:
                wait_for_history(cluster.prometheus_query, loaded)
                log("Prometheus has loaded the history")

            threading.Thread(target=announce_history, daemon=True).start()
            spike = Spike(7 * day + SPIKE_HOUR * 3600 / scale, SPIKE_HOURS * 3600 / scale, SPIKE_EXTRA)
            live = pattern(scale, origin, (spike,))
            seconds = args.hours * 3600 / scale
            stop = threading.Event()
            outcomes = {name: Outcomes() for name in NAMES}
            start = time.monotonic()
            senders = [
                threading.Thread(
                    target=open_loop,
                    args=(
                        cluster.service_url(namespaces[name], name),
                        live.rate,
                        start,
                        seconds,
                        outcomes[name],
                        stop,
                        index,
                    ),
                    daemon=True,
                )
                for index, name in enumerate(NAMES)
            ]
            for sender in senders:
                sender.start()
            trace: list[dict[str, Any]] = []
            logged = -1
            try:
                while (elapsed := time.monotonic() - start) < seconds:
                    second = int(elapsed)
                    row: dict[str, Any] = {
                        "second": second,
                        "hour": second * scale / 3600,
                        "rate": live.rate(time.time()),
                    }
                    for name in NAMES:
                        with contextlib.suppress(Exception):
                            row[name] = sampler.sample(name)
                    if all(name in row for name in NAMES):
                        trace.append(row)
                    if second // 60 != logged:
                        logged = second // 60
                        log(
                            f"{row['hour']:4.1f} h: "
                            + ", ".join(f"{n} {row.get(n, {}).get('replicas')}" for n in NAMES)
                        )
                    time.sleep(max(0.0, second + 1 - (time.monotonic() - start)))
            finally:
                stop.set()
                for sender in senders:
                    sender.join(timeout=90)
            for row in trace:
                for name in NAMES:
                    row[name]["p99"] = p99(outcomes[name].latencies.get(row["second"], []))
            if args.operator_log:
                args.operator_log.write_bytes((workdir / "operator.log").read_bytes())
            if args.trace:
                args.trace.write_text("".join(json.dumps(row) + "\n" for row in trace))
                log(f"trace written to {args.trace}")
            results = {name: figures(trace, name, outcomes[name], scale) for name in NAMES}
            say(*report(results["reactive"], results["predictive"], seconds * scale / 60))
            reasons: dict[str, int] = {}
            for row in trace:
                if RAMP_WINDOW[0] <= row["hour"] < RAMP_WINDOW[1]:
                    reason = str(row["predictive"].get("reason"))
                    reasons[reason] = reasons.get(reason, 0) + 1
            say(f"  the predictive deployment's condition over the ramp (samples): {reasons}")
            say(
                f"  figures as measured: {json.dumps({n: dataclasses.asdict(f) for n, f in results.items()})}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--time-scale", type=float, default=60.0, help="a day lasts 86400 / this seconds")
    parser.add_argument("--hours", type=float, default=24.0, help="day-hours to replay from midnight")
    parser.add_argument("--model-load-seconds", type=float, default=5.0, help="each replica's load time")
    parser.add_argument("--trace", type=Path, help="write the per-second samples here (JSON lines)")
    parser.add_argument("--operator-log", type=Path, help="keep the operator's log here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        run(args, Path(directory))


if __name__ == "__main__":
    main()
