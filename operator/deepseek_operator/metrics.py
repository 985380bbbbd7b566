"""The operator's own Prometheus metrics (served on DEEPSEEK_OPERATOR_METRICS_ADDRESS, default :9090)."""

from __future__ import annotations

import os

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


def record_status(namespace: str, name: str, status: DeepSeekDeploymentStatus) -> None:
    for region in status.regions:
        ACTIVE_REGION.labels(namespace, name, region.name).set(
            1 if region.name == status.active_region else 0
        )
        for pool in region.pools:
            labels = (namespace, name, region.name, pool.name.value)
            REPLICAS.labels(*labels, "desired").set(pool.desired_replicas or 0)
            REPLICAS.labels(*labels, "ready").set(pool.ready_replicas or 0)


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
