"""Helpers for tests that run the real operator against the local cluster."""

from __future__ import annotations

import copy
from typing import Any

from deepseek_operator.status import is_ready_for_its_generation
from kubernetes import client
from localcluster.waiting import wait_until

GROUP = "serving.deepseek-operator.io"
VERSION = "v1alpha1"
PLURAL = "deepseekdeployments"
DEPLOYMENT_LABEL = f"{GROUP}/deployment"
REGION_LABEL = f"{GROUP}/region"
POOL_LABEL = f"{GROUP}/pool"


def two_region_spot_spec(replicas: int = 4) -> dict[str, Any]:
    """Regions of the local fleet, spot above an on-demand base, H100s only."""
    return {
        "model": {"name": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"},
        "resources": {"gpusPerReplica": 1, "gpuProducts": ["NVIDIA-H100-80GB-HBM3"]},
        "regions": [{"name": "us-east", "role": "Active"}, {"name": "eu-west", "role": "Standby"}],
        "replicas": replicas,
        "spot": {"enabled": True, "onDemandBase": 1, "spotPercentage": 50},
        "failover": {"standbyWarmReplicas": 1},
    }


def dsd_object(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "DeepSeekDeployment",
        "metadata": {"name": name},
        "spec": copy.deepcopy(spec),
    }


class Dsd:
    """One DeepSeekDeployment in one namespace, and what the tests ask of it."""

    def __init__(self, api_client: Any, namespace: str, name: str) -> None:
        self.api_client = api_client
        self.custom: Any = client.CustomObjectsApi(api_client)
        self.apps: Any = client.AppsV1Api(api_client)
        self.core: Any = client.CoreV1Api(api_client)
        self.namespace = namespace
        self.name = name

    def create(self, spec: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, dsd_object(self.name, spec)
        )
        return created

    def get(self) -> dict[str, Any]:
        found: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, self.name
        )
        return found

    def patch_spec(self, spec_patch: dict[str, Any]) -> dict[str, Any]:
        patched: dict[str, Any] = self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, self.name, {"spec": spec_patch}
        )
        return patched

    def condition(self, kind: str) -> dict[str, Any] | None:
        for condition in (self.get().get("status") or {}).get("conditions") or []:
            if condition["type"] == kind:
                return dict(condition)
        return None

    def ready_for_generation(self) -> dict[str, Any] | None:
        """The object when Ready=True for its current generation, else None."""
        current = self.get()
        return current if is_ready_for_its_generation(current) else None

    def wait_ready(self, timeout: float = 60) -> dict[str, Any]:
        return wait_until(self.ready_for_generation, timeout, f"{self.name} Ready for its latest generation")

    def deployments(self) -> list[Any]:
        return list(
            self.apps.list_namespaced_deployment(
                self.namespace, label_selector=f"{DEPLOYMENT_LABEL}={self.name}"
            ).items
        )

    def pods(self) -> list[Any]:
        pods = self.core.list_namespaced_pod(
            self.namespace, label_selector=f"{DEPLOYMENT_LABEL}={self.name}"
        ).items
        return [pod for pod in pods if pod.metadata.deletion_timestamp is None]

    def ready_pods(self) -> list[Any]:
        return [
            pod
            for pod in self.pods()
            if any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
        ]
