"""Fixtures shared by tests/ and e2e/tests/: one real local control plane per test session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from localcluster.cluster import LocalCluster
from localcluster.kube import api_client_for
from localcluster.operator import CRD_FILE
from localcluster.waiting import wait_until


@pytest.fixture(scope="session")
def local_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """The local cluster (etcd, kube-apiserver, controller-manager, scheduler, kwok) with the default fleet."""
    # The project's CRD goes in before the controllers start, so garbage collection knows it at once.
    cluster = LocalCluster(workdir=tmp_path_factory.mktemp("localcluster"), crds=[CRD_FILE])
    with cluster:
        yield cluster


@pytest.fixture(scope="session")
def kubeconfig(request: pytest.FixtureRequest) -> Path:
    """E2E_KUBECONFIG when given (e.g. a kind cluster), else the local cluster's."""
    given = os.environ.get("E2E_KUBECONFIG")
    if given:
        return Path(given)
    cluster: LocalCluster = request.getfixturevalue("local_cluster")
    return cluster.kubeconfig


@pytest.fixture(scope="session")
def api_client(kubeconfig: Path) -> Any:
    return api_client_for(kubeconfig)


@pytest.fixture(scope="session")
def core_api(api_client: Any) -> Any:
    from kubernetes import client

    return client.CoreV1Api(api_client)


@pytest.fixture
def namespace(core_api: Any) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    core_api.create_namespace({"metadata": {"name": name}})
    # Pods are refused until the service-account controller has created the namespace's default account.
    wait_until(
        lambda: any(
            sa.metadata.name == "default" for sa in core_api.list_namespaced_service_account(name).items
        ),
        30,
        f"the default ServiceAccount in {name}",
    )
    yield name
    core_api.delete_namespace(name)
