"""The local cluster's data plane, as a kubelet and kube-proxy would be judged: readiness follows the pod's
probe against its process, a lost node takes its processes with it, a container that cannot be
configured says why, and the Service proxy never sends a byte anywhere but loopback."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from localcluster.addresses import LOOPBACK_ADDRESS_ANNOTATION
from localcluster.cluster import LocalCluster
from localcluster.faults import fail_nodes, restore_nodes
from localcluster.operator import OperatorProcess
from localcluster.waiting import wait_until
from operator_fixtures import Dsd

pytestmark = pytest.mark.cluster

SIMULATOR_SPEC: dict[str, Any] = {
    "model": {"name": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "servedModelName": "r1"},
    "image": {"repository": "deepseek-simulator", "tag": "test"},
    "engine": {"maxBatchSize": 2},
    "resources": {"gpusPerReplica": 1, "cpu": "100m", "memory": "256Mi", "sharedMemorySize": "64Mi"},
    "regions": [{"name": "us-east", "role": "Active"}],
    "failover": {"enabled": False},
    "replicas": 2,
    "rollout": {"drainSeconds": 2},
}


def _address(pod: Any) -> str:
    return str(pod.metadata.annotations[LOOPBACK_ADDRESS_ANNOTATION])


def _put_faults(pod: Any, faults: dict[str, Any]) -> None:
    request = urllib.request.Request(
        f"http://{_address(pod)}:8080/admin/faults",
        data=json.dumps(faults).encode(),
        headers={"Content-Type": "application/json"},
        method="PUT",
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (loopback)
        assert response.status == 200


def _pod_ready(dsd: Dsd, name: str) -> bool | None:
    pod = next((p for p in dsd.pods() if p.metadata.name == name), None)
    if pod is None:
        return None
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def _ready_endpoints(dsd: Dsd, service: str) -> set[str]:
    from kubernetes import client

    discovery: Any = client.DiscoveryV1Api(dsd.api_client)
    slices = discovery.list_namespaced_endpoint_slice(
        dsd.namespace, label_selector=f"kubernetes.io/service-name={service}"
    ).items
    return {
        endpoint.target_ref.name
        for endpoint_slice in slices
        for endpoint in endpoint_slice.endpoints or []
        if endpoint.conditions.ready
    }


def _listening(address: str, port: int = 8080) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((address, port)) == 0


def test_readiness_follows_the_pods_own_probe_against_its_process(
    operator: OperatorProcess, api_client: Any, namespace: str
) -> None:
    dsd = Dsd(api_client, namespace, "r1")
    dsd.create(SIMULATOR_SPEC)
    dsd.wait_ready(90)
    pod = dsd.ready_pods()[0]
    name = pod.metadata.name
    assert name in _ready_endpoints(dsd, "r1")

    # /health answers 503: the readiness probe (every 5 s, 3 failures) takes the pod out of the Service.
    _put_faults(pod, {"unhealthy": True})
    wait_until(lambda: _pod_ready(dsd, name) is False, 30, f"{name} NotReady after its probe fails")
    wait_until(lambda: name not in _ready_endpoints(dsd, "r1"), 15, f"{name} out of the ready endpoints")
    wait_until(lambda: dsd.get()["status"]["readyReplicas"] == 1, 15, "status to count one ready replica")

    _put_faults(pod, {"unhealthy": False})
    wait_until(lambda: _pod_ready(dsd, name), 30, f"{name} Ready again once its probe passes")
    wait_until(lambda: name in _ready_endpoints(dsd, "r1"), 15, f"{name} back in the ready endpoints")


def test_a_lost_node_takes_its_process_and_the_replacement_serves(
    operator: OperatorProcess, api_client: Any, namespace: str, local_cluster: LocalCluster, core_api: Any
) -> None:
    dsd = Dsd(api_client, namespace, "r1")
    dsd.create({**SIMULATOR_SPEC, "replicas": 1})
    dsd.wait_ready(90)
    (pod,) = dsd.ready_pods()
    address, node = _address(pod), pod.spec.node_name
    assert _listening(address)
    try:
        fail_nodes(core_api, f"kubernetes.io/hostname={node}")
        wait_until(
            lambda: not _listening(address), 30, f"the process of {pod.metadata.name} to die with {node}"
        )
        # The node lifecycle controller evicts the pod; its replacement runs elsewhere and serves.
        replacement = wait_until(
            lambda: next((p for p in dsd.ready_pods() if p.metadata.name != pod.metadata.name), None),
            90,
            "a ready replacement pod on another node",
        )
        assert replacement.spec.node_name != node
        url = local_cluster.service_url(namespace, "r1")
        body = {"model": "r1", "prompt": "hi", "max_tokens": 2}
        answer = wait_until(
            lambda: _completion(url, body), 30, "the front Service to answer from the replacement"
        )
        assert answer["usage"]["completion_tokens"] == 2
    finally:
        restore_nodes(core_api, f"kubernetes.io/hostname={node}")


def _completion(url: str, body: dict[str, Any]) -> dict[str, Any] | None:
    request = urllib.request.Request(  # noqa: S310 (the Service proxy's loopback address)
        f"{url}/v1/completions", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            answer: dict[str, Any] = json.loads(response.read())
            return answer
    except (urllib.error.URLError, ConnectionError):
        return None


def test_a_missing_secret_is_reported_as_the_kubelet_reports_it(
    operator: OperatorProcess, api_client: Any, namespace: str
) -> None:
    dsd = Dsd(api_client, namespace, "r1")
    source = {
        "type": "HuggingFace",
        "huggingFace": {"repoId": "deepseek-ai/x", "tokenSecretRef": {"name": "hub"}},
    }
    dsd.create({**SIMULATOR_SPEC, "replicas": 1, "model": {**SIMULATOR_SPEC["model"], "source": source}})

    def waiting_reason() -> tuple[str, str] | None:
        for pod in dsd.pods():
            for status in pod.status.container_statuses or []:
                if status.state.waiting and status.state.waiting.reason == "CreateContainerConfigError":
                    return status.state.waiting.reason, status.state.waiting.message
        return None

    _reason, message = wait_until(waiting_reason, 60, "CreateContainerConfigError on the pod")
    assert "Secret 'hub'" in message
    assert "HF_TOKEN" in message


def test_a_service_over_pods_that_do_not_really_run_refuses_connections(
    local_cluster: LocalCluster, core_api: Any, namespace: str
) -> None:
    """kwok's pods have pod IPs and endpoints but no process: the proxy resets the connection rather than
    send anything to the invented pod IP."""
    labels = {"app": "fake"}
    core_api.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "fake", "labels": labels},
            "spec": {
                "containers": [
                    {
                        "name": "c",
                        "image": "example.invalid/not-a-simulator",
                        "ports": [{"containerPort": 80}],
                    }
                ],
                "tolerations": [{"operator": "Exists"}],
            },
        },
    )
    core_api.create_namespaced_service(
        namespace,
        {
            "metadata": {"name": "fake"},
            "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 80}]},
        },
    )
    wait_until(
        lambda: (core_api.read_namespaced_pod("fake", namespace).status.pod_ip or "").startswith("10."),
        60,
        "kwok to give the pod an (invented) IP",
    )
    url = wait_until(
        lambda: _service_url(local_cluster, namespace), 30, "the proxy to listen for the Service"
    )
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(url, timeout=5)  # noqa: S310 (loopback)


def _service_url(cluster: LocalCluster, namespace: str) -> str | None:
    try:
        return cluster.service_url(namespace, "fake", "")
    except KeyError:
        return None


def test_a_short_grace_period_cuts_the_drain_with_sigkill(
    operator: OperatorProcess, api_client: Any, namespace: str, local_cluster: LocalCluster
) -> None:
    """`kubectl delete --grace-period=3`: the 10 s preStop sleep is cut at 3 s, SIGTERM starts a drain of up to
    10 s, and SIGKILL ends it when the grace period is over: the running request is cut, the pod goes."""
    dsd = Dsd(api_client, namespace, "r1")
    dsd.create({**SIMULATOR_SPEC, "replicas": 1, "rollout": {"drainSeconds": 10}})
    dsd.wait_ready(90)
    (pod,) = dsd.ready_pods()
    body = json.dumps({"model": "r1", "prompt": "hi", "max_tokens": 800}).encode()  # 20 s at 40 tokens/s
    request = urllib.request.Request(
        f"http://{_address(pod)}:8080/v1/completions", data=body, headers={"Content-Type": "application/json"}
    )
    outcome: dict[str, object] = {}

    def send() -> None:
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                outcome["status"] = response.status
        except (urllib.error.URLError, ConnectionError, OSError) as error:
            outcome["error"] = error
        outcome["seconds"] = time.monotonic() - started

    sender = threading.Thread(target=send)
    sender.start()
    time.sleep(1)
    deleted = time.monotonic()
    dsd.core.delete_namespaced_pod(pod.metadata.name, namespace, grace_period_seconds=3)
    sender.join(timeout=30)
    assert "error" in outcome, f"the request should have been cut, got {outcome}"
    assert float(str(outcome["seconds"])) < 10, outcome
    wait_until(
        lambda: all(
            p.metadata.name != pod.metadata.name for p in dsd.core.list_namespaced_pod(namespace).items
        ),
        15,
        "the pod to be removed once its process was killed",
    )
    assert time.monotonic() - deleted < 3 + 10, "removed within the grace period and a little"
