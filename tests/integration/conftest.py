"""Fixtures of the integration tests that run the real operator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from localcluster.cluster import LocalCluster
from localcluster.operator import OperatorProcess, install_crd_and_priority_classes


@pytest.fixture(scope="module")
def operator(
    local_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The operator as a real process, one per test module (two at once would both reconcile)."""
    install_crd_and_priority_classes(local_cluster.api_client())
    process = OperatorProcess(
        local_cluster.kubeconfig,
        tmp_path_factory.mktemp("operator") / "operator.log",
        monitored_by=local_cluster,  # its metrics in the cluster's Prometheus, as the chart arranges
    )
    with process:
        yield process
