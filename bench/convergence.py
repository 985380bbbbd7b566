"""How long a DeepSeekDeployment takes from `kubectl apply` to Ready on the local cluster.

Starts the local control plane and the operator (as a real process), then:
- one CR at a time (`--sequential`, default 5): apply, wait for Ready for its generation, delete;
- a burst of CRs applied together (`--burst`, default 10): time until all are Ready.
Prints the figures, and the operator's own reconcile-duration histogram summary from its /metrics.
Run: `PYTHONPATH=e2e:operator .venv/bin/python bench/convergence.py` (or `make bench`).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from deepseek_operator.status import is_ready_for_its_generation
from kubernetes import client
from localcluster.cluster import LocalCluster
from localcluster.operator import CRD_FILE, OperatorProcess, install_crd_and_priority_classes

GROUP, VERSION, PLURAL = "serving.deepseek-operator.io", "v1alpha1", "deepseekdeployments"


def spec() -> dict[str, Any]:
    return {
        "model": {"name": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"},
        "regions": [{"name": "us-east", "role": "Active"}, {"name": "eu-west", "role": "Standby"}],
        "replicas": 2,
        "spot": {"enabled": True, "onDemandBase": 1, "spotPercentage": 50},
        "autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": 4},
    }


def is_ready(custom: Any, namespace: str, name: str) -> bool:
    return is_ready_for_its_generation(
        custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    )


def create(custom: Any, namespace: str, name: str) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "DeepSeekDeployment",
        "metadata": {"name": name},
        "spec": spec(),
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)


def wait_all_ready(custom: Any, namespace: str, names: list[str], timeout: float = 120) -> None:
    pending = set(names)
    deadline = time.monotonic() + timeout
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError(f"not Ready after {timeout}s: {sorted(pending)}")
        pending = {name for name in pending if not is_ready(custom, namespace, name)}
        time.sleep(0.02)


def reconcile_histogram(metrics_address: str) -> str:
    with urllib.request.urlopen(f"http://{metrics_address}/metrics", timeout=5) as response:
        text = response.read().decode()
    count = sum_ = 0.0
    for line in text.splitlines():
        if line.startswith("deepseek_operator_reconcile_duration_seconds_count"):
            count = float(line.split()[-1])
        elif line.startswith("deepseek_operator_reconcile_duration_seconds_sum"):
            sum_ = float(line.split()[-1])
    return f"{int(count)} reconciles, mean {1000 * sum_ / count:.1f} ms" if count else "no reconciles"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sequential", type=int, default=5)
    parser.add_argument("--burst", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        started = time.monotonic()
        cluster = LocalCluster(workdir=Path(workdir) / "cluster", crds=[CRD_FILE])
        with cluster:
            cluster_seconds = time.monotonic() - started
            api = cluster.api_client()
            install_crd_and_priority_classes(api)
            custom = client.CustomObjectsApi(api)
            core: Any = client.CoreV1Api(api)
            core.create_namespace({"metadata": {"name": "bench"}})
            operator_started = time.monotonic()
            with OperatorProcess(cluster.kubeconfig, Path(workdir) / "operator.log") as operator:
                operator_seconds = time.monotonic() - operator_started
                one: list[float] = []
                for index in range(args.sequential):
                    name = f"seq-{index}"
                    applied = time.monotonic()
                    create(custom, "bench", name)
                    wait_all_ready(custom, "bench", [name])
                    one.append(time.monotonic() - applied)
                    custom.delete_namespaced_custom_object(GROUP, VERSION, "bench", PLURAL, name)
                names = [f"burst-{index}" for index in range(args.burst)]
                applied = time.monotonic()
                for name in names:
                    create(custom, "bench", name)
                wait_all_ready(custom, "bench", names)
                burst_seconds = time.monotonic() - applied
                histogram = reconcile_histogram(operator.metrics_address)
    print(f"local cluster start (etcd, apiserver, controllers, kwok, 14 nodes): {cluster_seconds:.1f} s")
    print(f"operator start to live: {operator_seconds:.1f} s")
    print(
        f"one CR apply -> Ready (10 children, 3 pods), {len(one)} runs: "
        f"median {statistics.median(one):.2f} s, min {min(one):.2f} s, max {max(one):.2f} s"
    )
    print(f"{args.burst} CRs applied together -> all Ready: {burst_seconds:.2f} s")
    print(f"operator reconcile duration: {histogram}")


if __name__ == "__main__":
    main()
