"""Kubernetes I/O for the operator: server-side apply under one field manager, listing and pruning children.

Everything here talks to the API server; nothing here decides what the objects should be (see `render`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from deepseek_operator.api import API_VERSION, GROUP, KIND, PLURAL, VERSION
from deepseek_operator.render.labels import DEPLOYMENT_LABEL

# The predictive pre-scaler's own manager for its status fields (status.predictive and the
# PredictiveScaling condition). Server-side apply removes the fields a manager stops sending: with one
# manager, the reconcile's status apply (which sends neither) would delete them at every reconcile,
# and the pre-scaler's apply would delete the reconcile's. With two, each owns and prunes only its own;
# the conditions list-map is keyed by type, so each manager owns its own entries.
PREDICTIVE_FIELD_MANAGER = "deepseek-operator-predictive"
# The spot controller's own manager for its status fields (status.spot, the SpotAvailable and
# FallbackActive conditions): server-side apply removes the fields a manager stops sending, so with one
# manager the reconcile's status apply would delete what the spot controller wrote, and the other way
# round. With two, each apply only owns (and prunes) its own fields; the conditions list-map is keyed by
# type, so each manager owns its own condition entries.
SPOT_FIELD_MANAGER = "deepseek-operator-spot"
FIELD_MANAGER = "deepseek-operator"
# The failover controller writes status.failover and its two conditions under a field manager of its own.
# Server-side apply removes the fields a manager stops sending: with one manager, the reconcile's status
# apply (which does not send status.failover) would delete the failover state, and the failover
# controller's apply (which does not send activeRegion, regions, Ready...) would delete the reconcile's.
# Two managers each own only what they send, and each always sends all of it.
FAILOVER_FIELD_MANAGER = "deepseek-operator-failover"
REDISCOVERY_SECONDS = 60.0

# Kinds the operator may create as children, in the order they are pruned (dependents first).
CHILD_KINDS: tuple[tuple[str, str], ...] = (
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("policy/v1", "PodDisruptionBudget"),
    ("v1", "Service"),
    ("apps/v1", "Deployment"),
)
# Children whose API comes from an optional add-on; their absence is reported, not fatal.
ADD_ON_APIS = {
    "ScaledObject": "KEDA (keda.sh)",
    "ServiceMonitor": "the Prometheus operator (monitoring.coreos.com)",
    "PrometheusRule": "the Prometheus operator (monitoring.coreos.com)",
}


class MissingApiError(RuntimeError):
    """A child's kind is not served by this cluster (an add-on such as KEDA is not installed)."""

    def __init__(self, api_version: str, kind: str) -> None:
        provider = ADD_ON_APIS.get(kind, api_version)
        super().__init__(
            f"this cluster does not serve {kind} ({api_version}): install {provider}, "
            f"or change the DeepSeekDeployment so it does not need a {kind}"
        )
        self.kind = kind


class StatusConflictError(RuntimeError):
    """The custom resource changed after it was read: recompute from the new version."""


class NamespaceTerminatingError(RuntimeError):
    """The namespace is being deleted: nothing can be created there any more, and nothing needs to be."""


def _is_namespace_terminating(error: ApiException) -> bool:
    return error.status == 403 and "NamespaceTerminating" in str(error.body or "")


@dataclass(frozen=True)
class ChildRef:
    api_version: str
    kind: str
    name: str

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> ChildRef:
        return cls(obj["apiVersion"], obj["kind"], obj["metadata"]["name"])


def load_api_client() -> client.ApiClient:
    """In-cluster credentials when running in a pod, else the kubeconfig (KUBECONFIG or ~/.kube/config)."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()


class Kube:
    """A thread-safe facade over the dynamic client, for the kinds the operator manages."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.api_client = api_client
        self._dynamic: DynamicClient | None = None
        # Re-entrant: discovery (in _resource) uses the client created under the same lock. The dynamic
        # client's discovery cache is not thread-safe (KeyError 'apis' when kopf workers race on it).
        self._lock = threading.RLock()
        self._missing: dict[tuple[str, str], float] = {}

    @property
    def dynamic(self) -> DynamicClient:
        with self._lock:
            if self._dynamic is None:
                self._dynamic = DynamicClient(self.api_client)  # type: ignore[no-untyped-call]
            return self._dynamic

    def _resource(self, api_version: str, kind: str) -> Any:
        with self._lock:
            return self._discover(api_version, kind)

    def _discover(self, api_version: str, kind: str) -> Any:
        key = (api_version, kind)
        missing_since = self._missing.get(key)
        if missing_since is not None and time.monotonic() - missing_since < REDISCOVERY_SECONDS:
            raise MissingApiError(api_version, kind)
        try:
            return self.dynamic.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            # An add-on may have been installed since discovery ran: look again, at most once a minute
            # per kind (a full discovery is dozens of requests).
            self.dynamic.resources.invalidate_cache()
            try:
                resource = self.dynamic.resources.get(api_version=api_version, kind=kind)
            except ResourceNotFoundError:
                self._missing[key] = time.monotonic()
                raise MissingApiError(api_version, kind) from None
            self._missing.pop(key, None)
            return resource

    def serves(self, api_version: str, kind: str) -> bool:
        try:
            self._resource(api_version, kind)
        except MissingApiError:
            return False
        return True

    def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply under the operator's field manager; force takes back fields others changed."""
        resource = self._resource(obj["apiVersion"], obj["kind"])
        try:
            result = resource.server_side_apply(
                body=dict(obj),
                name=obj["metadata"]["name"],
                namespace=obj["metadata"].get("namespace"),
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
            )
        except ApiException as error:
            if _is_namespace_terminating(error):
                raise NamespaceTerminatingError(str(obj["metadata"].get("namespace"))) from error
            raise
        applied: dict[str, Any] = result.to_dict()
        return applied

    def list_children(self, api_version: str, kind: str, namespace: str, owner: str) -> list[dict[str, Any]]:
        resource = self._resource(api_version, kind)
        listed = resource.get(namespace=namespace, label_selector=f"{DEPLOYMENT_LABEL}={owner}")
        return [item.to_dict() for item in listed.items]

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        resource = self._resource(api_version, kind)
        try:
            resource.delete(name=name, namespace=namespace, body={"propagationPolicy": "Background"})
        except ApiException as error:
            if error.status != 404:
                raise

    def prune(self, namespace: str, owner: str, owner_uid: str, keep: Iterable[ChildRef]) -> list[ChildRef]:
        """Delete children of `owner` (by label and owner UID) that are no longer rendered."""
        wanted = set(keep)
        pruned: list[ChildRef] = []
        for api_version, kind in CHILD_KINDS:
            if not self.serves(api_version, kind):
                continue
            for child in self.list_children(api_version, kind, namespace, owner):
                ref = ChildRef(api_version, kind, child["metadata"]["name"])
                owned = any(o.get("uid") == owner_uid for o in child["metadata"].get("ownerReferences") or [])
                if owned and ref not in wanted:
                    self.delete(api_version, kind, namespace, ref.name)
                    pruned.append(ref)
        return pruned

    # ---------------------------------------------------------------------------------- the custom resource

    def read_deepseek_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        api = client.CustomObjectsApi(self.api_client)
        try:
            found = cast(
                dict[str, Any], api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return found

    def apply_status(
        self, namespace: str, name: str, status: Mapping[str, Any], resource_version: str
    ) -> None:
        """Write status with server-side apply to the status subresource (the cert-manager way).

        `resource_version` is the version the status was computed from: the API server refuses the write
        (StatusConflictError) when the object changed since, so a status never describes an older spec.
        """
        body = {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": name, "resourceVersion": resource_version},
            "status": dict(status),
        }
        resource = self._resource(API_VERSION, KIND)
        try:
            resource.status.server_side_apply(
                body=body, name=name, namespace=namespace, field_manager=FIELD_MANAGER, force_conflicts=True
            )
        except ApiException as error:
            if error.status == 409:
                raise StatusConflictError(
                    f"{namespace}/{name} changed while its status was computed"
                ) from error
            raise

    def apply_failover_status(
        self,
        namespace: str,
        name: str,
        failover: Mapping[str, Any],
        conditions: list[Mapping[str, Any]],
        resource_version: str,
    ) -> dict[str, Any]:
        """Server-side apply of status.failover and the failover conditions (FAILOVER_FIELD_MANAGER),
        refused (StatusConflictError) when the object changed since `resource_version`; the object after."""
        body = {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": name, "resourceVersion": resource_version},
            "status": {"failover": dict(failover), "conditions": list(conditions)},
        }
        resource = self._resource(API_VERSION, KIND)
        try:
            result = resource.status.server_side_apply(
                body=body,
                name=name,
                namespace=namespace,
                field_manager=FAILOVER_FIELD_MANAGER,
                force_conflicts=True,
            )
        except ApiException as error:
            if error.status == 409:
                raise StatusConflictError(f"{namespace}/{name} changed since it was read") from error
            raise
        applied: dict[str, Any] = result.to_dict()
        return applied

    def post_event(
        self, involved: Mapping[str, Any], event_type: str, reason: str, message: str, component: str
    ) -> None:
        """A core/v1 Event about a DeepSeekDeployment (as kopf posts its own)."""
        metadata = involved["metadata"]
        now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        event = {
            "metadata": {"generateName": f"{metadata['name']}.", "namespace": metadata["namespace"]},
            "involvedObject": {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "name": metadata["name"],
                "namespace": metadata["namespace"],
                "uid": metadata.get("uid"),
            },
            "type": event_type,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": component},
            "reportingComponent": component,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        core: Any = client.CoreV1Api(self.api_client)
        core.create_namespaced_event(metadata["namespace"], event)

    def apply_spot_status(
        self, namespace: str, name: str, status: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """Server-side apply of the spot controller's status fields under SPOT_FIELD_MANAGER; the
        returned object's status, or None when the object is gone.

        No resourceVersion precondition, unlike `apply_status`: these fields are the spot controller's
        alone (one writer per object, the leader), so a concurrent change of the object cannot make them
        describe an older state; a spec change since the read is acted on at the next look, seconds later.
        """
        body = {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": name},
            "status": dict(status),
        }
        resource = self._resource(API_VERSION, KIND)
        try:
            result = resource.status.server_side_apply(
                body=body,
                name=name,
                namespace=namespace,
                field_manager=SPOT_FIELD_MANAGER,
                force_conflicts=True,
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        applied: dict[str, Any] = result.to_dict()
        return applied

    def annotate_pod(self, namespace: str, name: str, annotations: Mapping[str, str]) -> None:
        """Merge-patch a pod's annotations (the spot controller's pod-deletion-cost); a pod gone is fine."""
        try:
            client.CoreV1Api(self.api_client).patch_namespaced_pod(
                name, namespace, {"metadata": {"annotations": dict(annotations)}}
            )
        except ApiException as error:
            if error.status != 404:
                raise

    def apply_predictive_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> bool:
        """Server-side apply of the predictive pre-scaler's status fields under PREDICTIVE_FIELD_MANAGER
        (an empty ``status`` removes them all); False when the object is gone.

        No resourceVersion precondition, unlike `apply_status`: only the pre-scaler writes these fields
        (one writer, the operator that is not paused), so a concurrent change of the object cannot make
        them describe an older state; a spec change is acted on at the next look.
        """
        body = {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": name}, "status": dict(status)}
        resource = self._resource(API_VERSION, KIND)
        try:
            resource.status.server_side_apply(
                body=body,
                name=name,
                namespace=namespace,
                field_manager=PREDICTIVE_FIELD_MANAGER,
                force_conflicts=True,
            )
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return True


def adopt(obj: Mapping[str, Any], owner: Mapping[str, Any]) -> dict[str, Any]:
    """The object with the owner as its controller, so it is garbage-collected with it.

    Written out rather than kopf.adopt(), which would also copy the owner's labels onto every child.
    """
    metadata = owner["metadata"]
    reference = {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": metadata["name"],
        "uid": metadata["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    return {**obj, "metadata": {**obj["metadata"], "ownerReferences": [reference]}}
