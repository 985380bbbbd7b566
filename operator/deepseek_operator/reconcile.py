"""One reconcile of a DeepSeekDeployment: render, apply, prune, observe, write status.

Level-based: every call converges the cluster on the spec from whatever state it finds, so a restart,
a missed event or a crash in the middle of a previous call needs no special handling.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from deepseek_operator import metrics
from deepseek_operator.api import Condition, DeepSeekDeploymentSpec
from deepseek_operator.kube import (
    ChildRef,
    Kube,
    MissingApiError,
    NamespaceTerminatingError,
    StatusConflictError,
    adopt,
)
from deepseek_operator.placement import autoscaler_floor, placement_from_status
from deepseek_operator.render import render_children
from deepseek_operator.status import ObservedDeployment, Problem, compute_status, invalid_spec_status

# Reconciles of one DeepSeekDeployment never interleave: its own events and its children's events
# arrive on different kopf workers.
_locks: defaultdict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)
# Attempts when the object changes between our read and our status write, before giving up to kopf's retry.
STATUS_ATTEMPTS = 3


class InvalidSpecError(ValueError):
    """The spec passed the schema but cannot be acted on; the message names the field and the fix."""


@dataclass
class ReconcileResult:
    applied: list[ChildRef] = field(default_factory=list)
    pruned: list[ChildRef] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def parse_spec(body: Mapping[str, Any]) -> DeepSeekDeploymentSpec:
    try:
        return DeepSeekDeploymentSpec.model_validate(body.get("spec") or {})
    except ValidationError as error:
        details = "; ".join(
            f"spec.{'.'.join(str(part) for part in item['loc'])}: {item['msg']}" for item in error.errors()
        )
        raise InvalidSpecError(details) from error


def _previous_conditions(body: Mapping[str, Any]) -> list[Condition]:
    raw = (body.get("status") or {}).get("conditions") or []
    conditions = []
    for item in raw:
        try:
            conditions.append(Condition.model_validate(item))
        except ValidationError:
            continue  # a condition another writer mangled is simply recomputed
    return conditions


def _dump(status: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped


def reconcile(
    kube: Kube,
    namespace: str,
    name: str,
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger],
    only: ChildRef | None = None,
) -> ReconcileResult:
    """Converge the children of DeepSeekDeployment `namespace/name` on its current spec; `only` limits
    applying to one child (drift repair) while status is still computed in full.

    Raises InvalidSpecError after recording it in status; add-on APIs that are missing are returned as
    problems (and shown in status) rather than raised, so every other child is still applied.
    """
    outcome: str | None = "error"
    with metrics.RECONCILE_SECONDS.time(), _locks[(namespace, name)]:
        try:
            for _attempt in range(STATUS_ATTEMPTS):
                # Read inside the lock: the body a handler was given may be older than what another
                # reconcile of this object already acted on (kopf delivers its events and its children's
                # events concurrently), and status must never describe an older spec.
                current = kube.read_deepseek_deployment(namespace, name)
                if current is None:
                    # Gone (a child's event can arrive after its owner): drop its series, in case its
                    # deletion event was missed, and count nothing that would bring one back.
                    metrics.forget(namespace, name)
                    outcome = None
                    return ReconcileResult()
                if current["metadata"].get("deletionTimestamp"):
                    # Going (e.g. foreground deletion): garbage collection removes the children, and
                    # re-creating them would fight it.
                    outcome = "skipped"
                    return ReconcileResult()
                try:
                    result = _reconcile(kube, current, logger, only)
                except StatusConflictError:
                    continue  # it changed while we worked: converge on the newer version
                outcome = "problem" if result.problems else "success"
                return result
            raise StatusConflictError(
                f"{namespace}/{name} changed during each of {STATUS_ATTEMPTS} reconciles in a row; retrying later"
            )
        except NamespaceTerminatingError:
            # Garbage collection removes everything in a namespace being deleted; nothing to converge.
            logger.debug("namespace %s is terminating: skipping the reconcile of %s", namespace, name)
            outcome = "skipped"
            return ReconcileResult()
        except InvalidSpecError:
            outcome = "invalid"
            raise
        finally:
            if outcome is not None:
                metrics.count_reconcile(namespace, name, outcome)


def forget(namespace: str, name: str) -> None:
    """DeepSeekDeployment namespace/name is deleted: remove its metric series.

    Under its reconcile lock, so that a reconcile already running cannot write them again afterwards
    (a later one reads nothing and writes nothing).
    """
    with _locks[(namespace, name)]:
        metrics.forget(namespace, name)


def _reconcile(
    kube: Kube,
    body: Mapping[str, Any],
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger],
    only: ChildRef | None,
) -> ReconcileResult:
    metadata = body["metadata"]
    name, namespace, uid = metadata["name"], metadata["namespace"], metadata["uid"]
    generation = int(metadata.get("generation") or 0)
    resource_version = str(metadata["resourceVersion"])
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        spec = parse_spec(body)
        placement = placement_from_status(spec, body.get("status"))
    except (InvalidSpecError, ValueError) as error:
        status = invalid_spec_status(generation, str(error), _previous_conditions(body), now)
        kube.apply_status(namespace, name, _dump(status), resource_version)
        raise InvalidSpecError(str(error)) from error

    result = ReconcileResult()
    floor = autoscaler_floor(spec, body.get("status"))
    children = [
        adopt(child, body)
        for child in render_children(
            name, namespace, spec, placement.active_region, placement.adjustments, autoscaler_floor=floor
        )
    ]
    for child in children:
        ref = ChildRef.of(child)
        try:
            if only is None or ref == only:
                kube.apply(child)
            elif not kube.serves(ref.api_version, ref.kind):
                # Not applied now, but still a problem to show: status is rewritten below.
                raise MissingApiError(ref.api_version, ref.kind)
        except MissingApiError as error:
            if only is None:
                logger.warning("cannot apply %s %s: %s", ref.kind, ref.name, error)
            result.problems.append(Problem(reason=f"{ref.kind}ApiMissing", message=str(error)))
            continue
        result.applied.append(ref)
    if only is None:
        result.pruned = kube.prune(namespace, name, uid, keep=result.applied)
        for ref in result.pruned:
            logger.info("deleted %s %s: no longer part of the spec", ref.kind, ref.name)

    observed = [
        item
        for deployment in kube.list_children("apps/v1", "Deployment", namespace, name)
        if (item := ObservedDeployment.from_object(deployment)) is not None
    ]
    # observedGeneration says "every child of this generation was applied": only a full reconcile may
    # advance it. A single-child repair keeps the one already written (none after a crash mid-way).
    stamped = generation if only is None else (body.get("status") or {}).get("observedGeneration")
    status = compute_status(
        name,
        spec,
        stamped,
        placement.active_region,
        observed,
        _previous_conditions(body),
        result.problems,
        now,
        placement.adjustments,
    )
    kube.apply_status(namespace, name, _dump(status), resource_version)
    metrics.record_status(namespace, name, status)
    for ref in result.pruned:
        metrics.count_pruned(namespace, name, ref.kind)
    return result
