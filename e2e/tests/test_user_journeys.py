"""A user's journeys with the production sample, driven with kubectl as a user would: apply it and read
the printer columns, scale it, change its engine, delete it.

The same tests run on the simulated local cluster (`make test`, `make e2e`; the operator as a local
process) and on kind (`make e2e-kind`; the operator from the Helm chart, the sample with the simulator
image). Expected replica counts are worked out by hand from the sample and the documented split: a
region runs `onDemandBase` on-demand replicas, then the on-demand share of the rest rounded up.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e_env import Environment, RunningOperator, production_sample, with_spec_changes
from e2e_kube import (
    CONFIG_HASH_ANNOTATION,
    NODE_CAPACITY_TYPE_LABEL,
    NODE_GPU_PRODUCT_LABEL,
    NODE_REGION_LABEL,
    POOL_LABEL,
    REGION_LABEL,
    DeepSeekDeploymentHandle,
    Kubectl,
    node_labels,
    parse_table,
    wait_for_state,
)
from localcluster.waiting import WaitTimeoutError, wait_until

pytestmark = pytest.mark.cluster

# Each journey must stay quick on the local cluster, where pods are Ready the moment they are bound.
LOCAL_JOURNEY_BUDGET_SECONDS = 20

# The sample as applied. us-east runs spec.replicas = 4 = base 1 + 3 above it, of which ceil(1.5) = 2
# on-demand: 3 on-demand and 1 spot, 25% on spot. eu-west keeps its 1 warm standby replica on on-demand
# (the base).
AS_APPLIED: dict[str, Any] = {
    "columns": {"ACTIVE": "us-east", "READY": "4/4", "SPOT": "25%", "STATUS": "True"},
    "ready_pods": {("us-east", "on-demand"): 3, ("us-east", "spot"): 1, ("eu-west", "on-demand"): 1},
    "replicas": {"us-east-on-demand": 3, "us-east-spot": 1, "eu-west-on-demand": 1, "eu-west-spot": 0},
}


@dataclass
class AppliedSample:
    """The production sample in a test namespace, applied with kubectl from a file, as a user would."""

    manifest: dict[str, Any]
    file: Path
    namespace: str
    kubectl: Kubectl
    dsd: DeepSeekDeploymentHandle

    @property
    def name(self) -> str:
        return self.dsd.name

    def apply(self, manifest: dict[str, Any] | None = None) -> None:
        if manifest is not None:
            self.manifest = manifest
        self.file.write_text(yaml.safe_dump(self.manifest, sort_keys=False))
        self.kubectl("apply", "--namespace", self.namespace, "--filename", str(self.file))

    def printed_row(self, *options: str) -> dict[str, str]:
        """`kubectl get deepseekdeployment <name>` (short name dsd), as a row keyed by column header."""
        (row,) = parse_table(self.kubectl("get", "dsd", self.name, "--namespace", self.namespace, *options))
        return row

    def observed(self) -> dict[str, Any]:
        """What a user sees: Ready for the latest spec, the printer columns, where Ready pods run."""
        row = self.printed_row()
        return {
            "ready for the latest generation": self.dsd.ready_for_generation() is not None,
            "columns": {column: row[column] for column in ("ACTIVE", "READY", "SPOT", "STATUS")},
            "ready pods": dict(self.dsd.ready_pods_per_region_and_pool()),
            "deployment replicas": self.dsd.deployment_replicas(),
        }

    def wait_until_observed(
        self, columns: dict[str, str], ready_pods: dict[tuple[str, str], int], replicas: dict[str, int]
    ) -> None:
        """Wait for the whole user-visible state at once: each part alone may already be right while
        another still shows the previous spec."""
        expected = {
            "ready for the latest generation": True,
            "columns": columns,
            "ready pods": ready_pods,
            "deployment replicas": {f"{self.name}-{suffix}": count for suffix, count in replicas.items()},
        }
        wait_for_state(self.observed, expected, self.dsd.timeout, self.dsd.waiting_for("the state below"))


@pytest.fixture
def production(
    api_client: Any,
    namespace: str,
    operator: RunningOperator,
    e2e_environment: Environment,
    kubectl: Kubectl,
    tmp_path: Path,
) -> Iterator[AppliedSample]:
    manifest = production_sample(e2e_environment)
    # The numbers in these tests are worked out for this shape of the sample; say so if it changes.
    spec = manifest["spec"]
    assert (spec["replicas"], spec["spot"]["onDemandBase"], spec["spot"]["spotPercentage"]) == (4, 1, 50)
    assert [(r["name"], r["role"]) for r in spec["regions"]] == [
        ("us-east", "Active"),
        ("eu-west", "Standby"),
    ]
    assert spec["failover"]["standbyWarmReplicas"] == 1
    dsd = DeepSeekDeploymentHandle(
        api_client, namespace, manifest["metadata"]["name"], e2e_environment.timeout, operator.describe()
    )
    started = time.monotonic()
    yield AppliedSample(manifest, tmp_path / "production.yaml", namespace, kubectl, dsd)
    took = time.monotonic() - started
    print(f"journey took {took:.1f}s on the {e2e_environment.describe()}")
    if not e2e_environment.runs_containers:
        assert took < LOCAL_JOURNEY_BUDGET_SECONDS, f"the journey took {took:.1f}s on the local cluster"


def test_production_sample_becomes_ready_and_kubectl_shows_active_region_ready_and_spot_share(
    production: AppliedSample,
) -> None:
    production.apply()
    production.wait_until_observed(**AS_APPLIED)
    wide = production.printed_row("--output", "wide")
    assert (wide["NAME"], wide["REASON"], wide["MODEL"]) == (
        production.name,
        "AllReplicasReady",
        production.manifest["spec"]["model"]["name"],
    )

    accepted_products = production.manifest["spec"]["resources"]["gpuProducts"]
    for pod in production.dsd.ready_pods():
        labels = node_labels(production.dsd.core, pod.spec.node_name)
        where = f"pod {pod.metadata.name} on node {pod.spec.node_name}"
        assert labels[NODE_REGION_LABEL] == pod.metadata.labels[REGION_LABEL], where
        assert labels[NODE_CAPACITY_TYPE_LABEL] == pod.metadata.labels[POOL_LABEL], where
        assert labels[NODE_GPU_PRODUCT_LABEL] in accepted_products, where


def test_kubectl_scale_resizes_the_active_region_with_the_documented_spot_split(
    production: AppliedSample,
) -> None:
    # Without an autoscaler: where one runs it owns spec.replicas, and on kind it reads real metrics
    # and would undo a manual scale.
    production.apply(with_spec_changes(production.manifest, {"autoscaling": {"enabled": False}}))
    production.wait_until_observed(**AS_APPLIED)

    production.kubectl("scale", f"dsd/{production.name}", "--replicas=6", "--namespace", production.namespace)
    # 6 = base 1 + 5 above it: ceil(2.5) = 3 more on-demand, 2 spot (2 of 6 = 33%, rounded down).
    # The standby region is unchanged.
    production.wait_until_observed(
        columns={"ACTIVE": "us-east", "READY": "6/6", "SPOT": "33%", "STATUS": "True"},
        ready_pods={("us-east", "on-demand"): 4, ("us-east", "spot"): 2, ("eu-west", "on-demand"): 1},
        replicas={"us-east-on-demand": 4, "us-east-spot": 2, "eu-west-on-demand": 1, "eu-west-spot": 0},
    )

    production.kubectl("scale", f"dsd/{production.name}", "--replicas=2", "--namespace", production.namespace)
    # 2 = base 1 + 1 above it, whose on-demand share ceil(0.5) = 1 is rounded up: nothing left for spot.
    production.wait_until_observed(
        columns={"ACTIVE": "us-east", "READY": "2/2", "SPOT": "0%", "STATUS": "True"},
        ready_pods={("us-east", "on-demand"): 2, ("eu-west", "on-demand"): 1},
        replicas={"us-east-on-demand": 2, "us-east-spot": 0, "eu-west-on-demand": 1, "eu-west-spot": 0},
    )


def test_engine_change_rolls_every_pod_onto_the_new_config(production: AppliedSample) -> None:
    production.apply()
    production.wait_until_observed(**AS_APPLIED)
    hashes_before = {
        name: deployment.spec.template.metadata.annotations[CONFIG_HASH_ANNOTATION]
        for name, deployment in production.dsd.deployments().items()
    }
    old_pods = {pod.metadata.name for pod in production.dsd.pods()}
    assert len(old_pods) == 5

    production.apply(with_spec_changes(production.manifest, {"engine": {"maxBatchSize": 64}}))

    def rolled_onto_new_config() -> bool:
        pods = production.dsd.pods()
        return (
            production.dsd.ready_for_generation() is not None
            and len(production.dsd.ready_pods()) == 5
            and not ({pod.metadata.name for pod in pods} & old_pods)
            and all(
                {e.name: e.value for e in pod.spec.containers[0].env}["DSD_MAX_NUM_SEQS"] == "64"
                for pod in pods
            )
        )

    wait_until(
        rolled_onto_new_config,
        production.dsd.timeout,
        production.dsd.waiting_for("every pod replaced by a Ready one with DSD_MAX_NUM_SEQS=64"),
    )
    hashes_after = {
        name: deployment.spec.template.metadata.annotations[CONFIG_HASH_ANNOTATION]
        for name, deployment in production.dsd.deployments().items()
    }
    assert hashes_after.keys() == hashes_before.keys()
    assert all(hashes_after[name] != hashes_before[name] for name in hashes_before), (
        hashes_before,
        hashes_after,
    )
    production.wait_until_observed(**AS_APPLIED)  # the same shape as before, on the new pods


def test_deleting_the_deployment_removes_everything_it_made(production: AppliedSample) -> None:
    production.apply()
    production.wait_until_observed(**AS_APPLIED)
    name = production.name
    children = production.dsd.children()
    assert children["deployments"] == sorted(
        f"{name}-{region}-{pool}" for region in ("us-east", "eu-west") for pool in ("on-demand", "spot")
    )
    assert children["services"] == sorted([name, f"{name}-us-east", f"{name}-eu-west"])
    assert children["poddisruptionbudgets"] == sorted([f"{name}-us-east", f"{name}-eu-west"])
    assert children["horizontalpodautoscalers"] == [name]
    assert len(children["pods"]) == 5
    assert len(children["replicasets"]) >= 3  # one per Deployment with pods, at least

    # kubectl waits until the object is gone, i.e. until the operator has released its finalizer.
    production.kubectl(
        "delete", "dsd", name, "--namespace", production.namespace, f"--timeout={production.dsd.timeout:.0f}s"
    )
    assert not production.dsd.exists()
    try:
        wait_until(
            lambda: not any(production.dsd.children().values()),
            production.dsd.timeout,
            production.dsd.waiting_for(f"every child of {name} to be deleted"),
        )
    except WaitTimeoutError as error:
        raise AssertionError(f"{error}; still there: {production.dsd.children()}") from error
