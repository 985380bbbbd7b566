"""The samples of manifests/samples/ as the integration tests apply them: with what they expect to exist."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from localcluster.waiting import wait_until
from operator_fixtures import DEPLOYMENT_LABEL, GROUP, PLURAL, VERSION, Dsd

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLES_DIR = REPO_ROOT / "manifests" / "samples"


@dataclass(frozen=True)
class Sample:
    path: Path
    body: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])


def samples() -> list[Sample]:
    """Every DeepSeekDeployment under manifests/samples/ (the kustomization is not one)."""
    found = []
    for path in sorted(SAMPLES_DIR.glob("*.yaml")):
        body = yaml.safe_load(path.read_text())
        if body.get("kind") == "DeepSeekDeployment":
            found.append(Sample(path, body))
    return found


@contextmanager
def model_volume(api_client: Any, namespace: str, sample: Sample) -> Iterator[None]:
    """The PersistentVolumeClaim a sample with a PVC model source mounts, bound to a PersistentVolume.

    The weights volume is site-specific (the samples say so), so the test provides one: a pre-bound
    hostPath volume, enough for the scheduler's volume binding; kwok runs no container to mount it.
    """
    source = sample.body["spec"]["model"].get("source") or {}
    if source.get("type") != "PVC":
        yield
        return
    claim = source["pvc"]["claimName"]
    volume = f"{namespace}-{claim}"
    core: Any = client.CoreV1Api(api_client)
    access = {"accessModes": ["ReadOnlyMany"], "storageClassName": ""}
    core.create_persistent_volume(
        {
            "metadata": {"name": volume},
            "spec": {
                **access,
                "capacity": {"storage": "1Ti"},
                "persistentVolumeReclaimPolicy": "Retain",
                "hostPath": {"path": f"/models/{claim}"},
                "claimRef": {"namespace": namespace, "name": claim},
            },
        }
    )
    try:
        core.create_namespaced_persistent_volume_claim(
            namespace,
            {
                "metadata": {"name": claim},
                "spec": {**access, "volumeName": volume, "resources": {"requests": {"storage": "1Ti"}}},
            },
        )
        wait_until(
            lambda: core.read_namespaced_persistent_volume_claim(claim, namespace).status.phase == "Bound",
            30,
            f"PVC {namespace}/{claim} to be bound",
        )
        yield
    finally:
        core.delete_persistent_volume(volume)


@contextmanager
def ready_sample(
    api_client: Any, namespace: str, sample: Sample, timeout: float = 90
) -> Iterator[dict[str, Any]]:
    """Create the sample as written, wait for Ready=True for its generation and yield the object; then
    delete it and wait for its pods to go: the next sample may need the same GPUs (the large one takes
    every H100 of a region's on-demand pool)."""
    custom: Any = client.CustomObjectsApi(api_client)
    dsd = Dsd(api_client, namespace, sample.name)
    with model_volume(api_client, namespace, sample):
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, sample.body)
        try:
            yield dsd.wait_ready(timeout)
        finally:
            _delete_with_children(api_client, namespace, sample.name)


def reconcile_sample_to_ready(
    api_client: Any, namespace: str, sample: Sample, timeout: float = 90
) -> dict[str, Any]:
    """The sample reconciled to Ready=True for its generation (and deleted again, see ready_sample)."""
    with ready_sample(api_client, namespace, sample, timeout) as ready:
        return ready


def _delete_with_children(api_client: Any, namespace: str, name: str) -> None:
    """Delete the DeepSeekDeployment and wait until its pods are gone (terminating pods still hold GPUs).

    Its Deployments are deleted here too rather than left to the garbage collector, which learns a
    new CRD's objects only at its next resync (up to 30 s after the CRD is installed). They are
    deleted until none come back: a reconcile that read the owner just before it went may still
    apply a child after it.
    """
    custom: Any = client.CustomObjectsApi(api_client)
    apps: Any = client.AppsV1Api(api_client)
    core: Any = client.CoreV1Api(api_client)
    try:
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    except ApiException as error:
        if error.status != 404:
            raise
    selector = f"{DEPLOYMENT_LABEL}={name}"

    def children_gone() -> bool:
        apps.delete_collection_namespaced_deployment(
            namespace, label_selector=selector, propagation_policy="Background"
        )
        return not core.list_namespaced_pod(namespace, label_selector=selector).items

    wait_until(children_gone, 60, f"the pods of {namespace}/{name} to be deleted", interval=0.5)
