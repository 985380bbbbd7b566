"""KEDA on the local cluster (LocalCluster(keda=True)), real operator and metrics API server: a ScaledObject
with a Prometheus trigger on the cluster's own Prometheus drives a HorizontalPodAutoscaler through
external.metrics.k8s.io, and the Deployment scales."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from localcluster.cluster import LocalCluster
from localcluster.waiting import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


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
