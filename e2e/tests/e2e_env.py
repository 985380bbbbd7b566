"""Where the e2e suite runs (the simulated local cluster or a cluster given by E2E_KUBECONFIG), where
the operator runs, and the samples the suite applies there."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_SAMPLE = REPO_ROOT / "manifests" / "samples" / "production.yaml"
KIND_SIMULATOR_SAMPLE = REPO_ROOT / "e2e" / "kind" / "sample-simulator.yaml"

KUBECONFIG_VARIABLE = "E2E_KUBECONFIG"
OPERATOR_IN_CLUSTER_VARIABLE = "E2E_OPERATOR_IN_CLUSTER"

# On the local cluster kwok marks pods Ready at once; on kind, images start, probes pass and old pods
# sit in their preStop sleep, so every wait is longer.
LOCAL_TIMEOUT_SECONDS = 60.0
REAL_CLUSTER_TIMEOUT_SECONDS = 300.0


@dataclass(frozen=True)
class Environment:
    """The cluster the suite runs against and where the operator runs."""

    given_kubeconfig: Path | None
    operator_in_cluster: bool

    @property
    def runs_containers(self) -> bool:
        """A cluster given by E2E_KUBECONFIG (kind in `make e2e-kind`) runs real containers; the local
        cluster's kwok only pretends to."""
        return self.given_kubeconfig is not None

    @property
    def timeout(self) -> float:
        return REAL_CLUSTER_TIMEOUT_SECONDS if self.runs_containers else LOCAL_TIMEOUT_SECONDS

    def describe(self) -> str:
        cluster = (
            f"cluster of {self.given_kubeconfig}" if self.given_kubeconfig else "simulated local cluster"
        )
        operator = "operator in the cluster" if self.operator_in_cluster else "operator as a local process"
        return f"{cluster}, {operator}"


@dataclass(frozen=True)
class RunningOperator:
    """Where the operator runs, and where its log is, for failure messages."""

    where: str
    log: str

    def describe(self) -> str:
        return f"operator: {self.where}, log: {self.log}"


def environment_from(variables: Mapping[str, str]) -> Environment:
    """Read E2E_KUBECONFIG and E2E_OPERATOR_IN_CLUSTER.

    The operator is taken to run in the cluster when E2E_OPERATOR_IN_CLUSTER=1, and by default whenever
    E2E_KUBECONFIG is set: the suite cannot know it may start an operator against somebody's cluster.
    E2E_OPERATOR_IN_CLUSTER=0 runs it as a local process against any cluster.
    """
    kubeconfig = variables.get(KUBECONFIG_VARIABLE) or None
    in_cluster = variables.get(OPERATOR_IN_CLUSTER_VARIABLE, "")
    if in_cluster not in {"", "0", "1"}:
        raise ValueError(f"{OPERATOR_IN_CLUSTER_VARIABLE} must be 0 or 1 (or unset), not {in_cluster!r}")
    operator_in_cluster = in_cluster == "1" if in_cluster else kubeconfig is not None
    return Environment(
        given_kubeconfig=Path(kubeconfig) if kubeconfig else None, operator_in_cluster=operator_in_cluster
    )


def load_manifest(path: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = yaml.safe_load(path.read_text())
    return manifest


def simulator_overlay() -> dict[str, Any]:
    """What the production sample needs to run for real on a laptop's kind cluster, taken from
    e2e/kind/sample-simulator.yaml: the simulator image, small CPU/memory requests, a short drain."""
    spec = load_manifest(KIND_SIMULATOR_SAMPLE)["spec"]
    resources = spec["resources"]
    return {
        "image": spec["image"],
        "resources": {key: resources[key] for key in ("cpu", "memory", "sharedMemorySize")},
        "rollout": spec["rollout"],
    }


def _merge(base: dict[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def production_sample(environment: Environment) -> dict[str, Any]:
    """manifests/samples/production.yaml, as is on the local cluster; on a cluster that runs
    containers, with the simulator overlay (its GPUs, regions, pools and replicas unchanged)."""
    manifest = load_manifest(PRODUCTION_SAMPLE)
    if environment.runs_containers:
        manifest["spec"] = _merge(manifest["spec"], simulator_overlay())
    return manifest


def with_spec_changes(manifest: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `manifest` whose spec is deep-merged with `changes`."""
    changed = copy.deepcopy(dict(manifest))
    changed["spec"] = _merge(changed["spec"], changes)
    return changed
