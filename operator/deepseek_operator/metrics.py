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

from deepseek_operator.api import DeepSeekDeploymentStatus

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
_counters: defaultdict[tuple[str, str], set[CounterSeries]] = defaultdict(set)
# Per DeepSeekDeployment: the predictive pre-scaler's gauge series (set by its own looks, not by status).
_predictive: dict[tuple[str, str], set[GaugeSeries]] = {}


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


def _increment(counter: Counter, labels: tuple[str, str, str]) -> None:
    with _lock:
        counter.labels(*labels).inc()
        _counters[labels[:2]].add((counter, labels))


def forget(namespace: str, name: str) -> None:
    """Remove every series of DeepSeekDeployment namespace/name: it is gone, and so are its figures (a
    gauge left behind would keep its last value, and alerts on it firing, until the operator restarts)."""
    key = (namespace, name)
    with _lock:
        for gauge, labels in _gauges.pop(key, set()) | _predictive.pop(key, set()):
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
