"""The operator's own Prometheus metrics (served on DEEPSEEK_OPERATOR_METRICS_ADDRESS, default :9090).

Series labelled with a DeepSeekDeployment's namespace and name are written only through the functions
below, which remember them per object: a region or pool that leaves the spec loses its series at the
next status, and `forget` removes every series of an object that is gone.
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from deepseek_operator.api import DeepSeekDeploymentStatus, SpotStatus

METRICS_ADDRESS_ENV = "DEEPSEEK_OPERATOR_METRICS_ADDRESS"
DEFAULT_METRICS_ADDRESS = "0.0.0.0:9090"

RECONCILES = Counter(
    "deepseek_operator_reconciles_total",
    "Reconciles of DeepSeekDeployments, by result (success, problem, invalid, skipped, error).",
    ["namespace", "name", "result"],
)
RECONCILE_SECONDS = Histogram(
    "deepseek_operator_reconcile_duration_seconds",
    "Time one reconcile takes (render, apply, prune, status).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CHILDREN_PRUNED = Counter(
    "deepseek_operator_children_pruned_total",
    "Children deleted because the spec no longer asks for them.",
    ["namespace", "name", "kind"],
)
REPLICAS = Gauge(
    "deepseek_operator_replicas",
    "Replicas per region and capacity pool, desired by the operator or ready.",
    ["namespace", "name", "region", "pool", "state"],
)
ACTIVE_REGION = Gauge(
    "deepseek_operator_active_region",
    "1 for the region that takes traffic, 0 for the others.",
    ["namespace", "name", "region"],
)
FAILOVERS = Counter(
    "deepseek_operator_failovers",
    "Switches of the traffic to another region, by reason (the failing signal, or Failback).",
    ["namespace", "name", "from_region", "to_region", "reason"],
)
REGION_HEALTH = Gauge(
    "deepseek_operator_region_health",
    "1 for the health state the failover controller gives a region (Healthy, Unhealthy, Unknown), 0 for the others.",
    ["namespace", "name", "region", "state"],
)
SWITCH_SECONDS = Histogram(
    "deepseek_operator_failover_switch_duration_seconds",
    "From a region's first failed check (a failback: its decision) to the front Service selecting the new region.",
    ["reason"],
    buckets=(0.5, 1, 2, 3, 4, 5, 7.5, 10, 15, 20, 30, 60, 120, 300),
)
PROMETHEUS_QUERIES = Counter(
    "deepseek_operator_failover_prometheus_queries",
    "PromQL queries of the failover controller's metric signals (one per distinct query per check interval).",
    ["result"],
)
ENGINE_PROBES = Counter(
    "deepseek_operator_failover_engine_probes",
    "GET /health probes of inference pods by the failover controller, by outcome (pass, fail, unknown).",
    ["outcome"],
)
# The spot controller's (deepseek_operator.spot).
SPOT_FALLBACK_REPLICAS = Gauge(
    "deepseek_operator_spot_fallback_replicas",
    "On-demand replicas running in place of spot replicas (interrupted, or Pending for capacity).",
    ["namespace", "name", "region"],
)
SPOT_SPILL_REPLICAS = Gauge(
    "deepseek_operator_spot_spill_replicas",
    "Spot replicas running in place of on-demand replicas Pending for capacity (spot.fallback.spillToSpot).",
    ["namespace", "name", "region"],
)
SPOT_SUPPRESSED = Gauge(
    "deepseek_operator_spot_suppressed",
    "1 while spot is not used in a region because it was interrupted too often (its cooldown).",
    ["namespace", "name", "region"],
)
SPOT_INTERRUPTIONS = Counter(
    "deepseek_operator_spot_interruptions",
    "Interruption notices seen under spot replicas (each node once), by signal (a taint key, NodeDeleting, "
    "NodeNotReady, NodeGone, DisruptionTarget/<reason>).",
    ["namespace", "name", "region", "signal"],
)
SPOT_REPLACEMENT_SECONDS = Histogram(
    "deepseek_operator_spot_replacement_seconds",
    "From an interruption notice (or the start of a shortage) until the region's replicas are ready again, "
    "by cause (Interruption, Shortage, OnDemandShortage).",
    ["cause"],
    buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600),
)
REPLICA_SECONDS = Counter(
    "deepseek_operator_replica_seconds",
    "Ready replicas integrated over time, per region and capacity type (on-demand, spot): the cost split.",
    ["namespace", "name", "region", "capacity_type"],
)
PREDICTIVE_FORECAST = Gauge(
    "deepseek_operator_predictive_forecast_requests_per_second",
    "Predictive pre-scaling: the highest request rate forecast within the horizon.",
    ["namespace", "name"],
)
PREDICTIVE_FLOOR = Gauge(
    "deepseek_operator_predictive_floor_replicas",
    "Predictive pre-scaling: the floor applied to the autoscaler's minimum (0: none).",
    ["namespace", "name"],
)
PREDICTIVE_ERROR = Gauge(
    "deepseek_operator_predictive_forecast_error_percent",
    "Predictive pre-scaling: mean absolute percentage error of the forecasts over the most recent day.",
    ["namespace", "name"],
)


GaugeSeries = tuple[Gauge, tuple[str, ...]]
CounterSeries = tuple[Counter, tuple[str, ...]]
_lock = threading.Lock()
# Per DeepSeekDeployment (namespace, name): the gauge series its last status set, and its counter series.
_gauges: dict[tuple[str, str], set[GaugeSeries]] = {}
# The failover controller's gauges, per DeepSeekDeployment (written apart from the reconcile's).
# Per DeepSeekDeployment: the predictive pre-scaler's gauge series (set by its own looks, not by status).
_predictive: dict[tuple[str, str], set[GaugeSeries]] = {}
_failover_gauges: dict[tuple[str, str], set[GaugeSeries]] = {}
_counters: defaultdict[tuple[str, str], set[CounterSeries]] = defaultdict(set)
# ... and the gauge series the spot controller's last decision set (apart: each writer removes only its own).
_spot_gauges: dict[tuple[str, str], set[GaugeSeries]] = {}


def record_status(namespace: str, name: str, status: DeepSeekDeploymentStatus) -> None:
    """Set the gauges of one DeepSeekDeployment from its status, and remove those it no longer has."""
    values: dict[GaugeSeries, float] = {}
    for region in status.regions:
        values[(ACTIVE_REGION, (namespace, name, region.name))] = (
            1 if region.name == status.active_region else 0
        )
        for pool in region.pools:
            pool_labels = (namespace, name, region.name, pool.name.value)
            values[(REPLICAS, (*pool_labels, "desired"))] = pool.desired_replicas or 0
            values[(REPLICAS, (*pool_labels, "ready"))] = pool.ready_replicas or 0
    key = (namespace, name)
    with _lock:
        for metric, labels in _gauges.get(key, set()) - values.keys():
            metric.remove(*labels)
        for (metric, labels), value in values.items():
            metric.labels(*labels).set(value)
        _gauges[key] = set(values)


def record_region_health(namespace: str, name: str, states: dict[str, str]) -> None:
    """Region -> health state (Healthy, Unhealthy, Unknown) of one DeepSeekDeployment; regions it no
    longer has lose their series."""
    values: dict[GaugeSeries, float] = {}
    for region, state in states.items():
        for candidate in ("Healthy", "Unhealthy", "Unknown"):
            values[(REGION_HEALTH, (namespace, name, region, candidate))] = 1 if candidate == state else 0
    key = (namespace, name)
    with _lock:
        for metric, labels in _failover_gauges.get(key, set()) - values.keys():
            metric.remove(*labels)
        for (metric, labels), value in values.items():
            metric.labels(*labels).set(value)
        _failover_gauges[key] = set(values)


def count_failover(
    namespace: str, name: str, from_region: str, to_region: str, reason: str, seconds: float | None
) -> None:
    _increment(FAILOVERS, (namespace, name, from_region, to_region, reason))
    if seconds is not None:
        SWITCH_SECONDS.labels(reason).observe(seconds)


def count_prometheus_query(result: str) -> None:
    PROMETHEUS_QUERIES.labels(result).inc()


def count_engine_probe(outcome: str) -> None:
    ENGINE_PROBES.labels(outcome).inc()


def record_predictive(
    namespace: str, name: str, forecast: float | None, floor: int | None, error_percent: float | None
) -> None:
    """The pre-scaler's figures of one DeepSeekDeployment; a None forecast or error removes its series
    (no forecast is not a forecast of 0), and calling with all None removes them all."""
    labels = (namespace, name)
    values: dict[GaugeSeries, float] = {}
    if forecast is not None:
        values[(PREDICTIVE_FORECAST, labels)] = forecast
    if error_percent is not None:
        values[(PREDICTIVE_ERROR, labels)] = error_percent
    if forecast is not None or floor is not None or error_percent is not None:
        values[(PREDICTIVE_FLOOR, labels)] = floor or 0
    with _lock:
        for metric, series_labels in _predictive.get(labels, set()) - values.keys():
            metric.remove(*series_labels)
        for (metric, series_labels), value in values.items():
            metric.labels(*series_labels).set(value)
        _predictive[labels] = set(values)


def count_reconcile(namespace: str, name: str, result: str) -> None:
    _increment(RECONCILES, (namespace, name, result))


def count_pruned(namespace: str, name: str, kind: str) -> None:
    _increment(CHILDREN_PRUNED, (namespace, name, kind))


def _increment(counter: Counter, labels: tuple[str, ...]) -> None:
    with _lock:
        counter.labels(*labels).inc()
        _counters[(labels[0], labels[1])].add((counter, labels))


# The spot controller's counters, labelled (namespace, name, region, ...): they go with their region.
_SPOT_COUNTERS = (SPOT_INTERRUPTIONS, REPLICA_SECONDS)


def record_spot(namespace: str, name: str, status: SpotStatus | None) -> None:
    """Set the spot controller's gauges from its status (None: spot is off), removing those it no longer
    has, and its counters of regions that are gone."""
    regions = {region.name for region in status.regions} if status else set()
    values: dict[GaugeSeries, float] = {}
    for region in status.regions if status else ():
        region_labels = (namespace, name, region.name)
        values[(SPOT_FALLBACK_REPLICAS, region_labels)] = region.fallback_replicas
        values[(SPOT_SPILL_REPLICAS, region_labels)] = region.spill_replicas
        values[(SPOT_SUPPRESSED, region_labels)] = 1 if region.suppressed_until is not None else 0
    key = (namespace, name)
    with _lock:
        for metric, series in _spot_gauges.get(key, set()) - values.keys():
            metric.remove(*series)
        for (metric, series), value in values.items():
            metric.labels(*series).set(value)
        _spot_gauges[key] = set(values)
        counters = _counters.get(key, set())
        for counter, series in [(c, labels) for c, labels in counters if c in _SPOT_COUNTERS]:
            if series[2] not in regions:
                counter.remove(*series)
                counters.discard((counter, series))


def count_interruption(namespace: str, name: str, region: str, signal: str) -> None:
    _add(SPOT_INTERRUPTIONS, (namespace, name, region, signal), 1)


def add_replica_seconds(namespace: str, name: str, region: str, capacity_type: str, seconds: float) -> None:
    if seconds > 0:
        _add(REPLICA_SECONDS, (namespace, name, region, capacity_type), seconds)


def observe_replacement(cause: str, seconds: float) -> None:
    SPOT_REPLACEMENT_SECONDS.labels(cause).observe(seconds)


def _add(counter: Counter, labels: tuple[str, ...], amount: float) -> None:
    with _lock:
        counter.labels(*labels).inc(amount)
        _counters[(labels[0], labels[1])].add((counter, labels))


def forget(namespace: str, name: str) -> None:
    """Remove every series of DeepSeekDeployment namespace/name: it is gone, and so are its figures (a
    gauge left behind would keep its last value, and alerts on it firing, until the operator restarts)."""
    key = (namespace, name)
    with _lock:
        for gauge, labels in (
            _gauges.pop(key, set()) | _failover_gauges.pop(key, set()) | _predictive.pop(key, set())
        ):
            gauge.remove(*labels)
        for gauge, labels in _spot_gauges.pop(key, set()):
            gauge.remove(*labels)
        for counter, labels in _counters.pop(key, set()):
            counter.remove(*labels)


def parse_address(address: str) -> tuple[str, int]:
    """`host:port` (or `:port`); a clear error names the variable and the expected form."""
    host, separator, port = address.rpartition(":")
    if not separator or not port.isdigit():
        raise ValueError(
            f"{METRICS_ADDRESS_ENV}={address!r} is not host:port: use e.g. 0.0.0.0:9090, or an empty value to disable"
        )
    return host or "0.0.0.0", int(port)  # noqa: S104


def serve_metrics() -> tuple[str, int] | None:
    """Start the metrics endpoint unless the variable is set to an empty value."""
    address = os.environ.get(METRICS_ADDRESS_ENV, DEFAULT_METRICS_ADDRESS)
    if not address:
        return None
    host, port = parse_address(address)
    start_http_server(port, addr=host)
    return host, port
