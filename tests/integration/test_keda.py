"""KEDA on the local cluster (LocalCluster(keda=True)), real operator and metrics API server: a ScaledObject
with a Prometheus trigger on the cluster's own Prometheus drives a HorizontalPodAutoscaler through
external.metrics.k8s.io, and the Deployment scales."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from localcluster.cluster import LocalCluster
from localcluster.waiting import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

TRAFFIC_CLIENT = Path(__file__).resolve().parents[2] / "e2e" / "tests" / "traffic_client.py"


@pytest.fixture(scope="module")
def keda_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A cluster of its own: the session's has no KEDA, so the operator reports it missing there."""
    with LocalCluster(workdir=tmp_path_factory.mktemp("keda-cluster"), keda=True) as cluster:
        yield cluster


def test_a_scaled_object_on_the_local_prometheus_scales_its_deployment(keda_cluster: LocalCluster) -> None:
    from kubernetes import client

    api_client = keda_cluster.api_client()
    core: Any = client.CoreV1Api(api_client)
    apps: Any = client.AppsV1Api(api_client)
    namespace = "keda-test"
    core.create_namespace({"metadata": {"name": namespace}})
    wait_until(
        lambda: any(
            sa.metadata.name == "default" for sa in core.list_namespaced_service_account(namespace).items
        ),
        30,
        "the default ServiceAccount",
    )
    apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [{"name": "web", "image": "web"}],
                        "tolerations": [{"operator": "Exists"}],
                    },
                },
            },
        },
    )
    client.CustomObjectsApi(api_client).create_namespaced_custom_object(
        "keda.sh",
        "v1alpha1",
        namespace,
        "scaledobjects",
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": "web"},
            "spec": {
                "scaleTargetRef": {"name": "web"},
                "pollingInterval": 1,
                "minReplicaCount": 1,
                "maxReplicaCount": 4,
                "triggers": [
                    {
                        "type": "prometheus",
                        # A constant query: 8 against a target of 2 per replica asks for 4 replicas.
                        "metadata": {
                            "serverAddress": keda_cluster.prometheus_url,
                            "query": "vector(8)",
                            "threshold": "2",
                        },
                    }
                ],
            },
        },
    )
    autoscaling: Any = client.AutoscalingV2Api(api_client)
    hpa = wait_until(
        lambda: next(iter(autoscaling.list_namespaced_horizontal_pod_autoscaler(namespace).items), None),
        60,
        "KEDA to create the HorizontalPodAutoscaler",
    )
    assert hpa.spec.metrics[0].type == "External"
    wait_until(
        lambda: apps.read_namespaced_deployment("web", namespace).spec.replicas == 4,
        120,
        "the HorizontalPodAutoscaler to scale the Deployment to 4 on KEDA's external metric",
    )


def test_a_scaler_never_reaches_an_address_off_loopback(keda_cluster: LocalCluster) -> None:
    """A ScaledObject naming kwok's kind of pod IP: KEDA's request goes to the dead-end proxy on loopback."""
    from kubernetes import client

    api_client = keda_cluster.api_client()
    core: Any = client.CoreV1Api(api_client)
    apps: Any = client.AppsV1Api(api_client)
    namespace = "keda-elsewhere"
    core.create_namespace({"metadata": {"name": namespace}})
    apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "web"}]},
                },
            },
        },
    )
    client.CustomObjectsApi(api_client).create_namespaced_custom_object(
        "keda.sh",
        "v1alpha1",
        namespace,
        "scaledobjects",
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": "web"},
            "spec": {
                "scaleTargetRef": {"name": "web"},
                "pollingInterval": 1,
                "triggers": [
                    {
                        "type": "prometheus",
                        "metadata": {
                            "serverAddress": "http://10.244.0.1:9090",
                            "query": "vector(8)",
                            "threshold": "2",
                        },
                    }
                ],
            },
        },
    )
    log = keda_cluster.workdir / "logs" / "keda.log"
    wait_until(
        lambda: "proxyconnect tcp: dial tcp 127.0.0.1:9" in log.read_text(errors="replace"),
        60,
        "KEDA's scaler to fail on the dead-end proxy",
    )


def test_a_deepseek_deployment_on_keda_scales_on_its_real_queue_and_back(
    keda_cluster: LocalCluster, tmp_path: Path
) -> None:
    """`autoscaling.provider: keda`, proven like the HPA path: the operator's ScaledObject queries the
    cluster's Prometheus for the simulator pods' queue; KEDA's HPA raises the DeepSeekDeployment through
    its scale subresource under load, the new pods serve, and it comes back down after the load."""
    from kubernetes import client
    from localcluster.operator import OperatorProcess, install_crd_and_priority_classes
    from operator_fixtures import Dsd

    api_client = keda_cluster.api_client()
    core: Any = client.CoreV1Api(api_client)
    install_crd_and_priority_classes(api_client)
    namespace = "keda-dsd"
    core.create_namespace({"metadata": {"name": namespace}})
    wait_until(
        lambda: any(
            sa.metadata.name == "default" for sa in core.list_namespaced_service_account(namespace).items
        ),
        30,
        "the default ServiceAccount",
    )
    spec = {
        "model": {"name": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "servedModelName": "r1"},
        "image": {"repository": "deepseek-simulator", "tag": "keda"},
        "engine": {"maxBatchSize": 2},
        "resources": {"gpusPerReplica": 1, "cpu": "100m", "memory": "256Mi", "sharedMemorySize": "64Mi"},
        "regions": [{"name": "us-east", "role": "Active"}],
        "failover": {"enabled": False},
        "replicas": 2,
        "autoscaling": {
            "enabled": True,
            "provider": "keda",
            "minReplicas": 2,
            "maxReplicas": 4,
            "queueDepthTargetPerReplica": 2,
            "scaleUp": {"stabilizationWindowSeconds": 0, "maxPodsPerPeriod": 2, "periodSeconds": 15},
            "scaleDown": {"stabilizationWindowSeconds": 0, "maxPodsPerPeriod": 2, "periodSeconds": 15},
        },
        "monitoring": {
            "prometheusUrl": keda_cluster.prometheus_url,
            "serviceMonitor": {"enabled": True, "interval": "1s"},
        },
        "rollout": {"drainSeconds": 2},
    }
    dsd = Dsd(api_client, namespace, "r1")
    with OperatorProcess(keda_cluster.kubeconfig, tmp_path / "operator.log", monitored_by=keda_cluster):
        dsd.create(spec)
        dsd.wait_ready(90)
        autoscaling: Any = client.AutoscalingV2Api(api_client)
        hpa = wait_until(
            lambda: next(iter(autoscaling.list_namespaced_horizontal_pod_autoscaler(namespace).items), None),
            60,
            "KEDA to create the HorizontalPodAutoscaler of the operator's ScaledObject",
        )
        assert hpa.spec.scale_target_ref.kind == "DeepSeekDeployment"
        # 16 clients on 2 replicas of 2 sequences: 12 waiting, against a target of 2 per replica.
        url = keda_cluster.service_url(namespace, "r1")
        command = [
            sys.executable,
            str(TRAFFIC_CLIENT),
            "load",
            url,
            "r1",
            "--workers",
            "16",
            "--seconds",
            "120",
        ]
        load = subprocess.Popen([*command, "--max-tokens", "100"], stdout=subprocess.PIPE, text=True)
        try:
            wait_until(
                lambda: dsd.get()["spec"]["replicas"] == 4, 90, "KEDA's HPA to scale r1 to 4 under load"
            )
            wait_until(lambda: len(dsd.ready_pods()) == 4, 60, "4 ready simulator pods")
        finally:
            load.kill()
            load.communicate(timeout=30)
        wait_until(lambda: dsd.get()["spec"]["replicas"] == 2, 120, "r1 back to 2 replicas after the load")
