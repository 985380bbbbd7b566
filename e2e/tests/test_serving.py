"""Serving for real: the simulator behind every pod of a DeepSeekDeployment, requests through the
operator's Services, the pods' /metrics, draining on delete, and the HorizontalPodAutoscaler scaling on
those metrics through Prometheus and prometheus-adapter.

On the local cluster the data plane runs a simulator process behind each pod and proxies Services on
loopback, and the cluster runs Prometheus and prometheus-adapter; on kind (`make e2e-kind`) the
simulator image runs in containers and hack/e2e-kind.sh installs Prometheus and the adapter.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from deepseek_simulator.testing import Samples, parse_metrics
from e2e_env import KIND_SIMULATOR_SAMPLE, Environment, RunningOperator, load_manifest, with_spec_changes
from e2e_kube import (
    REGION_LABEL,
    ClusterAccess,
    DeepSeekDeploymentHandle,
    Kubectl,
    TrafficClients,
    wait_for_state,
)
from kubernetes import client
from localcluster.waiting import wait_until

pytestmark = [pytest.mark.cluster]

# Per engine: the queue-depth gauge, the end-to-end latency histogram and the finished-requests counter
# each pod must expose, and a prefix no series of that engine may carry (the other dialect).
ENGINE_METRICS = {
    "vllm": (
        "vllm:num_requests_waiting",
        "vllm:e2e_request_latency_seconds",
        "vllm:request_success_total",
        "sglang:",
    ),
    "sglang": (
        "sglang:num_queue_reqs",
        "sglang:e2e_request_latency_seconds",
        "sglang:num_requests_total",
        "vllm:",
    ),
}
# What prometheus-adapter serves them as (the chart's rules; the custom metrics API allows no ':').
CUSTOM_QUEUE_DEPTH_METRIC = "vllm_num_requests_waiting"
CUSTOM_P99_LATENCY_METRIC = "vllm_e2e_request_latency_seconds_p99"


@dataclass(frozen=True)
class SimulatorDeployment:
    """e2e/kind/sample-simulator.yaml (with a test's changes), applied in a test namespace and Ready."""

    manifest: dict[str, Any]
    dsd: DeepSeekDeploymentHandle
    kubectl: Kubectl
    access: ClusterAccess
    clients: TrafficClients

    @property
    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.manifest["spec"]
        return spec

    @property
    def served_model_name(self) -> str:
        name: str = self.spec["model"]["servedModelName"]
        return name

    def service_url(self, service: str) -> str:
        return self.access.service_url(self.dsd.namespace, service)

    @property
    def front_service_url(self) -> str:
        """The front Service, named like the DeepSeekDeployment."""
        return self.service_url(self.dsd.name)

    def pod_metrics(self, pod_name: str) -> Samples:
        return parse_metrics(self.access.pod_metrics_text(self.dsd.core, self.dsd.namespace, pod_name))

    def finished_requests_per_region(self) -> dict[str, int]:
        """Requests each region's ready pods have answered, from their own /metrics."""
        finished_metric = ENGINE_METRICS[self.spec["engine"]["name"]][2]
        finished: dict[str, int] = {}
        for pod in self.dsd.ready_pods():
            region = pod.metadata.labels[REGION_LABEL]
            answered = sum(
                value
                for (name, labels), value in self.pod_metrics(pod.metadata.name).items()
                if name == finished_metric and dict(labels)["model_name"] == self.served_model_name
            )
            finished[region] = finished.get(region, 0) + int(answered)
        return finished

    def chat(self, name: str, url: str, count: int, max_tokens: int = 8) -> list[dict[str, Any]]:
        """`count` chat completions one after another through `url`; the answers."""
        self.clients.start(
            name,
            ["chat", url, self.served_model_name, "--count", str(count), "--max-tokens", str(max_tokens)],
        )
        return [json.loads(line) for line in self.clients.wait_output(name).splitlines() if line]

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


ApplySimulator = Callable[[Mapping[str, Any]], SimulatorDeployment]


def local_cluster_overlay(environment: Environment) -> dict[str, Any]:
    """On the local cluster Prometheus scrapes what ServiceMonitors select (as the Prometheus operator
    does), every second; kind's Prometheus scrapes every DeepSeekDeployment pod without one."""
    if environment.given_kubeconfig is not None:
        return {}
    return {"monitoring": {"serviceMonitor": {"enabled": True, "interval": "1s"}}}


@pytest.fixture
def apply_simulator(
    api_client: Any,
    namespace: str,
    operator: RunningOperator,
    e2e_environment: Environment,
    kubectl: Kubectl,
    cluster_access: ClusterAccess,
    tmp_path: Path,
) -> Iterator[ApplySimulator]:
    """Applies the simulator sample with a test's spec changes and waits until its pods serve."""
    created: list[TrafficClients] = []

    def apply(changes: Mapping[str, Any]) -> SimulatorDeployment:
        manifest = with_spec_changes(
            with_spec_changes(load_manifest(KIND_SIMULATOR_SAMPLE), local_cluster_overlay(e2e_environment)),
            changes,
        )
        dsd = DeepSeekDeploymentHandle(
            api_client, namespace, manifest["metadata"]["name"], e2e_environment.timeout, operator.describe()
        )
        sample_file = tmp_path / KIND_SIMULATOR_SAMPLE.name
        sample_file.write_text(yaml.safe_dump(manifest))
        kubectl("apply", "--namespace", namespace, "--filename", str(sample_file))
        dsd.wait_ready()
        spec = manifest["spec"]
        image = f"{spec['image']['repository']}:{spec['image']['tag']}"
        clients = cluster_access.traffic_clients(
            client.CoreV1Api(api_client), namespace, image, e2e_environment.timeout
        )
        created.append(clients)
        return SimulatorDeployment(manifest, dsd, kubectl, cluster_access, clients)

    yield apply
    for clients in created:
        clients.close()


@pytest.fixture
def simulator_deployment(apply_simulator: ApplySimulator) -> SimulatorDeployment:
    deployment = apply_simulator({})
    # replicas 2 = base 1 + 1 above it, whose on-demand share rounds up: 2 on-demand in us-east, and the
    # warm standby in eu-west.
    assert (deployment.spec["replicas"], deployment.spec["failover"]["standbyWarmReplicas"]) == (2, 1)
    wait_for_state(
        lambda: dict(deployment.dsd.ready_pods_per_region_and_pool()),
        {("us-east", "on-demand"): 2, ("eu-west", "on-demand"): 1},
        deployment.dsd.timeout,
        deployment.dsd.waiting_for(f"{deployment.dsd.name}'s simulator pods ready"),
    )
    return deployment


def test_requests_through_the_front_service_reach_only_the_active_region(
    simulator_deployment: SimulatorDeployment,
) -> None:
    deployment = simulator_deployment
    assert deployment.finished_requests_per_region() == {"us-east": 0, "eu-west": 0}

    answers = deployment.chat("front", deployment.front_service_url, count=6)

    assert len(answers) == 6
    for answer in answers:
        assert answer["object"] == "chat.completion"
        assert answer["model"] == deployment.served_model_name
        assert answer["choices"][0]["message"]["content"]
        assert answer["usage"]["completion_tokens"] == 8
    # The front Service selects the active region only: the warm standby answered nothing.
    assert deployment.finished_requests_per_region() == {"us-east": 6, "eu-west": 0}


def test_requests_through_a_region_service_reach_only_that_region(
    simulator_deployment: SimulatorDeployment,
) -> None:
    deployment = simulator_deployment
    name = deployment.dsd.name

    deployment.chat("standby", deployment.service_url(f"{name}-eu-west"), count=3)
    assert deployment.finished_requests_per_region() == {"us-east": 0, "eu-west": 3}

    deployment.chat("active", deployment.service_url(f"{name}-us-east"), count=4)
    assert deployment.finished_requests_per_region() == {"us-east": 4, "eu-west": 3}


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_every_pod_exposes_queue_depth_and_latency_in_its_engines_names(
    apply_simulator: ApplySimulator, engine: str
) -> None:
    deployment = apply_simulator({"engine": {"name": engine}})
    queue_depth, latency, _finished, other_dialect = ENGINE_METRICS[engine]
    pods = wait_until(
        lambda: found if len(found := deployment.dsd.ready_pods()) == 3 else None,
        deployment.dsd.timeout,
        deployment.dsd.waiting_for("3 ready pods (2 active, 1 warm standby)"),
    )
    deployment.chat("one", deployment.front_service_url, count=2)
    for pod in pods:
        samples = deployment.pod_metrics(pod.metadata.name)
        queue = {
            dict(labels)["model_name"]: value
            for (name, labels), value in samples.items()
            if name == queue_depth
        }
        # One series, labelled with the served model name (what the adapter rules and alerts match on).
        assert queue == {deployment.served_model_name: 0.0}, pod.metadata.name
        buckets = [
            dict(labels)
            for (name, labels) in samples
            if name == f"{latency}_bucket" and dict(labels)["model_name"] == deployment.served_model_name
        ]
        assert any(bucket["le"] == "+Inf" for bucket in buckets), pod.metadata.name
        # Only this engine's dialect: a query written for the other engine finds nothing.
        assert not [name for name, _ in samples if name.startswith(other_dialect)], pod.metadata.name


def test_a_pod_deleted_mid_request_finishes_it_within_the_drain_time(apply_simulator: ApplySimulator) -> None:
    """The pod's preStop sleep (10 s) and then SIGTERM: the simulator stops taking requests but finishes
    the one it runs, within spec.rollout.drainSeconds; the Deployment's new pod takes new requests."""
    deployment = apply_simulator(
        {"replicas": 1, "autoscaling": {"enabled": False}, "rollout": {"drainSeconds": 10}}
    )
    dsd = deployment.dsd
    (old_pod,) = [pod for pod in dsd.ready_pods() if pod.metadata.labels[REGION_LABEL] == "us-east"]
    url = deployment.service_url(f"{dsd.name}-us-east")
    # 40 tokens a second: 560 tokens take 14 s, so the request outlives the 10 s preStop sleep and
    # is still running when SIGTERM arrives.
    deployment.clients.start(
        "long", ["chat", url, deployment.served_model_name, "--count", "1", "--max-tokens", "560"]
    )
    wait_until(
        lambda: _running_requests(deployment, old_pod.metadata.name) == 1,
        dsd.timeout,
        f"the long request to run on {old_pod.metadata.name}",
    )
    deleted_at = time.monotonic()
    dsd.core.delete_namespaced_pod(old_pod.metadata.name, dsd.namespace)

    (answer,) = [json.loads(line) for line in deployment.clients.wait_output("long").splitlines() if line]
    finished_after = time.monotonic() - deleted_at
    assert answer["usage"]["completion_tokens"] == 560
    assert answer["choices"][0]["finish_reason"] == "length"
    assert finished_after < 10 + 10, (
        f"finished {finished_after:.1f}s after the delete: beyond preStop + drain"
    )
    # Meanwhile the replacement took over: a new request through the same Service is answered by it.
    answers = deployment.chat("after", url, count=1)
    assert answers[0]["usage"]["completion_tokens"] == 8
    wait_until(
        lambda: not [p for p in dsd.pods() if p.metadata.name == old_pod.metadata.name],
        dsd.timeout,
        f"{old_pod.metadata.name} to be gone once its process exited",
    )


def _running_requests(deployment: SimulatorDeployment, pod_name: str) -> int:
    samples = deployment.pod_metrics(pod_name)
    return int(
        sum(value for (name, _labels), value in samples.items() if name == "vllm:num_requests_running")
    )


# ------------------------------------------------------------------------------------------ autoscaling


def _hpa_metric_names(dsd: DeepSeekDeploymentHandle) -> set[str]:
    autoscaling_api: Any = client.AutoscalingV2Api(dsd.api_client)
    status = autoscaling_api.read_namespaced_horizontal_pod_autoscaler(dsd.name, dsd.namespace).status
    return {metric.pods.metric.name for metric in status.current_metrics or [] if metric.type == "Pods"}


@pytest.mark.slow
def test_hpa_scales_up_on_queue_depth_under_load_and_back_down_after(apply_simulator: ApplySimulator) -> None:
    deployment = apply_simulator(
        {
            "autoscaling": {
                "scaleDown": {"stabilizationWindowSeconds": 0, "maxPodsPerPeriod": 2, "periodSeconds": 15}
            }
        }
    )
    dsd = deployment.dsd
    autoscaling = deployment.spec["autoscaling"]
    selector = dsd.get()["status"]["selector"]  # the active region's pods: what the HPA averages over
    active_pods = {p.metadata.name for p in dsd.ready_pods() if p.metadata.labels[REGION_LABEL] == "us-east"}

    # Prometheus scraped the pods and the chart's adapter rules serve their queue depth by pod.
    wait_until(
        lambda: set(deployment.custom_metric(CUSTOM_QUEUE_DEPTH_METRIC, selector)) == active_pods,
        dsd.timeout,
        f"the custom metrics API to serve {CUSTOM_QUEUE_DEPTH_METRIC} for {sorted(active_pods)}",
    )
    wait_until(
        lambda: CUSTOM_QUEUE_DEPTH_METRIC in _hpa_metric_names(dsd),
        dsd.timeout,
        f"HorizontalPodAutoscaler {dsd.name} to read {CUSTOM_QUEUE_DEPTH_METRIC}",
    )
    assert dsd.get()["spec"]["replicas"] == autoscaling["minReplicas"]

    # 16 clients against 2 replicas of 2 sequences each: 12 wait, 6 per replica against a target of 2.
    deployment.clients.start(
        "load",
        ["load", deployment.front_service_url, deployment.served_model_name, "--workers", "16",
         "--seconds", f"{dsd.timeout:.0f}", "--max-tokens", "100"],
    )  # fmt: skip
    try:
        wait_until(
            lambda: dsd.get()["spec"]["replicas"] == autoscaling["maxReplicas"],
            dsd.timeout,
            dsd.waiting_for(f"the HPA to scale {dsd.name} to maxReplicas under load"),
        )
        # 4 = base 1 + 3 above it, of which ceil(1.5) = 2 on-demand: 3 on-demand, 1 spot in us-east.
        wait_for_state(
            lambda: dict(dsd.ready_pods_per_region_and_pool()),
            {("us-east", "on-demand"): 3, ("us-east", "spot"): 1, ("eu-west", "on-demand"): 1},
            dsd.timeout,
            dsd.waiting_for("the active region at 4 ready replicas, split 3 on-demand / 1 spot"),
        )
        # The new pods serve: every active pod answers requests, and the queue per pod falls (16
        # clients over 4 pods of 2 sequences: 2 waiting each, the target).
        wait_until(
            lambda: all(
                _finished(deployment, pod.metadata.name) > 0
                for pod in dsd.ready_pods()
                if pod.metadata.labels[REGION_LABEL] == "us-east"
            ),
            dsd.timeout,
            "every active pod, the new ones included, to have answered requests",
        )
        wait_until(
            lambda: (
                (values := deployment.custom_metric(CUSTOM_QUEUE_DEPTH_METRIC, selector))
                and len(values) == 4
                and sum(_quantity(v) for v in values.values()) / 4
                <= autoscaling["queueDepthTargetPerReplica"]
            ),
            dsd.timeout,
            "the average queue depth of the 4 pods to fall to the target",
        )
        # Under load the adapter also serves the p99 latency the chart's second rule computes.
        wait_until(
            lambda: deployment.custom_metric(CUSTOM_P99_LATENCY_METRIC, selector),
            dsd.timeout,
            f"the custom metrics API to serve {CUSTOM_P99_LATENCY_METRIC} under load",
        )
    finally:
        deployment.clients.delete("load")
    wait_until(
        lambda: dsd.get()["spec"]["replicas"] == autoscaling["minReplicas"],
        dsd.timeout * 2,
        dsd.waiting_for(f"the HPA to scale {dsd.name} back to minReplicas once the load stopped"),
    )


def _finished(deployment: SimulatorDeployment, pod_name: str) -> float:
    return sum(
        value
        for (name, _labels), value in deployment.pod_metrics(pod_name).items()
        if name == "vllm:request_success_total"
    )


def _quantity(value: str) -> float:
    """A custom-metrics value (a Kubernetes quantity such as '3', '1500m')."""
    return float(value[:-1]) / 1000 if value.endswith("m") else float(value)


@pytest.mark.slow
def test_hpa_scales_up_on_p99_latency_alone(apply_simulator: ApplySimulator) -> None:
    """A queue target no load reaches, and a p99 target every request misses: only latency can scale."""
    deployment = apply_simulator(
        {"autoscaling": {"queueDepthTargetPerReplica": 1000, "p99LatencyTargetMilliseconds": 500}}
    )
    dsd = deployment.dsd
    autoscaling = deployment.spec["autoscaling"]
    wait_until(
        lambda: CUSTOM_QUEUE_DEPTH_METRIC in _hpa_metric_names(dsd),
        dsd.timeout,
        f"HorizontalPodAutoscaler {dsd.name} to read its metrics",
    )
    # 2 clients on 2 replicas of 2 sequences: no queue at all, but each answer takes about 1 s
    # (40 tokens at 40 tokens a second), twice the 500 ms target.
    deployment.clients.start(
        "slow",
        ["load", deployment.front_service_url, deployment.served_model_name, "--workers", "2",
         "--seconds", f"{dsd.timeout:.0f}", "--max-tokens", "40"],
    )  # fmt: skip
    try:
        wait_until(
            lambda: CUSTOM_P99_LATENCY_METRIC in _hpa_metric_names(dsd),
            dsd.timeout,
            f"HorizontalPodAutoscaler {dsd.name} to read {CUSTOM_P99_LATENCY_METRIC}",
        )
        wait_until(
            lambda: dsd.get()["spec"]["replicas"] > autoscaling["minReplicas"],
            dsd.timeout,
            dsd.waiting_for(f"the HPA to scale {dsd.name} up on p99 latency"),
        )
    finally:
        deployment.clients.delete("slow")
