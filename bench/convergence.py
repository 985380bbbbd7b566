"""How long a DeepSeekDeployment takes from `kubectl apply` to Ready on the local cluster.

Starts the local control plane and the operator (as a real process), then:
- one CR at a time (`--sequential`, default 5): apply, wait until it is ready everywhere, delete;
- a burst of CRs applied together (`--burst`, default 10): time until all are ready everywhere.
"Ready everywhere" here is more than the Ready condition (which is about the active region): Ready for
its generation and every region's pods of the current spec ready, the standby's warm ones included.
Prints the figures, the counts it measured (nodes, children, pods), and the operator's own
reconcile-duration histogram summary from its /metrics.
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

from deepseek_operator.kube import CHILD_KINDS
from deepseek_operator.render.labels import DEPLOYMENT_LABEL
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


def ready_in_every_region(deepseek_deployment: dict[str, Any]) -> bool:
    """Ready for its generation, and every region (standbys too) has all its desired replicas ready."""
    regions = (deepseek_deployment.get("status") or {}).get("regions") or []
    return (
        is_ready_for_its_generation(deepseek_deployment)
        and bool(regions)
        and all(region.get("readyReplicas") == region.get("desiredReplicas") for region in regions)
    )


def is_ready(custom: Any, namespace: str, name: str) -> bool:
    return ready_in_every_region(custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name))


def count_children(api: Any, namespace: str, name: str) -> int:
    """Objects of every child kind the cluster serves that carry the DeepSeekDeployment's label."""
    from kubernetes.dynamic import DynamicClient
    from kubernetes.dynamic.exceptions import ResourceNotFoundError

    dynamic = DynamicClient(api)  # type: ignore[no-untyped-call]
    count = 0
    for api_version, kind in CHILD_KINDS:
        try:
            resource = dynamic.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            continue  # an add-on's kind this cluster does not serve
        count += len(resource.get(namespace=namespace, label_selector=f"{DEPLOYMENT_LABEL}={name}").items)
    return count


def count_ready_pods(core: Any, namespace: str, name: str) -> int:
    pods = core.list_namespaced_pod(namespace, label_selector=f"{DEPLOYMENT_LABEL}={name}").items
    return sum(
        1
        for pod in pods
        if pod.metadata.deletion_timestamp is None
        and any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
    )


def report(
    nodes: int,
    cluster_seconds: float,
    operator_seconds: float,
    shapes: set[tuple[int, int]],
    one: list[float],
    burst: int,
    burst_seconds: float,
    histogram: str,
) -> list[str]:
    """The printed figures; every count in them was measured (`shapes`: children and ready pods of each
    sequential CR once it was ready everywhere)."""
    shape = ", ".join(f"{children} children, {pods} pods" for children, pods in sorted(shapes))
    return [
        f"local cluster start (etcd, apiserver, controllers, kwok, {nodes} nodes): {cluster_seconds:.1f} s",
        f"operator start to live: {operator_seconds:.1f} s",
        f"one CR apply -> ready in every region ({shape}), {len(one)} runs: "
        f"median {statistics.median(one):.2f} s, min {min(one):.2f} s, max {max(one):.2f} s",
        f"{burst} CRs applied together -> all ready in every region: {burst_seconds:.2f} s",
        f"operator reconcile duration: {histogram}",
    ]


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
            nodes = len(core.list_node().items)
            core.create_namespace({"metadata": {"name": "bench"}})
            operator_started = time.monotonic()
            with OperatorProcess(cluster.kubeconfig, Path(workdir) / "operator.log") as operator:
                operator_seconds = time.monotonic() - operator_started
                one: list[float] = []
                shapes: set[tuple[int, int]] = set()
                for index in range(args.sequential):
                    name = f"seq-{index}"
                    applied = time.monotonic()
                    create(custom, "bench", name)
                    wait_all_ready(custom, "bench", [name])
                    one.append(time.monotonic() - applied)
                    shapes.add((count_children(api, "bench", name), count_ready_pods(core, "bench", name)))
                    custom.delete_namespaced_custom_object(GROUP, VERSION, "bench", PLURAL, name)
                names = [f"burst-{index}" for index in range(args.burst)]
                applied = time.monotonic()
                for name in names:
                    create(custom, "bench", name)
                wait_all_ready(custom, "bench", names)
                burst_seconds = time.monotonic() - applied
                histogram = reconcile_histogram(operator.metrics_address)
    for line in report(
        nodes, cluster_seconds, operator_seconds, shapes, one, args.burst, burst_seconds, histogram
    ):
        print(line)


if __name__ == "__main__":
    main()
