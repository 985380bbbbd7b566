"""`make dev`: a live local cluster with a simulated GPU fleet, the CRD, the operator, and a sample.

The production sample runs with the GPU-less simulator image (`DEV_OVERLAY`): a real simulator process
serves behind each pod, Prometheus scrapes them, and the HorizontalPodAutoscaler scales on their queue
through prometheus-adapter. Runs until Ctrl-C (then stops everything it started), or exits once the
sample is Ready with `--exit-when-ready` (used by the test that keeps this command working).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from deepseek_operator.status import is_ready_for_its_generation
from kubernetes import client
from localcluster.cluster import LocalCluster
from localcluster.operator import CRD_FILE, OperatorProcess, install_crd_and_priority_classes
from localcluster.tools import ensure_tools
from localcluster.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SAMPLE = REPO_ROOT / "manifests" / "samples" / "production.yaml"
NAMESPACE = "deepseek-dev"
# What the production sample changes to run live on a laptop: the simulator image (the data plane runs a
# simulator process behind each of its pods), a batch of 4 sequences so that a modest load queues,
# per-second scraping, and an autoscaler that returns to the sample's 4 replicas within a minute or two
# after the load (the sample's production scale-down waits 5 minutes per step).
DEV_OVERLAY: dict[str, Any] = {
    "image": {"repository": "deepseek-simulator", "tag": "dev"},
    "engine": {"maxBatchSize": 4},
    "monitoring": {"serviceMonitor": {"enabled": True, "interval": "1s"}},
    "autoscaling": {
        "minReplicas": 4,
        "scaleUp": {"stabilizationWindowSeconds": 0, "maxPodsPerPeriod": 4, "periodSeconds": 15},
        "scaleDown": {"stabilizationWindowSeconds": 30, "maxPodsPerPeriod": 2, "periodSeconds": 30},
    },
    "rollout": {"drainSeconds": 5},
    # Failover you can watch: checks every second, and back to us-east on restore (the sample's
    # production settings: every 10 s, failback Manual).
    "failover": {
        "probeIntervalSeconds": 1,
        "failback": "Auto",
        "minActiveSeconds": 10,
        "successThreshold": 3,
    },
}
# A bounded load through the front Service (loopback): 48 clients for 2 minutes at most.
LOAD_WORKERS, LOAD_SECONDS = 48, 120


def overlay(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        merged[key] = (
            overlay(merged[key], value)
            if isinstance(value, dict) and isinstance(merged.get(key), dict)
            else value
        )
    return merged


def say(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def is_ready(api: Any, name: str) -> bool:
    custom: Any = client.CustomObjectsApi(api)
    found = custom.get_namespaced_custom_object(
        "serving.deepseek-operator.io", "v1alpha1", NAMESPACE, "deepseekdeployments", name
    )
    return is_ready_for_its_generation(found)


def dev_sample(sample_file: Path, prometheus_url: str) -> dict[str, Any]:
    """The sample as `make dev` applies it: `DEV_OVERLAY`, and the cluster's Prometheus for the failover
    controller's error and latency signals."""
    sample: dict[str, Any] = yaml.safe_load(sample_file.read_text())
    sample["spec"] = overlay(sample["spec"], DEV_OVERLAY)
    sample["spec"]["monitoring"]["prometheusUrl"] = prometheus_url
    return sample


def send_load(workdir: Path, sample_file: Path) -> int:
    """traffic_client.py's bounded load against the dev cluster's front Service (a loopback address)."""
    from localcluster.serviceproxy import service_address

    sample = yaml.safe_load(sample_file.read_text())
    name = sample["metadata"]["name"]
    model = sample["spec"]["model"].get("servedModelName") or sample["spec"]["model"]["name"]
    try:
        address, port = service_address(workdir, NAMESPACE, name, "http")
    except (OSError, KeyError):
        say(f"no `make dev` serves {NAMESPACE}/{name} from {workdir}: start one with `make dev` first")
        return 1
    url = f"http://{address}:{port}"
    say(
        f"{LOAD_WORKERS} clients for at most {LOAD_SECONDS}s against {url} (watch: kubectl get hpa,dsd -n {NAMESPACE} -w)"
    )
    command = [sys.executable, str(REPO_ROOT / "e2e" / "tests" / "traffic_client.py"), "load", url, model]
    command += ["--workers", str(LOAD_WORKERS), "--seconds", str(LOAD_SECONDS), "--max-tokens", "200"]
    return subprocess.run(command, check=False).returncode


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sample", type=Path, default=DEFAULT_SAMPLE, help="DeepSeekDeployment to apply")
    parser.add_argument(
        "--dir", type=Path, default=REPO_ROOT / ".local-cluster" / "dev", help="state directory"
    )
    parser.add_argument("--exit-when-ready", action="store_true", help="stop once the sample is Ready")
    parser.add_argument(
        "--load",
        action="store_true",
        help=f"do not start anything: send a bounded load ({LOAD_WORKERS} clients, {LOAD_SECONDS}s) to the "
        "front Service of the sample a running `make dev` serves",
    )
    args = parser.parse_args()
    # SIGTERM (a supervisor, or `kill`) stops everything as Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if args.load:
        return send_load(args.dir.resolve(), args.sample)

    kubectl = str(ensure_tools(["kubectl"])["kubectl"].path)
    shutil.rmtree(args.dir, ignore_errors=True)
    cluster = LocalCluster(workdir=args.dir.resolve(), crds=[CRD_FILE])
    started = time.monotonic()
    with cluster:
        api = cluster.api_client()
        say("installing the CRD and the priority classes")
        install_crd_and_priority_classes(api)
        core: Any = client.CoreV1Api(api)  # Any: the typed client wants models; a dict is the manifest
        core.create_namespace({"metadata": {"name": NAMESPACE}})
        log_path = args.dir.resolve() / "operator.log"
        with OperatorProcess(cluster.kubeconfig, log_path, monitored_by=cluster) as operator:
            say(f"operator running (log: {log_path}, metrics: http://{operator.metrics_address}/metrics)")
            sample = dev_sample(args.sample, cluster.prometheus_url)
            name = sample["metadata"]["name"]
            live_sample = args.dir.resolve() / "sample.yaml"
            live_sample.write_text(yaml.safe_dump(sample))

            def kubectl_run(*arguments: str) -> None:
                subprocess.run([kubectl, f"--kubeconfig={cluster.kubeconfig}", *arguments], check=False)

            applied_at = time.monotonic()
            kubectl_run("apply", "-n", NAMESPACE, "-f", str(live_sample))
            say(f"waiting for {name} to become Ready")
            wait_until(lambda: is_ready(api, name), 120, f"{name} to become Ready")
            say(
                f"{name} Ready {time.monotonic() - applied_at:.1f}s after apply "
                f"({time.monotonic() - started:.1f}s since start)"
            )
            kubectl_run("get", "dsd", "-n", NAMESPACE, "-o", "wide")
            kubectl_run(
                "get", "pods", "-n", NAMESPACE, "-o",
                "custom-columns=POD:.metadata.name,REGION:.metadata.labels.serving\\.deepseek-operator\\.io/region,"
                "POOL:.metadata.labels.serving\\.deepseek-operator\\.io/pool,NODE:.spec.nodeName,PHASE:.status.phase",
            )  # fmt: skip
            kubectl_run("get", "deployments,services,hpa,pdb", "-n", NAMESPACE)
            if args.exit_when_ready:
                return 0
            say(f"front Service {NAMESPACE}/{name}: {cluster.service_url(NAMESPACE, name)} (loopback)")
            say(
                f"Prometheus: {cluster.prometheus_url}   (custom metrics: kubectl get --raw /apis/custom.metrics.k8s.io/v1beta1)"
            )
            say(f"export KUBECONFIG={cluster.kubeconfig}   # in another shell, to look around")
            say(f"watch it scale: kubectl get hpa,dsd -n {NAMESPACE} -w")
            say(f"load it (bounded: {LOAD_WORKERS} clients, {LOAD_SECONDS}s), in another shell: make load")
            say(f"try: PYTHONPATH=e2e python -m localcluster --dir {args.dir} fail-region us-east")
            say(
                f"and watch the failover: kubectl get dsd -n {NAMESPACE} -w   # ACTIVE; -o yaml: status.failover"
            )
            say(
                f"spot short: PYTHONPATH=e2e python -m localcluster --dir {args.dir} cordon-pool h100-spot --region us-east; "
                f"kubectl delete pods -n {NAMESPACE} -l serving.deepseek-operator.io/pool=spot; after "
                "spot.fallback.pendingTimeoutSeconds, kubectl get dsd shows FALLBACK and FALLBACK-REASON"
            )
            say(
                f"spot interrupted: PYTHONPATH=e2e python -m localcluster --dir {args.dir} interrupt-node "
                "gpu-us-east-1a-h100-spot-0 --provider karpenter   # on-demand stand-ins at once"
            )
            say("Ctrl-C stops the operator and the cluster")
            try:
                while operator.process is not None and operator.process.poll() is None:
                    time.sleep(1)
            except KeyboardInterrupt:
                say("stopping")
            return 0 if operator.process is None or operator.process.poll() is None else 1


if __name__ == "__main__":
    sys.exit(main())
