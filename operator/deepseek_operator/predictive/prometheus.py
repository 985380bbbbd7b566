"""Reading a deployment's request-rate history from Prometheus with prometheus-api-client (range
queries on the engine's finished-requests counter), and the per-replica rate at saturated moments."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException

from deepseek_operator.api import DeepSeekDeploymentSpec
from deepseek_operator.predictive.decide import History, Unreachable
from deepseek_operator.predictive.forecast import Seasons, Series
from deepseek_operator.render.autoscaling import ENGINE_METRICS, model_selector

# Grid of the history: one point every 5 minutes (2016 points a week; Prometheus answers at most
# 11,000 per range query), each the rate over the step before it.
STEP_SECONDS = 300.0
QUERY_TIMEOUT_SECONDS = 20


def rate_query(namespace: str, spec: DeepSeekDeploymentSpec, window_seconds: float) -> str:
    """PromQL: the deployment's finished requests per second, all pods together."""
    counter = ENGINE_METRICS[spec.engine.name].requests_counter
    return f"sum(rate({counter}{model_selector(namespace, spec)}[{_seconds(window_seconds)}]))"


def saturated_rate_query(namespace: str, spec: DeepSeekDeploymentSpec, window_seconds: float) -> str:
    """PromQL: requests per second per serving replica, only at the moments the queue per replica was
    at or above the autoscaler's target (each replica then serves all it can)."""
    metrics = ENGINE_METRICS[spec.engine.name]
    selector = model_selector(namespace, spec)
    target = spec.autoscaling.queue_depth_target_per_replica
    return (
        f"({rate_query(namespace, spec, window_seconds)} / count({metrics.running}{selector})) "
        f"and (avg({metrics.queue_depth}{selector}) >= {target})"
    )


def _seconds(value: float) -> str:
    """A PromQL duration; milliseconds, so that the benchmark's compressed steps (2.5 s) stay exact."""
    return f"{max(1, round(value * 1000))}ms"


def _samples(answer: list[dict[str, object]]) -> list[tuple[float, float]]:
    samples: list[tuple[float, float]] = []
    for result in answer:
        for stamp, value in result.get("values") or []:  # type: ignore[attr-defined]
            number = float(value)
            if math.isfinite(number):
                samples.append((float(stamp), number))
    return samples


def read_history(
    url: str,
    namespace: str,
    spec: DeepSeekDeploymentSpec,
    now: float,
    seasons: Seasons,
    step: float = STEP_SECONDS,
) -> History | Unreachable:
    """The request rate on a grid from ``historyDays`` (plus the anchor hour) before ``now`` to now."""
    predictive = spec.autoscaling.predictive
    time_scale = 86_400.0 / seasons.day
    step = step / time_scale
    # Snapped to the grid, so that successive looks see the same points (and the same forecast).
    end = math.floor(now / step) * step
    start = end - predictive.history_days * seasons.day - seasons.anchor
    window = step
    # The library's own retries (a few, with a short back-off) on 5xx answers and refused connections.
    client = PrometheusConnect(url=url, disable_ssl=False, timeout=QUERY_TIMEOUT_SECONDS)
    try:
        rates = client.custom_query_range(
            rate_query(namespace, spec, window),
            start_time=datetime.fromtimestamp(start, UTC),
            end_time=datetime.fromtimestamp(end, UTC),
            step=f"{step:g}",
        )
        saturated: list[dict[str, object]] = []
        if predictive.requests_per_second_per_replica is None:
            saturated = client.custom_query_range(
                saturated_rate_query(namespace, spec, window),
                start_time=datetime.fromtimestamp(start, UTC),
                end_time=datetime.fromtimestamp(end, UTC),
                step=f"{step:g}",
            )
    # requests' errors are OSErrors (refused, timed out, DNS); the client's own is an HTTP status.
    except (PrometheusApiClientException, OSError, ValueError) as error:
        return Unreachable(f"Prometheus at {url} did not answer the range query: {_short(error)}")
    finally:
        client.close()
    series = Series.from_samples(_samples(rates), start, end, step)
    return History(series, end, tuple(value for _, value in _samples(saturated)))


def _short(error: Exception) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= 300 else text[:297] + "..."
