"""Fixtures of the e2e suite: the environment, the operator where it runs there, kubectl, and how the
suite reaches Services and pods there (in-cluster on kind, through the data plane locally)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_env import Environment, RunningOperator, environment_from
from e2e_kube import (
    CRD_NAME,
    ClusterAccess,
    InClusterAccess,
    Kubectl,
    LocalAccess,
    crd_established,
    wait_for_garbage_collector,
)
from kubernetes import client
from localcluster.cluster import LocalCluster
from localcluster.operator import OperatorProcess, install_crd_and_priority_classes
from localcluster.tools import ensure_tools
from localcluster.waiting import wait_until

# How the Helm chart labels the operator's Deployment (charts/deepseek-operator/templates/_helpers.tpl).
OPERATOR_DEPLOYMENT_SELECTOR = "app.kubernetes.io/name=deepseek-operator,app.kubernetes.io/component=operator"


@pytest.fixture(scope="session")
def e2e_environment() -> Environment:
    try:
        return environment_from(os.environ)
    except ValueError as error:
        raise pytest.UsageError(str(error)) from error


@pytest.fixture(scope="session")
def cluster_access(request: pytest.FixtureRequest, e2e_environment: Environment) -> ClusterAccess:
    """Client pods and DNS names on a cluster given by E2E_KUBECONFIG; on the local cluster, the data
    plane's Service proxy and the loopback addresses of the simulator processes."""
    if e2e_environment.given_kubeconfig is not None:
        return InClusterAccess()
    cluster: LocalCluster = request.getfixturevalue("local_cluster")
    return LocalAccess(lambda namespace, service: cluster.service_url(namespace, service))


@pytest.fixture(scope="session")
def kubectl(kubeconfig: Path) -> Kubectl:
    return Kubectl(ensure_tools(["kubectl"])["kubectl"].path, kubeconfig)


@pytest.fixture(scope="module")
def deepseek_crd(api_client: Any, e2e_environment: Environment) -> None:
    """The DeepSeekDeployment CRD: installed here for a local operator, by the Helm chart otherwise."""
    if e2e_environment.operator_in_cluster:
        wait_until(
            lambda: crd_established(api_client),
            60,
            f"CRD {CRD_NAME} to be Established (the operator's Helm chart installs it)",
        )
    else:
        install_crd_and_priority_classes(api_client)
        wait_for_garbage_collector(api_client, "default", timeout=90)


def _available_operator_deployment(api_client: Any) -> Any:
    apps: Any = client.AppsV1Api(api_client)
    for deployment in apps.list_deployment_for_all_namespaces(
        label_selector=OPERATOR_DEPLOYMENT_SELECTOR
    ).items:
        if (deployment.status.available_replicas or 0) >= 1:
            return deployment
    return None


@pytest.fixture(scope="module")
def operator(
    deepseek_crd: None,
    api_client: Any,
    kubeconfig: Path,
    e2e_environment: Environment,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[RunningOperator]:
    """The operator, running: the chart's Deployment in the cluster (waited for, never started here),
    or a local `deepseek-operator` process for this module (so that no two run at once)."""
    if e2e_environment.operator_in_cluster:
        deployment = wait_until(
            lambda: _available_operator_deployment(api_client),
            120,
            f"an available operator Deployment ({OPERATOR_DEPLOYMENT_SELECTOR}) from the Helm chart",
        )
        namespace, name = deployment.metadata.namespace, deployment.metadata.name
        yield RunningOperator(
            where=f"Deployment {namespace}/{name}", log=f"kubectl logs -n {namespace} deployment/{name}"
        )
        return
    log_path = tmp_path_factory.mktemp("operator") / "operator.log"
    local: LocalCluster | None = (
        None if e2e_environment.given_kubeconfig else request.getfixturevalue("local_cluster")
    )
    with OperatorProcess(kubeconfig, log_path, monitored_by=local):
        yield RunningOperator(where="local process", log=str(log_path))
