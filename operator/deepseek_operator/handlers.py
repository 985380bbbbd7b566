"""kopf handlers: when to reconcile. What a reconcile does lives in `reconcile`; what it renders in `render`."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import kopf

# Imported for what they register with kopf: the controllers' pod and node indexes; the spot controller's
# daemon and wake-ups; the predictive pre-scaler's timer.
import deepseek_operator.indexes
import deepseek_operator.predictive.controller
import deepseek_operator.spot.controller  # noqa: F401
from deepseek_operator import metrics
from deepseek_operator.api import GROUP, PLURAL, VERSION
from deepseek_operator.failover.controller import PROBE_ADDRESS_ANNOTATION_ENV, FailoverController
from deepseek_operator.kube import ChildRef, Kube, load_api_client
from deepseek_operator.reconcile import InvalidSpecError, forget, reconcile
from deepseek_operator.render.labels import DEPLOYMENT_LABEL, MANAGED_BY

RESYNC_SECONDS = 60.0
_kube: Kube | None = None
_failover: FailoverController | None = None


def kube() -> Kube:
    global _kube
    if _kube is None:
        _kube = Kube(load_api_client())
    return _kube


def failover_controller() -> FailoverController:
    """The process's one failover loop (see `failover.controller`)."""
    global _failover
    if _failover is None:
        _failover = FailoverController(
            kube=kube,
            reconcile=reconcile,
            probe_annotation=os.environ.get(PROBE_ADDRESS_ANNOTATION_ENV) or None,
        )
    return _failover


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, logger: kopf.Logger, **_: Any) -> None:
    # Keep kopf's bookkeeping in annotations on our own domain: status belongs to the operator's
    # server-side-applied fields only, and the domain makes the annotations easy to attribute.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    # Events for warnings and errors only: a successful reconcile is not news.
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.batching.error_delays = [1, 2, 5, 10, 30, 60]
    kube()
    served = metrics.serve_metrics()
    if served:
        logger.info("serving metrics on %s:%d/metrics", *served)


@kopf.on.probe(id="api")
def api_reachable(**_: Any) -> str:
    """Liveness detail: the operator can still reach the API server."""
    from kubernetes import client

    version = client.VersionApi(kube().api_client).get_code()
    return str(version.git_version)


def _reconcile_or_fail(body: kopf.Body, logger: kopf.Logger) -> None:
    try:
        result = reconcile(kube(), body.metadata["namespace"], body.metadata["name"], logger)
    except InvalidSpecError as error:
        kopf.warn(body, reason="InvalidSpec", message=str(error))
        # The spec will not become valid by retrying; the next spec change triggers a new attempt.
        raise kopf.PermanentError(str(error)) from error
    for problem in result.problems:
        kopf.warn(body, reason=problem.reason, message=problem.message)
    if result.problems:
        # An add-on (KEDA, the Prometheus operator) may be installed later: look again in a minute.
        raise kopf.TemporaryError("; ".join(p.message for p in result.problems), delay=60)


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
def reconcile_deepseek_deployment(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
    _reconcile_or_fail(body, logger)


@kopf.timer(GROUP, VERSION, PLURAL, interval=RESYNC_SECONDS, idle=RESYNC_SECONDS)
def resync(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
    """Level-based safety net: converge and refresh status even if an event was missed."""
    try:
        reconcile(kube(), body.metadata["namespace"], body.metadata["name"], logger)
    except InvalidSpecError:
        return  # already reported by the spec handler; nothing to converge


@kopf.daemon(GROUP, VERSION, PLURAL, id="failover", cancellation_timeout=5.0)
async def failover_daemon(
    body: kopf.Body, logger: kopf.Logger, stopped: kopf.DaemonStopped, **kwargs: Any
) -> None:
    """While it runs, this operator replica checks the object's regions and fails it over.

    It only registers the object (kopf's live view of it, and the pod and node indexes) with the
    process's one failover loop, which checks every registered object at its own probeIntervalSeconds
    with shared PromQL queries. kopf stops every daemon when the object is deleted and when peering pauses
    this replica (another one has the higher priority): the object is then unregistered, so only the
    active replica ever checks, decides and writes. See `failover.controller`.
    """
    controller = failover_controller()
    metadata = body["metadata"]
    # kopf passes its indexes by name (indexes.inference_pods, indexes.nodes).
    controller.register(body, logger, kwargs["inference_pods"], kwargs["nodes"])
    try:
        await stopped.wait()
    finally:
        controller.unregister(metadata["namespace"], metadata["name"])


@kopf.on.cleanup()
async def stop_failover_checks(**_: Any) -> None:
    if _failover is not None:
        await _failover.close()


@kopf.on.event(GROUP, VERSION, PLURAL)
def deepseek_deployment_event(event: kopf.RawEvent, **_: Any) -> None:
    """A DeepSeekDeployment is gone: remove its metric series.

    A raw DELETED event rather than `@kopf.on.delete`: that handler runs while the object is still
    there, held by a finalizer. A mandatory one would add a finalizer that blocks every deletion while
    the operator is down; an optional one runs only when some other finalizer happens to hold the
    object (today kopf's own, for the resync timer) and is then retried and tracked in annotations of
    a dying object. The DELETED event comes once the object is really gone, needs no finalizer, and a
    missed one is caught by the next reconcile, which finds the object gone (a child's event).
    """
    if event.get("type") != "DELETED":
        return
    metadata = event["object"].get("metadata") or {}
    forget(metadata["namespace"], metadata["name"])


def _owner_name(meta: Mapping[str, Any]) -> str | None:
    for reference in meta.get("ownerReferences") or []:
        if reference.get("kind") == "DeepSeekDeployment" and reference.get("controller"):
            return str(reference["name"])
    return None


def _on_child_event(event: kopf.RawEvent, logger: kopf.Logger) -> None:
    """A child changed (drift, deletion, or its status moved): repair it and refresh the owner's status."""
    child = event["object"]
    metadata = child.get("metadata") or {}
    owner_name = _owner_name(metadata)
    namespace = metadata.get("namespace")
    if owner_name is None or namespace is None:
        return
    ref = ChildRef(child["apiVersion"], child["kind"], metadata["name"])
    try:
        # A child event for an owner already deleted finds nothing to do (garbage collection cleans up).
        reconcile(kube(), namespace, owner_name, logger, only=ref)
    except InvalidSpecError:
        return


# Any: kopf does not export the type of its PRESENT token.
_CHILD_LABELS: Mapping[str, Any] = {
    "app.kubernetes.io/managed-by": MANAGED_BY,
    DEPLOYMENT_LABEL: kopf.PRESENT,
}


@kopf.on.event("apps", "v1", "deployments", labels=_CHILD_LABELS)
@kopf.on.event("v1", "services", labels=_CHILD_LABELS)
@kopf.on.event("policy", "v1", "poddisruptionbudgets", labels=_CHILD_LABELS)
@kopf.on.event("autoscaling", "v2", "horizontalpodautoscalers", labels=_CHILD_LABELS)
def child_changed(event: kopf.RawEvent, logger: kopf.Logger, **_: Any) -> None:
    _on_child_event(event, logger)
