"""What only real containers show: the simulator image serving through the operator's Services, its
/metrics, and the HorizontalPodAutoscaler scaling on them through Prometheus and prometheus-adapter.

Marked `containers`: deselected on the simulated local cluster (kwok runs no container); run by
`make e2e-kind`, where hack/e2e-kind.sh has installed Prometheus, prometheus-adapter with the chart's
rules, and the operator chart, and loaded the simulator image that e2e/kind/sample-simulator.yaml names.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from deepseek_simulator.testing import Samples, parse_metrics
from e2e_env import KIND_SIMULATOR_SAMPLE, Environment, RunningOperator, load_manifest
from e2e_kube import (
    INFERENCE_PORT,
    REGION_LABEL,
    DeepSeekDeploymentHandle,
    Kubectl,
    TrafficClientPods,
    pod_metrics_text,
    wait_for_state,
)
from kubernetes import client
from localcluster.waiting import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.containers]

QUEUE_DEPTH_METRIC = "vllm:num_requests_waiting"
FINISHED_REQUESTS_METRIC = "vllm:request_success_total"
# What prometheus-adapter serves them as (the chart's rules; the custom metrics API allows no ':').
CUSTOM_QUEUE_DEPTH_METRIC = "vllm_num_requests_waiting"
CUSTOM_P99_LATENCY_METRIC = "vllm_e2e_request_latency_seconds_p99"


@dataclass(frozen=True)
class SimulatorDeployment:
    """e2e/kind/sample-simulator.yaml, applied in a test namespace and Ready."""

    manifest: dict[str, Any]
    dsd: DeepSeekDeploymentHandle
    kubectl: Kubectl
    clients: TrafficClientPods

    @property
    def served_model_name(self) -> str:
        name: str = self.manifest["spec"]["model"]["servedModelName"]
        return name

    @property
    def front_service_url(self) -> str:
        """The front Service (named like the DeepSeekDeployment), from a pod in the same namespace."""
        return f"http://{self.dsd.name}:{INFERENCE_PORT}"

    def pod_metrics(self, pod_name: str) -> Samples:
        return parse_metrics(pod_metrics_text(self.dsd.core, self.dsd.namespace, pod_name))

    def custom_metric(self, metric: str, selector: str) -> dict[str, str]:
        """pod name -> value of a pods metric in the custom metrics API, as the HPA asks for it; empty
        while prometheus-adapter has no such series yet (it answers NotFound until its next relist)."""
        path = (
            f"/apis/custom.metrics.k8s.io/v1beta1/namespaces/{self.dsd.namespace}/pods/*/{metric}"
            f"?labelSelector={urllib.parse.quote(selector)}"
        )
        result = self.kubectl.run("get", "--raw", path)
        if result.returncode != 0:
            assert "NotFound" in result.stderr, f"kubectl get --raw {path}: {result.stderr.strip()}"
            return {}
        items = json.loads(result.stdout)["items"]
        return {item["describedObject"]["name"]: item["value"] for item in items}


@pytest.fixture
def simulator_deployment(
    api_client: Any,
    namespace: str,
    operator: RunningOperator,
    e2e_environment: Environment,
    kubectl: Kubectl,
    tmp_path: Path,
) -> SimulatorDeployment:
    manifest = load_manifest(KIND_SIMULATOR_SAMPLE)
    spec = manifest["spec"]
    dsd = DeepSeekDeploymentHandle(
        api_client, namespace, manifest["metadata"]["name"], e2e_environment.timeout, operator.describe()
    )
    sample_file = tmp_path / KIND_SIMULATOR_SAMPLE.name
    sample_file.write_text(yaml.safe_dump(manifest))
    kubectl("apply", "--namespace", namespace, "--filename", str(sample_file))
    # replicas 2 = base 1 + 1 above it, whose on-demand share rounds up: 2 on-demand in us-east, and the
    # warm standby in eu-west.
    assert (spec["replicas"], spec["failover"]["standbyWarmReplicas"]) == (2, 1)
    wait_for_state(
        lambda: {
            "ready": dsd.ready_for_generation() is not None,
            "pods": dict(dsd.ready_pods_per_region_and_pool()),
        },
        {"ready": True, "pods": {("us-east", "on-demand"): 2, ("eu-west", "on-demand"): 1}},
        dsd.timeout,
        dsd.waiting_for(f"{dsd.name} Ready with its simulator pods"),
    )
    image = f"{spec['image']['repository']}:{spec['image']['tag']}"
    clients = TrafficClientPods(client.CoreV1Api(api_client), namespace, image, e2e_environment.timeout)
    return SimulatorDeployment(manifest, dsd, kubectl, clients)


def finished_requests_per_region(deployment: SimulatorDeployment) -> dict[str, int]:
    """Requests each region's pods have answered, from their own /metrics."""
    finished: dict[str, int] = {}
    for pod in deployment.dsd.ready_pods():
        region = pod.metadata.labels[REGION_LABEL]
        samples = deployment.pod_metrics(pod.metadata.name)
        answered = sum(
            value
            for (name, labels), value in samples.items()
            if name == FINISHED_REQUESTS_METRIC and dict(labels)["model_name"] == deployment.served_model_name
        )
        finished[region] = finished.get(region, 0) + int(answered)
    return finished


def test_chat_completions_through_the_front_service_reach_the_active_region(
    simulator_deployment: SimulatorDeployment,
) -> None:
    deployment = simulator_deployment
    assert finished_requests_per_region(deployment) == {"us-east": 0, "eu-west": 0}

    deployment.clients.start(
        "chat-client",
        [
            "chat",
            deployment.front_service_url,
            deployment.served_model_name,
            "--count",
            "4",
            "--max-tokens",
            "8",
        ],
    )
    answers = [
        json.loads(line) for line in deployment.clients.wait_output("chat-client").splitlines() if line
    ]

    assert len(answers) == 4
    for answer in answers:
        assert answer["object"] == "chat.completion"
        assert answer["model"] == deployment.served_model_name
        assert answer["choices"][0]["message"]["content"]
        assert answer["usage"]["completion_tokens"] == 8
    # The front Service selects the active region only: the warm standby answered nothing.
    assert finished_requests_per_region(deployment) == {"us-east": 4, "eu-west": 0}


def test_inference_pods_expose_queue_depth_for_the_served_model(
    simulator_deployment: SimulatorDeployment,
) -> None:
    deployment = simulator_deployment
    pods = deployment.dsd.ready_pods()
    assert len(pods) == 3
    for pod in pods:
        samples = deployment.pod_metrics(pod.metadata.name)
        queue_depth = {
            dict(labels)["model_name"]: value
            for (name, labels), value in samples.items()
            if name == QUEUE_DEPTH_METRIC
        }
        # One series, labelled with the served model name (what the HPA's adapter rule and alerts match on).
        assert queue_depth == {deployment.served_model_name: 0.0}, pod.metadata.name
        # The vLLM dialect only, as DSD_ENGINE=vllm says: a query for SGLang's names would find nothing.
        assert not [name for name, _ in samples if name.startswith("sglang:")], pod.metadata.name


@pytest.mark.slow
def test_hpa_scales_the_deployment_on_queue_depth_under_load(
    simulator_deployment: SimulatorDeployment,
) -> None:
    deployment = simulator_deployment
    dsd = deployment.dsd
    autoscaling = deployment.manifest["spec"]["autoscaling"]
    selector = dsd.get()["status"]["selector"]  # the active region's pods: what the HPA averages over
    active_pods = {
        pod.metadata.name for pod in dsd.ready_pods() if pod.metadata.labels[REGION_LABEL] == "us-east"
    }

    # Prometheus scraped the pods and the chart's adapter rules serve their queue depth by pod.
    wait_until(
        lambda: set(deployment.custom_metric(CUSTOM_QUEUE_DEPTH_METRIC, selector)) == active_pods,
        dsd.timeout,
        f"the custom metrics API to serve {CUSTOM_QUEUE_DEPTH_METRIC} for {sorted(active_pods)}",
    )
    autoscaling_api: Any = client.AutoscalingV2Api(dsd.api_client)

    def hpa_metric_names() -> set[str]:
        status = autoscaling_api.read_namespaced_horizontal_pod_autoscaler(dsd.name, dsd.namespace).status
        return {metric.pods.metric.name for metric in status.current_metrics or [] if metric.type == "Pods"}

    wait_until(
        lambda: CUSTOM_QUEUE_DEPTH_METRIC in hpa_metric_names(),
        dsd.timeout,
        f"HorizontalPodAutoscaler {dsd.name} to read {CUSTOM_QUEUE_DEPTH_METRIC}",
    )
    assert dsd.get()["spec"]["replicas"] == autoscaling["minReplicas"]

    # 16 clients against 2 replicas of 2 sequences each: 12 wait, 6 per replica against a target of 2.
    deployment.clients.start(
        "load",
        [
            "load",
            deployment.front_service_url,
            deployment.served_model_name,
            "--workers",
            "16",
            "--seconds",
            f"{dsd.timeout:.0f}",
            "--max-tokens",
            "100",
        ],
    )
    try:
        wait_until(
            lambda: dsd.get()["spec"]["replicas"] == autoscaling["maxReplicas"],
            dsd.timeout,
            dsd.waiting_for(f"the HPA to scale {dsd.name} to maxReplicas under load"),
        )
        # 4 = base 1 + 3 above it, of which ceil(1.5) = 2 on-demand: 3 on-demand, 1 spot in us-east.
        wait_for_state(
            lambda: {
                "replicas": dsd.deployment_replicas(),
                "ready pods": dict(dsd.ready_pods_per_region_and_pool()),
            },
            {
                "replicas": {
                    f"{dsd.name}-us-east-on-demand": 3,
                    f"{dsd.name}-us-east-spot": 1,
                    f"{dsd.name}-eu-west-on-demand": 1,
                    f"{dsd.name}-eu-west-spot": 0,
                },
                "ready pods": {
                    ("us-east", "on-demand"): 3,
                    ("us-east", "spot"): 1,
                    ("eu-west", "on-demand"): 1,
                },
            },
            dsd.timeout,
            dsd.waiting_for("the active region at 4 replicas, split 3 on-demand / 1 spot"),
        )
        # Under load the adapter also serves the p99 latency the chart's second rule computes.
        wait_until(
            lambda: deployment.custom_metric(CUSTOM_P99_LATENCY_METRIC, selector),
            dsd.timeout,
            f"the custom metrics API to serve {CUSTOM_P99_LATENCY_METRIC} under load",
        )
    finally:
        deployment.clients.delete("load")
