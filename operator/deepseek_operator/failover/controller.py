"""The failover controller's loop: for every DeepSeekDeployment, every probeIntervalSeconds, observe
(`observe`, `checks`), decide (`decision.step`, pure) and act: write status.failover, reconcile when the
routing changed (the reconcile renders the front Service and the replicas from it, see `placement`),
post events and record metrics.

Only the leader acts. kopf has no leader election: with --peering it pauses every operator replica but
the one of the highest priority, and a pause stops all daemons and timers (kopf's daemon_killer); the
watch events after a resume spawn them again. kopf's timers and daemons are per object and a timer has
one interval for all objects, while this controller needs one interval per object and one shared look
per interval for all of them (one PromQL query per signal for every deployment). So a daemon per
DeepSeekDeployment (`handlers.failover_daemon`) only registers its object with this one loop while it
runs, which is exactly while this replica may act on the object: paused, the daemons stop and
unregister, and the loop checks nothing. A check already under way when the pause comes writes nothing
once its object is unregistered, and every status write carries the resourceVersion it was decided from,
so a write from stale state is refused by the API server rather than applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import aiohttp
from pydantic import ValidationError

from deepseek_operator import metrics
from deepseek_operator.api import (
    FAILOVER_ACKNOWLEDGED_ANNOTATION,
    METRIC_SIGNALS,
    DeepSeekDeploymentSpec,
    FailoverRecord,
    FailoverSignal,
    FailoverStatus,
)
from deepseek_operator.failover.checks import (
    EngineProbe,
    MetricValue,
    Outcome,
    RegionCheck,
    SignalResult,
    engine_result,
    live_pods,
    metric_result,
    metric_threshold,
    needed_replicas,
    nodes_result,
    pods_result,
    probe_candidates,
    probe_sample,
    serving_replicas,
)
from deepseek_operator.failover.decision import ConditionValue, Decision, step
from deepseek_operator.failover.observe import PrometheusQueries, QueryResult, probe_engines
from deepseek_operator.failover.queries import QueryTemplateError, render_query
from deepseek_operator.indexes import NodeSummary, PodSummary
from deepseek_operator.kube import Kube, StatusConflictError
from deepseek_operator.placement import failover_routing, placement_from_status
from deepseek_operator.render.replicas import plan_replicas

log = logging.getLogger("deepseek_operator.failover")

PROBE_ADDRESS_ANNOTATION_ENV = "DEEPSEEK_OPERATOR_PROBE_ADDRESS_ANNOTATION"
EVENT_COMPONENT = "deepseek-operator"
# status.failover is written when something in it changes, else this often (to refresh lastProbeTime).
# Not more often: every status write is a watch event that resets the `idle` of kopf's resync timer
# (handlers.resync runs only once an object went RESYNC_SECONDS without a change), and at 500
# deployments a write per deployment per interval would load the API server for nothing.
HEARTBEAT_SECONDS = 300.0
# Objects due within this much of each other are checked together.
TICK_SLACK_SECONDS = 0.05
MAX_CONCURRENT_PROBES = 64
DEFAULT_INTERVAL = 10.0
WORKER_THREADS = 8

T = TypeVar("T")


@dataclass
class Watched:
    """One DeepSeekDeployment this replica acts on: kopf's live view of it, and the loop's bookkeeping."""

    namespace: str
    name: str
    body: Any  # kopf.Body, kept up to date by kopf's watch
    logger: Any
    next_due: float = 0.0
    turn: int = 0  # rotates which pods are probed
    written_at: float = -math.inf
    registered: bool = True
    # Parsed once per spec generation (and status.failover once per version of it): a check of
    # hundreds of deployments a second must not re-validate and re-render them every time.
    parsed: tuple[Any, DeepSeekDeploymentSpec | None] | None = None
    queries: tuple[Any, list[tuple[FailoverSignal, tuple[str, str] | str]]] | None = None
    previous: tuple[Any, FailoverStatus | None] | None = None

    def snapshot(self) -> dict[str, Any]:
        """The object as kopf last saw it. kopf replaces the body's content on every watch event and
        never changes the dictionaries it handed out, so a shallow copy stays consistent."""
        return {key: self.body.get(key) for key in ("apiVersion", "kind", "metadata", "spec", "status")}

    def spec(self, body: Mapping[str, Any]) -> DeepSeekDeploymentSpec | None:
        raw = body.get("spec")
        if self.parsed is None or self.parsed[0] is not raw:
            self.parsed = (raw, _parse_spec(body))
        return self.parsed[1]

    def previous_status(self, status: Mapping[str, Any]) -> FailoverStatus | None:
        raw = status.get("failover")
        if self.previous is None or self.previous[0] is not raw:
            self.previous = (raw, _previous(status))
        return self.previous[1]


def probe_timeout(interval: float) -> float:
    """Engine probes and PromQL queries must answer within half an interval (at most 2 s)."""
    return max(0.25, min(2.0, interval / 2))


def _parse_spec(body: Mapping[str, Any]) -> DeepSeekDeploymentSpec | None:
    try:
        return DeepSeekDeploymentSpec.model_validate(body.get("spec") or {})
    except ValidationError:
        return None  # reported by the reconcile (InvalidSpec); nothing to check


def _previous(status: Mapping[str, Any]) -> FailoverStatus | None:
    raw = status.get("failover")
    if not raw:
        return None
    try:
        return FailoverStatus.model_validate(raw)
    except ValidationError:
        return None  # a mangled record is rebuilt from the spec


def _dump(failover: FailoverStatus) -> dict[str, Any]:
    dumped: dict[str, Any] = failover.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped


def _material(failover: Mapping[str, Any] | None) -> Any:
    """status.failover without what changes at every check (probe times, messages with live figures)."""
    if not failover:
        return None
    kept = {key: value for key, value in failover.items() if key not in ("message", "regions")}
    kept["regions"] = [
        {key: value for key, value in region.items() if key not in ("lastProbeTime", "message")}
        for region in failover.get("regions") or []
    ]
    return kept


def _acknowledged(body: Mapping[str, Any]) -> int | None:
    value = ((body.get("metadata") or {}).get("annotations") or {}).get(FAILOVER_ACKNOWLEDGED_ANNOTATION)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _timestamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def condition_objects(
    values: Iterable[ConditionValue],
    previous: Iterable[Mapping[str, Any]],
    generation: int | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """metav1.Conditions whose lastTransitionTime moves only when their status changes."""
    before = {item.get("type"): item for item in previous}
    conditions = []
    for value in values:
        old = before.get(value.type.value) or {}
        unchanged = old.get("status") == value.status.value and old.get("lastTransitionTime")
        conditions.append(
            {
                "type": value.type.value,
                "status": value.status.value,
                "reason": value.reason,
                "message": value.message,
                "lastTransitionTime": old["lastTransitionTime"]
                if unchanged
                else now.isoformat(timespec="seconds").replace("+00:00", "Z"),
                **({"observedGeneration": generation} if generation is not None else {}),
            }
        )
    return conditions


def _unavailable(reason: str) -> Callable[[str], MetricValue]:
    def value(_region: str) -> MetricValue:
        return MetricValue(error=reason)

    return value


def _lookup(result: QueryResult, namespace: str, name: str) -> Callable[[str], MetricValue]:
    def value(region: str) -> MetricValue:
        return result.value_for((namespace, name, region))

    return value


def _comparable(conditions: Iterable[Mapping[str, Any]]) -> set[tuple[Any, ...]]:
    return {(c.get("type"), c.get("status"), c.get("reason"), c.get("message")) for c in conditions}


@dataclass
class FailoverController:
    """The one loop of this operator process; `handlers` creates it and its daemons feed it."""

    kube: Callable[[], Kube]
    # reconcile.reconcile(kube, namespace, name, logger): renders the routing status.failover describes.
    reconcile: Callable[[Kube, str, str, Any], Any]
    probe_annotation: str | None = None
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    watched: dict[tuple[str, str], Watched] = field(default_factory=dict)
    _pods: Any = None
    _nodes: Any = None
    _wake: asyncio.Event | None = None
    _task: asyncio.Task[None] | None = None
    _session: aiohttp.ClientSession | None = None
    _probe_limit: asyncio.Semaphore | None = None
    _executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=WORKER_THREADS, thread_name_prefix="failover")
    )
    _prometheus: PrometheusQueries = field(default_factory=PrometheusQueries)

    # ------------------------------------------------------------------------------------ registration

    def register(self, body: Any, logger: Any, pods_index: Any, nodes_index: Any) -> None:
        """Called by the object's daemon when it starts: this replica acts on the object from now on."""
        metadata = body["metadata"]
        key = (str(metadata["namespace"]), str(metadata["name"]))
        self._pods, self._nodes = pods_index, nodes_index
        old = self.watched.get(key)
        if old is not None:
            old.registered = False
        spec = _parse_spec(body)
        interval = float(spec.failover.probe_interval_seconds if spec is not None else DEFAULT_INTERVAL)
        self.watched[key] = Watched(key[0], key[1], body, logger, next_due=self._next_tick(interval))
        if self._wake is None:
            self._wake = asyncio.Event()
            self._probe_limit = asyncio.Semaphore(MAX_CONCURRENT_PROBES)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.run(), name="failover checks")
        self._wake.set()

    def unregister(self, namespace: str, name: str) -> None:
        """Called by the daemon when it stops (object deleted, operator paused or exiting)."""
        watched = self.watched.pop((namespace, name), None)
        if watched is not None:
            watched.registered = False

    # ------------------------------------------------------------------------------------ the loop

    async def run(self) -> None:
        assert self._wake is not None
        while True:
            now = self.clock()
            due = [w for w in self.watched.values() if w.next_due <= now + TICK_SLACK_SECONDS]
            if not due:
                upcoming = min((w.next_due for w in self.watched.values()), default=None)
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._wake.wait(), None if upcoming is None else max(0.0, upcoming - now)
                    )
                continue
            try:
                await self.check(due)
            except Exception:
                log.exception("failover checks failed; trying again at the next interval")

    async def _in_thread(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    def _next_tick(self, interval: float) -> float:
        """The next point of a grid of `interval` seconds on the monotonic clock. Every deployment with
        the same interval (or a multiple of it) is checked at the same moments, so one query per signal
        serves them all."""
        return (math.floor(self.clock() / interval) + 1) * interval

    def _schedule(self, watched: Watched, spec: DeepSeekDeploymentSpec | None) -> float:
        interval = float(spec.failover.probe_interval_seconds if spec is not None else DEFAULT_INTERVAL)
        watched.next_due = self._next_tick(interval)
        return interval

    async def check(self, due: list[Watched]) -> None:
        """One check of every due DeepSeekDeployment, with one query per distinct PromQL for all of them."""
        entries = []
        for watched in due:
            body = watched.snapshot()
            spec = watched.spec(body)
            interval = self._schedule(watched, spec)
            if spec is not None:
                entries.append((watched, spec, body, interval))
        queries: dict[tuple[str, str], float] = {}
        for watched, spec, _, interval in entries:
            for _, key in self._metric_queries(watched, spec):
                if isinstance(key, tuple):
                    queries[key] = min(queries.get(key, math.inf), probe_timeout(interval))
        keys = list(queries)
        answers = await asyncio.gather(
            *(
                self._in_thread(self._prometheus.query, url, promql, queries[(url, promql)])
                for url, promql in keys
            )
        )
        results = dict(zip(keys, answers, strict=True))
        nodes = self._node_map()
        outcomes = await asyncio.gather(
            *(
                self.evaluate(watched, spec, body, interval, results, nodes)
                for watched, spec, body, interval in entries
            ),
            return_exceptions=True,
        )
        for (watched, _, _, _), outcome in zip(entries, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                watched.logger.error(
                    "failover check of %s/%s failed: %r",
                    watched.namespace,
                    watched.name,
                    outcome,
                    exc_info=outcome,
                )

    def _metric_queries(
        self, watched: Watched, spec: DeepSeekDeploymentSpec
    ) -> list[tuple[FailoverSignal, tuple[str, str] | str]]:
        """Per metric signal: (Prometheus URL, PromQL), or why there is no query."""
        if watched.queries is None or watched.queries[0] is not spec:
            watched.queries = (spec, self._render_queries(watched, spec))
        return watched.queries[1]

    def _render_queries(
        self, watched: Watched, spec: DeepSeekDeploymentSpec
    ) -> list[tuple[FailoverSignal, tuple[str, str] | str]]:
        if not spec.failover.enabled or len(spec.regions) < 2:
            return []
        url = spec.monitoring.prometheus_url
        found: list[tuple[FailoverSignal, tuple[str, str] | str]] = []
        for signal in METRIC_SIGNALS:
            if signal not in spec.failover.signals:
                continue
            if url is None:
                found.append((signal, "spec.monitoring.prometheusUrl is not set"))
                continue
            try:
                found.append((signal, (url, render_query(spec, watched.namespace, watched.name, signal))))
            except QueryTemplateError as error:
                found.append((signal, str(error)))
        return found

    def _node_map(self) -> dict[str, NodeSummary]:
        if self._nodes is None:
            return {}
        return {
            str(name): summary for name, store in list(self._nodes.items()) for summary in list(store)[:1]
        }

    def _pods_of(self, watched: Watched) -> list[PodSummary]:
        if self._pods is None:
            return []
        return list(self._pods.get((watched.namespace, watched.name), []))

    # ------------------------------------------------------------------------------------ one object

    async def evaluate(
        self,
        watched: Watched,
        spec: DeepSeekDeploymentSpec,
        body: dict[str, Any],
        interval: float,
        results: Mapping[tuple[str, str], QueryResult],
        nodes: Mapping[str, NodeSummary],
    ) -> None:
        status = body.get("status") or {}
        previous = watched.previous_status(status)
        now = self.wall()
        if not spec.failover.enabled or len(spec.regions) < 2:
            await self.act(watched, spec, body, previous, step(spec, previous, {}, now))
            return
        placement = placement_from_status(spec, status)
        plan = plan_replicas(spec, placement.active_region, placement.adjustments)
        probed = {placement.active_region, *placement.adjustments.full_regions}
        pods = self._pods_of(watched)
        metric_values = self._metric_values(watched, spec, results)
        timeout = probe_timeout(interval)
        names = [region.name for region in spec.regions]
        found = await asyncio.gather(
            *(
                self.check_region(
                    watched,
                    spec,
                    name,
                    plan[name].total,
                    pods,
                    nodes,
                    probe=name in probed,
                    receives_traffic=name == placement.active_region,
                    metric_values=metric_values,
                    probe_timeout_seconds=timeout,
                )
                for name in names
            )
        )
        checks: dict[str, RegionCheck] = dict(zip(names, found, strict=True))
        watched.turn += 1
        acknowledged = _acknowledged(body)
        decision = step(spec, previous, checks, now, acknowledged)
        verified: set[str] = set()
        while decision.verify:
            for target in decision.verify:
                checks[target] = await self.verify_region(
                    spec, checks[target], plan[target].total, live_pods(pods, target), nodes, timeout
                )
                verified.add(target)
            decision = step(spec, previous, checks, now, acknowledged, frozenset(verified))
        await self.act(watched, spec, body, previous, decision)

    def _metric_values(
        self, watched: Watched, spec: DeepSeekDeploymentSpec, results: Mapping[tuple[str, str], QueryResult]
    ) -> dict[FailoverSignal, Callable[[str], MetricValue]]:
        values: dict[FailoverSignal, Callable[[str], MetricValue]] = {}
        for signal, key in self._metric_queries(watched, spec):
            if isinstance(key, str):
                values[signal] = _unavailable(key)
            else:
                values[signal] = _lookup(results[key], watched.namespace, watched.name)
        return values

    async def check_region(
        self,
        watched: Watched,
        spec: DeepSeekDeploymentSpec,
        region: str,
        desired: int,
        pods: list[PodSummary],
        nodes: Mapping[str, NodeSummary],
        *,
        probe: bool,
        receives_traffic: bool,
        metric_values: Mapping[FailoverSignal, Callable[[str], MetricValue]],
        probe_timeout_seconds: float,
    ) -> RegionCheck:
        signals = spec.failover.signals
        live = live_pods(pods, region)
        needed = needed_replicas(spec, desired)
        cheap = [nodes_result(region, live, nodes, needed), pods_result(live, needed, desired)]
        results = [result for result in cheap if result.signal in signals]
        probes: list[EngineProbe] = []
        if FailoverSignal.ENGINE_UNHEALTHY in signals:
            conclusive = next((r for r in results if r.outcome is Outcome.FAIL), None)
            if conclusive is not None:
                results.append(
                    SignalResult(
                        FailoverSignal.ENGINE_UNHEALTHY,
                        Outcome.SKIPPED,
                        f"not probed: {conclusive.signal.value} already fails",
                    )
                )
            elif not probe:
                results.append(
                    SignalResult(
                        FailoverSignal.ENGINE_UNHEALTHY,
                        Outcome.SKIPPED,
                        "not probed: a standby region's engines are probed when it is about to take the traffic",
                    )
                )
            else:
                candidates = probe_candidates(live, nodes)
                sample = probe_sample(candidates, needed, watched.turn)
                probes = await self._probe(sample, probe_timeout_seconds)
                if any(p.outcome is not Outcome.PASS for p in probes):
                    # The sample is not conclusive: probe every pod for the count.
                    rest = [pod for pod in candidates if pod not in sample]
                    probes += await self._probe(rest, probe_timeout_seconds)
                results.append(engine_result(probes, len(candidates), needed))
        window = spec.failover.metrics_window
        error_ratio = None
        for signal in METRIC_SIGNALS:
            if signal in signals:
                measured = metric_values[signal](region) if signal in metric_values else None
                results.append(
                    metric_result(signal, measured, metric_threshold(spec, signal), window, receives_traffic)
                )
                if (
                    signal is FailoverSignal.ERROR_RATE
                    and measured is not None
                    and measured.value is not None
                ):
                    error_ratio = None if math.isnan(measured.value) else measured.value
        return RegionCheck(
            region,
            tuple(results),
            ready_replicas=sum(1 for pod in live if pod.ready),
            serving_replicas=serving_replicas(live, nodes, probes),
            error_ratio=error_ratio,
        )

    async def verify_region(
        self,
        spec: DeepSeekDeploymentSpec,
        check: RegionCheck,
        desired: int,
        live: list[PodSummary],
        nodes: Mapping[str, NodeSummary],
        probe_timeout_seconds: float,
    ) -> RegionCheck:
        """Probe every engine of a region about to take the traffic."""
        candidates = probe_candidates(live, nodes)
        probes = await self._probe(candidates, probe_timeout_seconds)
        result = engine_result(probes, len(candidates), needed_replicas(spec, desired))
        return check.with_result(result, serving_replicas=serving_replicas(live, nodes, probes))

    async def _probe(self, pods: list[PodSummary], probe_timeout_seconds: float) -> list[EngineProbe]:
        if not pods:
            return []
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=MAX_CONCURRENT_PROBES))
        assert self._probe_limit is not None
        return await probe_engines(
            self._session, pods, self.probe_annotation, probe_timeout_seconds, self._probe_limit
        )

    # ------------------------------------------------------------------------------------ acting

    async def act(
        self,
        watched: Watched,
        spec: DeepSeekDeploymentSpec,
        body: dict[str, Any],
        previous: FailoverStatus | None,
        decision: Decision,
    ) -> None:
        if not watched.registered:
            return  # paused or gone while checking: not this replica's to act on any more
        namespace, name = watched.namespace, watched.name
        status = body.get("status") or {}
        metadata = body.get("metadata") or {}
        new = _dump(decision.status)
        old = status.get("failover")
        now = self.wall()
        conditions = condition_objects(
            decision.conditions, status.get("conditions") or [], metadata.get("generation"), now
        )
        owned_before = [
            c
            for c in status.get("conditions") or []
            if c.get("type") in {v.type.value for v in decision.conditions}
        ]
        metrics.record_region_health(
            namespace, name, {r.name: r.state.value for r in decision.status.regions}
        )
        changed = _material(new) != _material(old) or _comparable(conditions) != _comparable(owned_before)
        reconciled = False
        heartbeat = decision.status.regions and self.clock() - watched.written_at >= HEARTBEAT_SECONDS
        if changed or heartbeat:
            try:
                await self._in_thread(
                    self.kube().apply_failover_status,
                    namespace,
                    name,
                    new,
                    conditions,
                    str(metadata.get("resourceVersion")),
                )
            except StatusConflictError:
                # Decided from an object that changed since: decide again from the new one, now.
                watched.next_due = self.clock()
                return
            watched.written_at = self.clock()
            for event in decision.events:
                watched.logger.info("failover %s: %s", event.reason, event.message)
            for event in decision.events:
                await self._post_event(body, event.type, event.reason, event.message)
            routing_before = failover_routing(spec, {"failover": old or {}})
            routing_after = failover_routing(spec, {"failover": new})
            if routing_after != routing_before:
                await self._reconcile(watched)
                reconciled = True
        await self._record_switch(watched, decision.status, reconciled)

    async def _reconcile(self, watched: Watched) -> None:
        try:
            await self._in_thread(
                self.reconcile, self.kube(), watched.namespace, watched.name, watched.logger
            )
        except Exception as error:
            # kopf's handlers retry; the next check looks again.
            watched.logger.warning("reconcile after a failover decision failed: %s", error)

    async def _record_switch(self, watched: Watched, decided: FailoverStatus, reconciled: bool) -> None:
        """The traffic moved (lastFailover without switchedAt): once the reconcile has applied the front
        Service, record when, with the switch's duration, and count it. Also after a restart between the
        two writes: the reconcile is idempotent, and the write is refused if another replica did it."""
        last = decided.last_failover
        if last is None or last.switched_at is not None or decided.pending_switch is not None:
            return
        if last.to_region != decided.active_region or not watched.registered:
            return
        if not reconciled:
            # Recorded already, and kopf's view of the object lags behind? Then there is nothing to do.
            if self._recorded(await self._read(watched), last) is not False:
                return
            await self._reconcile(watched)
        switched = self.wall()
        fresh = await self._read(watched)
        if fresh is None or self._recorded(fresh, last) is not False:
            return
        current = _previous(fresh.get("status") or {})
        assert current is not None
        assert current.last_failover is not None
        detected = current.last_failover.detected_at or current.last_failover.decided_at or switched
        duration_ms = max(0, round((switched - detected).total_seconds() * 1000))
        updated = current.model_copy(
            update={
                "last_failover": current.last_failover.model_copy(
                    update={"switched_at": switched, "duration_milliseconds": duration_ms}
                )
            }
        )
        fresh_status = fresh.get("status") or {}
        owned = [
            c
            for c in fresh_status.get("conditions") or []
            if c.get("type") in ("FailoverReady", "SignalsAvailable")
        ]
        try:
            await self._in_thread(
                self.kube().apply_failover_status,
                watched.namespace,
                watched.name,
                _dump(updated),
                owned,
                str(fresh["metadata"]["resourceVersion"]),
            )
        except StatusConflictError:
            watched.next_due = self.clock()
            return
        watched.written_at = self.clock()
        record = updated.last_failover
        assert record is not None
        metrics.count_failover(
            watched.namespace,
            watched.name,
            record.from_region,
            record.to_region,
            record.reason,
            duration_ms / 1000,
        )
        watched.logger.info(
            "failover switched: %s -> %s (%s) %d ms after detection, front Service applied at %s",
            record.from_region,
            record.to_region,
            record.reason,
            duration_ms,
            _timestamp(switched),
        )

    async def _read(self, watched: Watched) -> dict[str, Any] | None:
        found: dict[str, Any] | None = await self._in_thread(
            self.kube().read_deepseek_deployment, watched.namespace, watched.name
        )
        return found

    @staticmethod
    def _recorded(fresh: Mapping[str, Any] | None, last: FailoverRecord) -> bool | None:
        """Whether the switch `last` has its switchedAt in the object; None when the object is gone or
        records another switch."""
        if fresh is None:
            return None
        current = _previous(fresh.get("status") or {})
        if (
            current is None
            or current.last_failover is None
            or current.last_failover.decided_at != last.decided_at
        ):
            return None
        return current.last_failover.switched_at is not None

    async def _post_event(self, body: Mapping[str, Any], event_type: str, reason: str, message: str) -> None:
        try:
            await self._in_thread(self.kube().post_event, body, event_type, reason, message, EVENT_COMPONENT)
        except Exception as error:  # an event is best effort; the decision is in status
            log.warning("could not post event %s: %s", reason, error)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._session is not None:
            await self._session.close()
        self._executor.shutdown(wait=False)
