"""One health check of one region: what each signal found (pure: no I/O).

The inputs are what the observer gathered: pod and node summaries from the watch-backed indexes,
engine probe results and PromQL values. Each enabled signal gives Pass, Fail, Unknown (it could not be
evaluated: that is neither a failure nor health) or Skipped (deliberately not evaluated, e.g. the engine
of a standby region, whose kubelet readiness probe is watched through PodsNotReady meanwhile).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from deepseek_operator.api import DeepSeekDeploymentSpec, FailoverSignal
from deepseek_operator.indexes import NodeSummary, PodSummary
from deepseek_operator.render.pods import HEALTH_PATH

# A region whose requests fail at least this often serves nothing worth keeping the traffic for: a
# switch moves the traffic to the target's warm replicas at once instead of waiting for it to fill up.
MOSTLY_FAILING_RATIO = 0.5


class Outcome(StrEnum):
    PASS = "Pass"  # noqa: S105 (an outcome, not a password)
    FAIL = "Fail"
    UNKNOWN = "Unknown"
    SKIPPED = "Skipped"


@dataclass(frozen=True)
class SignalResult:
    signal: FailoverSignal
    outcome: Outcome
    message: str


@dataclass(frozen=True)
class RegionCheck:
    """One check of one region: a result per enabled signal, and the replica counts the switch uses."""

    region: str
    results: tuple[SignalResult, ...]
    # Ready pods (not terminating): how far a raised failover target is.
    ready_replicas: int = 0
    # Ready pods on Ready nodes whose engine did not fail its probe: 0 means nothing can serve.
    serving_replicas: int = 0
    # The ErrorRate signal's measured ratio (0..1), when it was evaluated.
    error_ratio: float | None = None

    @property
    def outcome(self) -> Outcome:
        """Fail when any signal fails, Pass when none fails and one passes, else Unknown."""
        outcomes = {result.outcome for result in self.results}
        if Outcome.FAIL in outcomes:
            return Outcome.FAIL
        if Outcome.PASS in outcomes:
            return Outcome.PASS
        return Outcome.UNKNOWN

    def signals(self, outcome: Outcome) -> tuple[FailoverSignal, ...]:
        return tuple(result.signal for result in self.results if result.outcome is outcome)

    def result(self, signal: FailoverSignal) -> SignalResult | None:
        return next((result for result in self.results if result.signal is signal), None)

    @property
    def down(self) -> str | None:
        """Why nothing in the region serves (it failed this check, and no replica is left that can serve,
        or most requests fail); None when it still serves."""
        if self.outcome is not Outcome.FAIL:
            return None
        if self.serving_replicas == 0:
            return "no replica left that can serve"
        if self.error_ratio is not None and self.error_ratio >= MOSTLY_FAILING_RATIO:
            return f"{self.error_ratio:.0%} of its requests fail"
        return None

    def summary(self) -> str:
        """Failing signals first, then those that could not be evaluated, then the passing ones."""
        order = (Outcome.FAIL, Outcome.UNKNOWN, Outcome.PASS, Outcome.SKIPPED)
        ranked = sorted(self.results, key=lambda result: order.index(result.outcome))
        return "; ".join(
            f"{result.signal.value} {result.outcome.value.lower()}: {result.message}" for result in ranked
        )

    def with_result(self, replacement: SignalResult, serving_replicas: int | None = None) -> RegionCheck:
        """This check with one signal's result replaced (an engine verification)."""
        results = tuple(replacement if r.signal is replacement.signal else r for r in self.results)
        return RegionCheck(
            region=self.region,
            results=results,
            ready_replicas=self.ready_replicas,
            serving_replicas=self.serving_replicas if serving_replicas is None else serving_replicas,
            error_ratio=self.error_ratio,
        )


@dataclass(frozen=True)
class EngineProbe:
    """The answer of one pod's engine to GET /health."""

    pod: str
    outcome: Outcome  # PASS (2xx), FAIL (another status, refused, timed out) or UNKNOWN (no address)
    detail: str


@dataclass(frozen=True)
class MetricValue:
    """A PromQL value for one region; or why there is none: the query failed (error), or its result has
    no sample for the region (missing)."""

    value: float | None = None
    error: str | None = None
    missing: str | None = None


def needed_replicas(spec: DeepSeekDeploymentSpec, desired: int) -> int:
    """Replicas a region needs to serve: failover.minReadyReplicas, at most what it is asked to run."""
    return min(spec.failover.min_ready_replicas, desired)


def live_pods(pods: Sequence[PodSummary], region: str) -> list[PodSummary]:
    """The region's pods that are not being deleted, by name."""
    return sorted((p for p in pods if p.region == region and not p.terminating), key=lambda p: p.name)


def _node_ok(node: str | None, nodes: Mapping[str, NodeSummary]) -> bool:
    summary = nodes.get(node) if node else None
    return summary is not None and summary.ready and not summary.deleting


def probe_candidates(pods: Sequence[PodSummary], nodes: Mapping[str, NodeSummary]) -> list[PodSummary]:
    """Pods whose engine can be probed: running on a Ready node, ready ones first."""
    running = [p for p in pods if p.phase == "Running" and _node_ok(p.node, nodes)]
    return sorted(running, key=lambda p: (not p.ready, p.name))


def probe_sample(candidates: Sequence[PodSummary], needed: int, turn: int) -> list[PodSummary]:
    """`needed` candidates (at least one), taken in turn so that every pod is probed over time."""
    if not candidates:
        return []
    count = min(len(candidates), max(1, needed))
    start = turn % len(candidates)
    rotated = [*candidates[start:], *candidates[:start]]
    return rotated[:count]


def nodes_result(
    region: str, pods: Sequence[PodSummary], nodes: Mapping[str, NodeSummary], needed: int
) -> SignalResult:
    signal = FailoverSignal.NODES_NOT_READY
    scheduled = [p for p in pods if p.node]
    if not scheduled:
        region_nodes = [n for n in nodes.values() if n.region == region]
        if not region_nodes:
            return SignalResult(
                signal, Outcome.UNKNOWN, f"no pod scheduled and no node labelled with region {region}"
            )
        ready = [n for n in region_nodes if n.ready and not n.deleting]
        if ready or needed == 0:
            return SignalResult(
                signal,
                Outcome.PASS,
                f"no pod scheduled; {len(ready)} of {len(region_nodes)} region nodes Ready",
            )
        return SignalResult(signal, Outcome.FAIL, f"none of the region's {len(region_nodes)} nodes is Ready")
    on_ready = [p for p in scheduled if _node_ok(p.node, nodes)]
    text = f"{len(on_ready)} of {len(scheduled)} scheduled pods on Ready nodes (needs {needed})"
    if len(on_ready) >= needed:
        return SignalResult(signal, Outcome.PASS, text)
    lost = sorted({str(p.node) for p in scheduled if not _node_ok(p.node, nodes)})
    states = ", ".join(f"{name}: {'NotReady' if name in nodes else 'gone'}" for name in lost[:5])
    return SignalResult(signal, Outcome.FAIL, f"{text}; {states}")


def pods_result(pods: Sequence[PodSummary], needed: int, desired: int) -> SignalResult:
    ready = sum(1 for p in pods if p.ready)
    text = f"{ready} ready of {desired} asked for (needs {needed})"
    return SignalResult(
        FailoverSignal.PODS_NOT_READY, Outcome.PASS if ready >= needed else Outcome.FAIL, text
    )


def engine_result(probes: Sequence[EngineProbe], candidates: int, needed: int) -> SignalResult:
    """From the probes made (a sample, or every candidate once the sample failed)."""
    signal = FailoverSignal.ENGINE_UNHEALTHY
    if needed == 0:
        return SignalResult(signal, Outcome.PASS, "no replica asked for")
    if candidates == 0:
        return SignalResult(signal, Outcome.FAIL, "no pod running on a Ready node to probe")
    passed = [p for p in probes if p.outcome is Outcome.PASS]
    failed = [p for p in probes if p.outcome is Outcome.FAIL]
    unknown = [p for p in probes if p.outcome is Outcome.UNKNOWN]
    text = f"{len(passed)} of {len(probes)} probed pods answer {HEALTH_PATH} (needs {needed})"
    details = "; ".join(f"{p.pod}: {p.detail}" for p in [*failed, *unknown][:3])
    if details:
        text = f"{text}; {details}"
    if len(passed) >= needed:
        return SignalResult(signal, Outcome.PASS, text)
    if len(passed) + len(unknown) < needed:
        return SignalResult(signal, Outcome.FAIL, text)
    return SignalResult(signal, Outcome.UNKNOWN, text)


@dataclass(frozen=True)
class MetricThreshold:
    """How a metric signal's value compares with its limit, in the unit people set it in."""

    scale: float  # value * scale is in `unit`
    limit: int
    unit: str
    what: str


def metric_threshold(spec: DeepSeekDeploymentSpec, signal: FailoverSignal) -> MetricThreshold:
    failover = spec.failover
    if signal is FailoverSignal.ERROR_RATE:
        return MetricThreshold(100.0, failover.error_rate_percent, "%", "of requests failed")
    if signal is FailoverSignal.LATENCY:
        return MetricThreshold(1000.0, failover.p99_latency_milliseconds, "ms", "p99 end-to-end latency")
    if signal is FailoverSignal.TIME_TO_FIRST_TOKEN:
        return MetricThreshold(
            1000.0, failover.p99_time_to_first_token_milliseconds, "ms", "p99 time to first token"
        )
    raise ValueError(f"{signal.value} is not a metric signal")


def metric_result(
    signal: FailoverSignal,
    measured: MetricValue | None,
    threshold: MetricThreshold,
    window: str,
    receives_traffic: bool,
) -> SignalResult:
    """Pass or Fail against the threshold; Unknown when the query failed or (for the region taking the
    traffic) found no sample; Skipped when a region without traffic has no sample, as expected."""
    if measured is not None and measured.error is not None:
        return SignalResult(signal, Outcome.UNKNOWN, measured.error)
    value = measured.value if measured is not None else None
    if value is None or math.isnan(value):
        if value is not None:
            reason = f"no request in the last {window}"
        elif measured is not None and measured.missing is not None:
            reason = measured.missing
        else:
            reason = "no sample"
        if receives_traffic:
            return SignalResult(signal, Outcome.UNKNOWN, reason)
        return SignalResult(signal, Outcome.SKIPPED, f"{reason} (the region takes no traffic)")
    scaled = value * threshold.scale
    shown = "+Inf" if math.isinf(scaled) else f"{scaled:.4g}"
    text = f"{shown}{threshold.unit} {threshold.what} (limit {threshold.limit}{threshold.unit})"
    return SignalResult(signal, Outcome.FAIL if scaled > threshold.limit else Outcome.PASS, text)


def serving_replicas(
    pods: Sequence[PodSummary], nodes: Mapping[str, NodeSummary], probes: Sequence[EngineProbe]
) -> int:
    """Ready pods on Ready nodes whose engine did not fail a probe."""
    failed = {p.pod for p in probes if p.outcome is Outcome.FAIL}
    return sum(1 for p in pods if p.ready and _node_ok(p.node, nodes) and p.name not in failed)
