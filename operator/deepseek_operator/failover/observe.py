"""What the failover controller looks at, and what each look costs.

- Nodes and pods: the watch-backed indexes (`deepseek_operator.indexes`): no API request per check.
- Metric signals: one PromQL query per distinct rendered query and Prometheus, per check interval, for
  every DeepSeekDeployment at once (the built-in templates select every deployment's series and group
  by namespace, deployment and region); each deployment reads its regions' samples from the result.
- Engines: GET /health of a pod. The region taking the traffic is probed every check, but only
  `minReadyReplicas` of its pods in turn, all of them once one fails; a region whose nodes or pods
  already fail the check is not probed (that check is conclusive without it); a standby region is
  probed when it is about to take the traffic (the decision asks for it).

The pod's address is its status.podIP, or, with `--probe-address-annotation=<key>` (for an operator
outside the pod network, such as the local cluster's, whose pods listen on loopback addresses), the
address in that annotation: a pod without it is not probed (Unknown), never probed at its pod IP.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from requests.exceptions import RequestException
from urllib3.util.retry import Retry

from deepseek_operator import metrics
from deepseek_operator.failover.checks import EngineProbe, MetricValue, Outcome
from deepseek_operator.failover.queries import sample_key
from deepseek_operator.indexes import PodSummary
from deepseek_operator.render.pods import CONTAINER_PORT, HEALTH_PATH

SampleKey = tuple[str, str, str]  # namespace, DeepSeekDeployment, region


@dataclass(frozen=True)
class QueryResult:
    """The samples of one query, by (namespace, deployment, region), or why there are none."""

    samples: Mapping[SampleKey, float]
    error: str | None = None
    series: int = 0  # samples returned, with or without the grouping labels

    def value_for(self, key: SampleKey) -> MetricValue:
        if self.error is not None:
            return MetricValue(error=self.error)
        if key in self.samples:
            return MetricValue(value=self.samples[key])
        if self.series == 0:
            return MetricValue(
                missing="the query returned no sample for any deployment: none had a request yet, or the "
                "metric or its labels are named differently in this Prometheus (see spec.failover.queries)"
            )
        return MetricValue(missing="no sample for this region: no request since its pods started")


def fan_out(result: Sequence[Mapping[str, Any]]) -> QueryResult:
    """An instant-vector result, by the grouping labels; samples without them are ignored."""
    samples: dict[SampleKey, float] = {}
    for item in result:
        key = sample_key(item.get("metric") or {})
        value = item.get("value") or [None, "NaN"]
        if key is None:
            continue
        try:
            samples[key] = float(value[1])
        except (TypeError, ValueError, IndexError):
            samples[key] = math.nan
    return QueryResult(samples=samples, series=len(result))


class PrometheusQueries:
    """prometheus-api-client connections, one per Prometheus URL; instant queries, no retries (the next
    check is the retry) and a timeout shorter than the check interval."""

    def __init__(self) -> None:
        self._clients: dict[str, PrometheusConnect] = {}
        self._lock = threading.Lock()

    def _client(self, url: str) -> PrometheusConnect:
        with self._lock:
            client = self._clients.get(url)
            if client is None:
                client = PrometheusConnect(url=url.rstrip("/"), retry=Retry(total=0), disable_ssl=False)
                self._clients[url] = client
            return client

    def query(self, url: str, promql: str, timeout: float) -> QueryResult:
        """Blocking: run it in a thread."""
        try:
            result = self._client(url).custom_query(promql, timeout=timeout)  # type: ignore[arg-type]
        except (PrometheusApiClientException, RequestException, ValueError, KeyError) as error:
            metrics.count_prometheus_query("error")
            detail = str(error).replace("\n", " ")[:300]
            return QueryResult(samples={}, error=f"Prometheus {url}: {type(error).__name__}: {detail}")
        metrics.count_prometheus_query("success")
        return fan_out(result)


def probe_address(pod: PodSummary, annotation: str | None) -> str | None:
    if annotation:
        value = pod.annotations.get(annotation)
        return value or None
    return pod.pod_ip or None


async def probe_engine(
    session: aiohttp.ClientSession, pod: PodSummary, annotation: str | None, probe_timeout: float
) -> EngineProbe:
    """GET /health of one pod's engine: Pass for 2xx, Fail for another answer or none in time."""
    address = probe_address(pod, annotation)
    if address is None:
        where = f"no {annotation} annotation" if annotation else "no pod IP"
        metrics.count_engine_probe("unknown")
        return EngineProbe(pod.name, Outcome.UNKNOWN, f"not probed: {where}")
    host = f"[{address}]" if ":" in address else address
    url = f"http://{host}:{CONTAINER_PORT}{HEALTH_PATH}"
    try:
        async with session.get(
            url, timeout=aiohttp.ClientTimeout(total=probe_timeout), allow_redirects=False
        ) as response:
            status = response.status
    except TimeoutError:
        metrics.count_engine_probe("fail")
        return EngineProbe(pod.name, Outcome.FAIL, f"no answer within {probe_timeout:g}s")
    except (aiohttp.ClientError, OSError) as error:
        metrics.count_engine_probe("fail")
        return EngineProbe(pod.name, Outcome.FAIL, f"{type(error).__name__}: {error}"[:200])
    if 200 <= status < 300:
        metrics.count_engine_probe("pass")
        return EngineProbe(pod.name, Outcome.PASS, f"answered {status}")
    metrics.count_engine_probe("fail")
    return EngineProbe(pod.name, Outcome.FAIL, f"answered {status}")


async def probe_engines(
    session: aiohttp.ClientSession,
    pods: Sequence[PodSummary],
    annotation: str | None,
    probe_timeout: float,
    limit: asyncio.Semaphore,
) -> list[EngineProbe]:
    async def one(pod: PodSummary) -> EngineProbe:
        async with limit:
            return await probe_engine(session, pod, annotation, probe_timeout)

    return list(await asyncio.gather(*(one(pod) for pod in pods)))
