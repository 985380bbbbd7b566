"""The spot controller's kopf layer: observe (the pod and node indexes), decide (`spot.decide`), act
(status, the reconcile that renders the new replica counts, events, metrics, pod-deletion-cost).

One async daemon per DeepSeekDeployment looks at least every TICK_SECONDS, sooner when a timer of its
decision expires, and at once when one of its pods, a node under them or the object itself changes (the
event handlers below wake it: an interruption taint is acted on within the time the watch takes to
deliver it).
Looking costs no API call: the indexes are watch-backed and in memory. Acting (rarely) is a status
apply, a reconcile and maybe a pod annotation, in a worker thread.

Only the operator that is not paused acts. kopf has no leader election: with peering (`--peering`, HA
mode) it pauses every lower-priority replica, and on pause it stops all daemons and timers, setting
their `stopped` flag and then cancelling them (kopf `_core/engines/daemons.py`, `daemon_killer`; this
daemon is async and sets `cancellation_timeout`, so it is cancelled rather than left orphaned), and it
spawns them again on resume from the fresh watch. Standalone (`--standalone`, one replica with strategy
Recreate) there is one operator only. A daemon that was mid-act when paused finishes that write:
every write is a server-side apply of a state computed from status, so repeating it is harmless.

The timers are in status (`status.spot`): a restarted or newly leading operator continues from there.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import kopf
from pydantic import ValidationError

from deepseek_operator import metrics
from deepseek_operator.api import (
    GROUP,
    PLURAL,
    VERSION,
    CapacityPool,
    Condition,
    ConditionType,
    SpotStatus,
)
from deepseek_operator.indexes import NodeSummary, PodSummary
from deepseek_operator.kube import ChildRef
from deepseek_operator.placement import placement_from_status
from deepseek_operator.reconcile import InvalidSpecError, parse_spec
from deepseek_operator.render.capacity import capacity_labels
from deepseek_operator.render.labels import DEPLOYMENT_LABEL
from deepseek_operator.render.names import deployment_name
from deepseek_operator.render.replicas import ReplicaAdjustments, plan_replicas
from deepseek_operator.spot.decide import Decision, FallbackPolicy, decide
from deepseek_operator.spot.observe import interruption_signal, observe

log = logging.getLogger(__name__)

# The level-based look, whatever happens (timers and wake-ups make it sooner).
TICK_SECONDS = 5.0
# With spot disabled or an invalid spec there is nothing to watch closely.
IDLE_SECONDS = 30.0
# Lower deletion cost first: the ReplicaSet controller removes this pod when its Deployment shrinks.
POD_DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
LEAVE_FIRST_COST = "-1000"
SPOT_CONDITIONS = (ConditionType.SPOT_AVAILABLE.value, ConditionType.FALLBACK_ACTIVE.value)

# Per DeepSeekDeployment (namespace, name): the event its daemon waits on between looks.
_wakeups: dict[tuple[str, str], asyncio.Event] = {}
# Per node: what of it the spot controller reads, to wake daemons only when that changes.
_node_states: dict[str, tuple[Any, ...]] = {}


def wake(namespace: str, name: str) -> None:
    event = _wakeups.get((namespace, name))
    if event is not None:
        event.set()


class _Nodes(Mapping[str, NodeSummary]):
    """The `nodes` index (name -> a store of one summary) as a plain mapping."""

    def __init__(self, index: Mapping[str, Iterable[NodeSummary]]) -> None:
        self._index = index

    def __getitem__(self, name: str) -> NodeSummary:
        for summary in self._index[name]:
            return summary
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)


def _adjustments(status: SpotStatus | None) -> dict[str, tuple[int, int, int]]:
    """Per region, what changes the rendered replica counts: (fallback, spill, withheld), zeros left out."""
    if status is None:
        return {}
    counts = {r.name: (r.fallback_replicas, r.spill_replicas, r.withheld_replicas) for r in status.regions}
    return {name: value for name, value in counts.items() if any(value)}


def _changed_deployments(
    name: str, before: Mapping[str, tuple[int, int, int]], after: Mapping[str, tuple[int, int, int]]
) -> list[ChildRef]:
    """The pool Deployments whose replica counts change: on-demand with the fallback, spot with the spill
    and the withheld replicas."""
    changed = []
    for region in sorted(set(before) | set(after)):
        (fallback, spill, withheld), (fallback_now, spill_now, withheld_now) = (
            before.get(region, (0, 0, 0)),
            after.get(region, (0, 0, 0)),
        )
        if fallback != fallback_now:
            changed.append(
                ChildRef("apps/v1", "Deployment", deployment_name(name, region, CapacityPool.ON_DEMAND))
            )
        if (spill, withheld) != (spill_now, withheld_now):
            changed.append(
                ChildRef("apps/v1", "Deployment", deployment_name(name, region, CapacityPool.SPOT))
            )
    return changed


def _dump(decision: Decision) -> dict[str, Any]:
    return {
        "conditions": [
            c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in decision.conditions
        ],
        "spot": decision.status.model_dump(mode="json", by_alias=True, exclude_none=True),
    }


def _mine(status: Mapping[str, Any]) -> dict[str, Any]:
    """The part of an object's status this controller writes, as it would write it."""
    return {
        "conditions": [c for c in status.get("conditions") or [] if c.get("type") in SPOT_CONDITIONS],
        "spot": status.get("spot"),
    }


def _parse_spot(raw: Mapping[str, Any]) -> tuple[SpotStatus | None, list[Condition]]:
    try:
        spot = SpotStatus.model_validate(raw["spot"]) if raw.get("spot") else None
    except ValidationError:
        spot = None  # mangled by hand: decided afresh
    conditions = []
    for item in raw.get("conditions") or []:
        try:
            conditions.append(Condition.model_validate(item))
        except ValidationError:
            continue
    return spot, conditions


def choose_pod_to_remove(
    pods: Iterable[PodSummary], region: str, pool: CapacityPool, nodes: Mapping[str, NodeSummary], labels: Any
) -> PodSummary | None:
    """Of a pool's pods, the one whose removal costs least: not ready (serves nothing), then on a node
    that is going away or cordoned, then the youngest (most likely a stand-in, with the least warm cache)."""
    candidates = [p for p in pods if p.region == region and p.pool is pool and not p.terminating and p.node]

    def cost(pod: PodSummary) -> tuple[int, int, float]:
        node = nodes.get(pod.node or "")
        leaving = interruption_signal(pod, nodes, labels) is not None or (
            node is not None and node.unschedulable
        )
        created = pod.created_at.timestamp() if pod.created_at else 0.0
        return (1 if pod.ready else 0, 0 if leaving else 1, -created)

    return min(candidates, key=cost) if candidates else None


@dataclass
class SpotController:
    """One DeepSeekDeployment's controller state that lives in memory only: what it last wrote (until the
    watch shows it) and when it last counted replica-seconds. Everything it decides on is in status."""

    namespace: str
    name: str
    written: dict[str, Any] | None = None
    counted_at: float | None = None
    serving: dict[tuple[str, str], int] = field(default_factory=dict)

    async def look(
        self,
        body: kopf.Body,
        inference_pods: Mapping[tuple[str, str], Iterable[PodSummary]],
        nodes: Mapping[str, Iterable[NodeSummary]],
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger],
    ) -> float:
        """Observe, decide, act; seconds until the next look."""
        status: Mapping[str, Any] = body.get("status") or {}
        try:
            spec = parse_spec(body)
        except InvalidSpecError:
            return IDLE_SECONDS
        self._count_replica_seconds()
        if body.get("metadata", {}).get("deletionTimestamp"):
            return IDLE_SECONDS  # being deleted: garbage collection takes its children, nothing to decide
        if not spec.spot.enabled:
            self.serving = {}  # nothing to split between capacity types
            if _mine(status) != {"conditions": [], "spot": None}:
                await self._write({})  # nothing of ours is left behind
                await self._reconcile(logger, None)
            metrics.record_spot(self.namespace, self.name, None)
            return IDLE_SECONDS

        # What was written last, until the watch delivers it (the body lags behind our own writes).
        current = _mine(status)
        if self.written is not None and current == self.written:
            self.written = None
        mine = self.written if self.written is not None else current
        previous, previous_conditions = _parse_spot(mine)

        labels = capacity_labels(spec.spot)
        placement = placement_from_status(spec, status)
        # The spec's split, with the failover controller's regions raised to full (not our adjustments).
        targets = plan_replicas(
            spec, placement.active_region, ReplicaAdjustments(full_regions=placement.adjustments.full_regions)
        )
        pods = list(inference_pods.get((self.namespace, self.name), ()))
        node_view = _Nodes(nodes)
        observations = observe(spec, targets, pods, node_view, labels)
        self.serving = {
            (o.name, pool): getattr(o, attribute).serving
            for o in observations
            for pool, attribute in (("spot", "spot"), ("on-demand", "on_demand"))
        }
        now = datetime.now(UTC).replace(microsecond=0)
        generation = int(body.get("metadata", {}).get("generation") or 0)
        decision = decide(
            FallbackPolicy.of(spec.spot), observations, previous, previous_conditions, generation, now
        )
        wanted = _dump(decision)
        if wanted != mine:
            for region in decision.regions:
                if region.stepped_down is not None:
                    chosen = choose_pod_to_remove(
                        pods, region.status.name, region.stepped_down, node_view, labels
                    )
                    if chosen is not None:
                        await asyncio.to_thread(
                            _kube().annotate_pod,
                            chosen.namespace,
                            chosen.name,
                            {POD_DELETION_COST: LEAVE_FIRST_COST},
                        )
            started = time.monotonic()
            if not await self._write(wanted):
                return IDLE_SECONDS  # the object is gone
            written = time.monotonic()
            before, after = _adjustments(previous), _adjustments(decision.status)
            if after != before:
                await self._reconcile(logger, _changed_deployments(self.name, before, after))
                changed = sorted(set(before) | set(after))
                logger.info(
                    "spot: %s (status written in %.0f ms, children in %.0f ms)",
                    "; ".join(
                        f"{region}: fallback, spill, withheld {before.get(region, (0, 0, 0))} -> "
                        f"{after.get(region, (0, 0, 0))}"
                        for region in changed
                        if before.get(region) != after.get(region)
                    ),
                    1000 * (written - started),
                    1000 * (time.monotonic() - written),
                )
            self._report(body, decision)
        metrics.record_spot(self.namespace, self.name, decision.status)
        wake_in = decision.wake_in
        return TICK_SECONDS if wake_in is None else max(0.2, min(TICK_SECONDS, wake_in + 0.2))

    async def _write(self, wanted: dict[str, Any]) -> bool:
        applied = await asyncio.to_thread(_kube().apply_spot_status, self.namespace, self.name, wanted)
        if applied is None:
            return False
        self.written = _mine(applied.get("status") or {}) if wanted else None
        return True

    async def _reconcile(
        self,
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger],
        deployments: list[ChildRef] | None,
    ) -> None:
        """Render the new replica counts now (the reconcile reads the placement from status): only the
        Deployments whose counts changed, each with the status refreshed (a full reconcile applies and
        lists every kind of child, seconds on a busy API server, which a notice cannot wait for); all
        children when `deployments` is None. The resync and the child events converge the rest."""
        from deepseek_operator.reconcile import reconcile

        try:
            for only in deployments if deployments is not None else [None]:
                await asyncio.to_thread(reconcile, _kube(), self.namespace, self.name, logger, only)
        except InvalidSpecError:
            return

    def _report(self, body: kopf.Body, decision: Decision) -> None:
        for region in decision.regions:
            for interruption in region.new_interruptions:
                metrics.count_interruption(self.namespace, self.name, region.status.name, interruption.signal)
            if region.replaced is not None:
                seconds, cause = region.replaced
                metrics.observe_replacement(cause, seconds)
        for event in decision.events:
            log.info("spot: %s/%s: %s: %s", self.namespace, self.name, event.reason, event.message)
            if event.type == "Warning":
                kopf.warn(body, reason=event.reason, message=event.message)
            else:
                kopf.event(body, type="Normal", reason=event.reason, message=event.message)

    def _count_replica_seconds(self) -> None:
        """Ready replicas (as last seen) times the seconds since the last look, per capacity type."""
        clock = time.monotonic()
        if self.counted_at is not None:
            elapsed = clock - self.counted_at
            for (region, capacity_type), count in self.serving.items():
                metrics.add_replica_seconds(self.namespace, self.name, region, capacity_type, count * elapsed)
        self.counted_at = clock


def _kube() -> Any:
    from deepseek_operator.handlers import kube

    return kube()


# ------------------------------------------------------------------------------------------ kopf handlers

WAKE_UP_HANDLERS = ("inference_pod_changed", "node_changed", "deepseek_deployment_changed")


class _QuietWakeUps(logging.Filter):
    """kopf logs "Handler '<id>' succeeded." for every event a handler sees; the wake-ups below see every
    pod and node event, and their success is no news."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(message == f"Handler {handler!r} succeeded." for handler in WAKE_UP_HANDLERS)


@kopf.on.startup()
def quiet_wake_ups(**_: Any) -> None:
    logger = logging.getLogger("kopf.objects")
    if not any(isinstance(f, _QuietWakeUps) for f in logger.filters):
        logger.addFilter(_QuietWakeUps())


@kopf.daemon(GROUP, VERSION, PLURAL, id="spot", cancellation_timeout=10.0)
async def spot_controller(
    body: kopf.Body, stopped: kopf.DaemonStopped, logger: kopf.Logger, **kwargs: Any
) -> None:
    # kopf passes each index as a keyword argument named after its function (deepseek_operator.indexes).
    inference_pods: kopf.Index[tuple[str, str], PodSummary] = kwargs["inference_pods"]
    nodes: kopf.Index[str, NodeSummary] = kwargs["nodes"]
    namespace, name = body.metadata["namespace"], body.metadata["name"]
    key = (namespace, name)
    event = asyncio.Event()
    _wakeups[key] = event
    controller = SpotController(namespace, name)
    try:
        while not stopped:
            event.clear()
            try:
                wait = await controller.look(body, inference_pods, nodes, logger)
            except Exception:  # any failure is retried at the next look; the daemon must live on
                logger.exception(
                    "spot controller: looking at %s/%s failed; again in %ss", namespace, name, TICK_SECONDS
                )
                wait = TICK_SECONDS
            # Until woken, or the time is up, or kopf stops the daemon (peering pause, deletion, exit).
            woken = asyncio.ensure_future(event.wait())
            stopping = asyncio.ensure_future(_until(stopped, wait))
            try:
                await asyncio.wait({woken, stopping}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                woken.cancel()
                stopping.cancel()
    finally:
        if _wakeups.get(key) is event:
            del _wakeups[key]


async def _until(stopped: kopf.DaemonStopped, seconds: float) -> None:
    await stopped.wait(seconds)


@kopf.on.event(GROUP, VERSION, PLURAL)
async def deepseek_deployment_changed(event: kopf.RawEvent, **_: Any) -> None:
    """The object changed (its spec, or another writer's status): its controller looks again now."""
    metadata = event["object"].get("metadata") or {}
    if metadata.get("namespace") and metadata.get("name"):
        wake(str(metadata["namespace"]), str(metadata["name"]))


# Any: kopf does not export the type of its PRESENT token.
_INFERENCE_POD_LABELS: Mapping[str, Any] = {DEPLOYMENT_LABEL: kopf.PRESENT}


@kopf.on.event("v1", "pods", labels=_INFERENCE_POD_LABELS)
async def inference_pod_changed(event: kopf.RawEvent, **_: Any) -> None:
    """A pod of a DeepSeekDeployment changed (scheduled, Ready, disrupted, deleted): its controller looks."""
    metadata = event["object"].get("metadata") or {}
    owner = (metadata.get("labels") or {}).get(DEPLOYMENT_LABEL)
    if owner and metadata.get("namespace"):
        wake(str(metadata["namespace"]), str(owner))


def node_state(node: Mapping[str, Any] | None) -> tuple[Any, ...] | None:
    """What the spot controller reads of a node (taints, cordon, deletion, readiness); heartbeats aside."""
    if node is None:
        return None
    spec = node.get("spec") or {}
    ready = next(
        (
            c.get("status")
            for c in (node.get("status") or {}).get("conditions") or []
            if c.get("type") == "Ready"
        ),
        None,
    )
    taints = tuple(sorted((t.get("key"), t.get("value"), t.get("effect")) for t in spec.get("taints") or []))
    return (
        taints,
        bool(spec.get("unschedulable")),
        bool((node.get("metadata") or {}).get("deletionTimestamp")),
        ready,
    )


@kopf.on.event("v1", "nodes")
async def node_changed(event: kopf.RawEvent, **kwargs: Any) -> None:
    """A node's taints, cordon, deletion or readiness changed: wake the controllers with pods on it."""
    inference_pods: kopf.Index[tuple[str, str], PodSummary] = kwargs["inference_pods"]
    node = event["object"]
    name = str((node.get("metadata") or {}).get("name"))
    state = None if event.get("type") == "DELETED" else node_state(node)
    if _node_states.get(name) == state and state is not None:
        return
    if state is None:
        _node_states.pop(name, None)
    else:
        _node_states[name] = state
    for (namespace, owner), pods in list(inference_pods.items()):
        if any(pod.node == name for pod in pods):
            wake(namespace, owner)
