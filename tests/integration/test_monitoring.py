"""The local cluster's monitoring stack, with the real Prometheus and prometheus-adapter (no mocks):
ServiceMonitors become scrape jobs, only pods with a loopback address are scraped, and a simulator's
queue depth reaches the custom metrics API, and the real HorizontalPodAutoscaler scales on it."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from deepseek_simulator.testing import SimulatorProcess
from localcluster.addresses import LOOPBACK_ADDRESS_ANNOTATION
from localcluster.cluster import LocalCluster
from localcluster.monitoring import prometheus_api
from localcluster.tools import ensure_tools
from localcluster.waiting import wait_until

pytestmark = pytest.mark.cluster

# Loopback addresses of their own for the simulators of the end-to-end tests (what the pod runtime
# allocates to the pods it runs).
SIMULATOR_ADDRESS = "127.0.0.7"
LOADED_SIMULATOR_ADDRESS = "127.0.0.8"
# The pods here stand for pods the pod runtime runs, but their processes are started (and their
# loopback addresses set) by the tests themselves: an image the runtime does not know.
NOT_RUN_IMAGE = "example.invalid/started-by-the-test"


def _custom(api_client: Any) -> Any:
    from kubernetes import client

    return client.CustomObjectsApi(api_client)


def _service_and_monitor(core_api: Any, api_client: Any, namespace: str, name: str, port: int) -> None:
    """A Service named `name` over pods labelled app=`name`, and a ServiceMonitor scraping its port "http"."""
    core_api.create_namespaced_service(
        namespace,
        {
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": port}]},
        },
    )
    _custom(api_client).create_namespaced_custom_object(
        "monitoring.coreos.com",
        "v1",
        namespace,
        "servicemonitors",
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "ServiceMonitor",
            "metadata": {"name": name},
            "spec": {
                "selector": {"matchLabels": {"app": name}},
                "endpoints": [{"port": "http", "path": "/metrics", "interval": "1s"}],
            },
        },
    )


def _pod(core_api: Any, namespace: str, name: str, app: str, port: int, address: str | None) -> None:
    annotations = {LOOPBACK_ADDRESS_ANNOTATION: address} if address else {}
    core_api.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": name, "labels": {"app": app}, "annotations": annotations},
            "spec": {
                "containers": [
                    {
                        "name": "engine",
                        "image": NOT_RUN_IMAGE,
                        "ports": [{"name": "http", "containerPort": port}],
                    }
                ],
                # The fleet's GPU nodes are tainted; this pod only needs a node for kwok to run it.
                "tolerations": [{"operator": "Exists"}],
            },
        },
    )
    wait_until(
        lambda: (core_api.read_namespaced_pod(name, namespace).status.pod_ip or "").startswith("10."),
        60,
        f"kwok to run pod {name}",
    )


def _job_names(cluster: LocalCluster) -> list[str]:
    config = yaml.safe_load(prometheus_api(cluster.prometheus_url, "/api/v1/status/config")["yaml"])
    return [job["job_name"] for job in config.get("scrape_configs") or []]


def _targets_of_pod(cluster: LocalCluster, pod: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(active, dropped) targets that Prometheus discovered for `pod`."""
    data = prometheus_api(cluster.prometheus_url, "/api/v1/targets")
    active = [
        t for t in data["activeTargets"] if t["discoveredLabels"].get("__meta_kubernetes_pod_name") == pod
    ]
    dropped = [
        t for t in data["droppedTargets"] if t["discoveredLabels"].get("__meta_kubernetes_pod_name") == pod
    ]
    return active, dropped


def test_prometheus_answers_and_its_url_is_in_the_state_file(local_cluster: LocalCluster) -> None:
    assert local_cluster.prometheus_query("vector(1)")[0]["value"][1] == "1"
    state = json.loads(local_cluster.state_file.read_text())
    assert state["prometheus_url"] == local_cluster.prometheus_url
    assert local_cluster.prometheus_url.startswith("http://127.0.0.1:")


def test_a_service_monitor_becomes_a_scrape_job_and_goes_when_deleted(
    local_cluster: LocalCluster, core_api: Any, api_client: Any, namespace: str
) -> None:
    _service_and_monitor(core_api, api_client, namespace, "web", 8080)
    job = f"serviceMonitor/{namespace}/web/0"
    wait_until(lambda: job in _job_names(local_cluster), 30, f"Prometheus to load job {job}")
    _custom(api_client).delete_namespaced_custom_object(
        "monitoring.coreos.com", "v1", namespace, "servicemonitors", "web"
    )
    wait_until(lambda: job not in _job_names(local_cluster), 30, f"Prometheus to drop job {job}")


def test_a_prometheus_rule_is_loaded(local_cluster: LocalCluster, api_client: Any, namespace: str) -> None:
    group = f"local-{uuid.uuid4().hex[:6]}"
    _custom(api_client).create_namespaced_custom_object(
        "monitoring.coreos.com",
        "v1",
        namespace,
        "prometheusrules",
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PrometheusRule",
            "metadata": {"name": "alerts"},
            "spec": {"groups": [{"name": group, "rules": [{"alert": "Always", "expr": "vector(1) > 0"}]}]},
        },
    )

    def loaded() -> bool:
        groups = prometheus_api(local_cluster.prometheus_url, "/api/v1/rules")["groups"]
        return any(g["name"] == group for g in groups)

    wait_until(loaded, 30, f"rule group {group} in Prometheus")


def test_a_pod_without_a_loopback_address_is_never_scraped(
    local_cluster: LocalCluster, core_api: Any, api_client: Any, namespace: str
) -> None:
    """kwok's pod IP (10.244.x.y) belongs to nobody: the target is discovered, and dropped."""
    _service_and_monitor(core_api, api_client, namespace, "ghost", 8080)
    _pod(core_api, namespace, "ghost-0", "ghost", 8080, address=None)
    _pod(core_api, namespace, "ghost-1", "ghost", 8080, address="10.244.0.1")  # not loopback: dropped too
    for pod in ("ghost-0", "ghost-1"):
        active, dropped = wait_until(
            lambda pod=pod: (targets := _targets_of_pod(local_cluster, pod))[1] and targets,
            60,
            f"Prometheus to discover (and drop) {pod}",
        )
        assert active == []
        assert dropped[0]["discoveredLabels"]["__address__"].startswith("10.244.")


def _get_raw(cluster: LocalCluster, path: str) -> Any:
    """`kubectl get --raw PATH` as JSON: through the API server, and so through the aggregation layer."""
    kubectl = ensure_tools(["kubectl"])["kubectl"].path
    output = subprocess.run(
        [str(kubectl), f"--kubeconfig={cluster.kubeconfig}", "get", "--raw", path],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    return json.loads(output)


def test_the_custom_metrics_api_is_served(local_cluster: LocalCluster) -> None:
    for version in ("v1beta1", "v1beta2"):
        group_version = _get_raw(local_cluster, f"/apis/custom.metrics.k8s.io/{version}")["groupVersion"]
        assert group_version == f"custom.metrics.k8s.io/{version}"


@pytest.fixture
def simulator() -> Iterator[SimulatorProcess]:
    """A real simulator on its own loopback address, as the pod runtime would run one behind a pod."""
    process = SimulatorProcess(["--host", SIMULATOR_ADDRESS, "--served-model-name", "sim"])
    try:
        yield process
    finally:
        process.close()


def test_a_simulators_queue_depth_reaches_the_custom_metrics_api(
    local_cluster: LocalCluster, core_api: Any, api_client: Any, namespace: str, simulator: SimulatorProcess
) -> None:
    _service_and_monitor(core_api, api_client, namespace, "sim", simulator.port)
    _pod(core_api, namespace, "sim-0", "sim", simulator.port, address=SIMULATOR_ADDRESS)
    active, _ = wait_until(
        lambda: (targets := _targets_of_pod(local_cluster, "sim-0"))[0] and targets, 60, "an active target"
    )
    assert active[0]["labels"]["instance"] == f"{SIMULATOR_ADDRESS}:{simulator.port}"
    assert {k: active[0]["labels"][k] for k in ("namespace", "pod", "service", "endpoint")} == {
        "namespace": namespace,
        "pod": "sim-0",
        "service": "sim",
        "endpoint": "http",
    }
    path = f"/apis/custom.metrics.k8s.io/v1beta1/namespaces/{namespace}/pods/*/vllm_num_requests_waiting"

    def metric() -> list[dict[str, Any]]:
        try:
            items: list[dict[str, Any]] = _get_raw(local_cluster, path)["items"]
        except subprocess.CalledProcessError:
            return []  # 404 until the adapter has listed the series
        return items

    items = wait_until(metric, 90, f"{path} to list the simulator's pod")
    assert [(item["describedObject"]["name"], item["value"]) for item in items] == [("sim-0", "0")]


@pytest.fixture
def slow_simulator() -> Iterator[SimulatorProcess]:
    """Two sequences at a time at 20 tokens/s: a few concurrent requests build a queue."""
    process = SimulatorProcess(
        [
            "--host",
            LOADED_SIMULATOR_ADDRESS,
            "--served-model-name",
            "sim",
            "--max-num-seqs",
            "2",
            "--tokens-per-second",
            "20",
        ]
    )
    try:
        yield process
    finally:
        process.close()


class Load:
    """`concurrency` clients sending completions back to back for at most `seconds`, until stopped."""

    def __init__(self, base_url: str, concurrency: int, seconds: float) -> None:
        self._stop = threading.Event()
        self._deadline = time.monotonic() + seconds
        self._request = urllib.request.Request(  # noqa: S310 (loopback)
            f"{base_url}/v1/completions",
            data=json.dumps({"model": "sim", "prompt": "Hello", "max_tokens": 60}).encode(),
            headers={"Content-Type": "application/json"},
        )
        self._clients = [threading.Thread(target=self._client, daemon=True) for _ in range(concurrency)]
        for thread in self._clients:
            thread.start()

    def _client(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            with urllib.request.urlopen(self._request, timeout=60) as response:  # noqa: S310 (loopback)
                response.read()

    def stop(self) -> None:
        """Stop sending and wait for the requests in flight (each lasts a few seconds)."""
        self._stop.set()
        for thread in self._clients:
            thread.join(timeout=60)


def test_a_horizontal_pod_autoscaler_scales_on_a_simulators_queue_depth(
    local_cluster: LocalCluster,
    core_api: Any,
    api_client: Any,
    namespace: str,
    slow_simulator: SimulatorProcess,
) -> None:
    """The real HPA controller reads vllm_num_requests_waiting through the adapter and scales 1 -> 3."""
    from kubernetes import client

    port = slow_simulator.port
    apps: Any = client.AppsV1Api(api_client)
    apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "engine"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "engine"}},
                "template": {
                    "metadata": {"labels": {"app": "engine"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "engine",
                                "image": NOT_RUN_IMAGE,
                                "ports": [{"name": "http", "containerPort": port}],
                            }
                        ],
                        "tolerations": [{"operator": "Exists"}],
                    },
                },
            },
        },
    )
    (pod,) = wait_until(lambda: core_api.list_namespaced_pod(namespace).items, 60, "the Deployment's pod")
    # What the pod runtime does for a pod it runs: the simulator above is this pod's process.
    core_api.patch_namespaced_pod(
        pod.metadata.name,
        namespace,
        {"metadata": {"annotations": {LOOPBACK_ADDRESS_ANNOTATION: LOADED_SIMULATOR_ADDRESS}}},
    )
    _service_and_monitor(core_api, api_client, namespace, "engine", port)
    client.AutoscalingV2Api(api_client).create_namespaced_horizontal_pod_autoscaler(
        namespace,
        {
            "metadata": {"name": "engine"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "engine"},
                "minReplicas": 1,
                "maxReplicas": 3,
                "metrics": [
                    {
                        "type": "Pods",
                        "pods": {
                            "metric": {"name": "vllm_num_requests_waiting"},
                            "target": {"type": "AverageValue", "averageValue": "1"},
                        },
                    }
                ],
            },
        },
    )

    def current_average() -> str | None:
        status = (
            client.AutoscalingV2Api(api_client)
            .read_namespaced_horizontal_pod_autoscaler("engine", namespace)
            .status
        )
        metrics = status.current_metrics or []
        return metrics[0].pods.current.average_value if metrics and metrics[0].pods else None

    assert wait_until(current_average, 90, "the HPA to read the pod's queue depth") == "0"
    load = Load(f"http://{LOADED_SIMULATOR_ADDRESS}:{port}", concurrency=8, seconds=120)
    try:
        wait_until(
            lambda: apps.read_namespaced_deployment("engine", namespace).spec.replicas == 3,
            100,
            "the HPA to scale the Deployment to 3 on the queue",
        )
    finally:
        load.stop()
