"""Prometheus metrics under the real engines' names, so dashboards and the autoscaler's queries
work unchanged against the simulator.

DSD_ENGINE=vllm exposes vLLM's names; DSD_ENGINE=sglang exposes SGLang's names *instead*, as a real
SGLang server would (a query written for the wrong engine finds nothing, in the simulator as in
production). Every series carries `model_name`. The failure counter is simulator-only: real
engines report HTTP errors through their HTTP middleware, not under their own namespace.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from deepseek_simulator.config import Engine

# Bucket bounds follow the engines' own, so histogram_quantile gives comparable answers.
VLLM_E2E_BUCKETS: Final = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
    120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip
VLLM_TTFT_BUCKETS: Final = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
    10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
SGLANG_E2E_BUCKETS: Final = (
    0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 20.0, 40.0, 60.0, 80.0,
    100.0, 200.0, 400.0, 800.0,
)  # fmt: skip
SGLANG_TTFT_BUCKETS: Final = (
    0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 20.0, 40.0, 60.0, 80.0,
    100.0, 200.0, 400.0,
)  # fmt: skip

VLLM_FINISHED_REASONS: Final = ("stop", "length", "abort")
FAILURE_COUNTER: Final = "dsd_simulator_request_failures_total"
# vLLM's OpenAI server counts HTTP requests with prometheus-fastapi-instrumentator: status grouped as
# "2xx".."5xx", handler = the route, and these handlers left out (vllm/entrypoints/openai/api_server.py).
HTTP_REQUESTS_COUNTER: Final = "http_requests_total"
VLLM_UNCOUNTED_HANDLERS: Final = frozenset(
    {"/metrics", "/health", "/load", "/ping", "/version", "/server_info"}
)


class EngineMetrics:
    """The simulator's metric set in one engine's dialect, registered in a private registry."""

    def __init__(self, engine: Engine, model_name: str) -> None:
        self.engine = engine
        self.model_name = model_name
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ["model_name"]
        if engine == "vllm":
            self._waiting = Gauge(
                "vllm:num_requests_waiting", "Number of requests waiting to be processed.", labels,
                registry=self.registry,
            )  # fmt: skip
            self._running = Gauge(
                "vllm:num_requests_running", "Number of requests in model execution batches.", labels,
                registry=self.registry,
            )  # fmt: skip
            self._kv_usage = Gauge(
                "vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", labels,
                registry=self.registry,
            )  # fmt: skip
            self._e2e = Histogram(
                "vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.", labels,
                buckets=VLLM_E2E_BUCKETS, registry=self.registry,
            )  # fmt: skip
            self._ttft = Histogram(
                "vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", labels,
                buckets=VLLM_TTFT_BUCKETS, registry=self.registry,
            )  # fmt: skip
            self._queue_time = Histogram(
                "vllm:request_queue_time_seconds", "Histogram of time spent in WAITING phase for request.",
                labels, buckets=VLLM_E2E_BUCKETS, registry=self.registry,
            )  # fmt: skip
            self._success = Counter(
                "vllm:request_success_total", "Count of successfully processed requests.",
                [*labels, "finished_reason"], registry=self.registry,
            )  # fmt: skip
            self._prompt_tokens = Counter(
                "vllm:prompt_tokens_total", "Number of prefill tokens processed.", labels,
                registry=self.registry,
            )  # fmt: skip
            self._generation_tokens = Counter(
                "vllm:generation_tokens_total", "Number of generation tokens processed.", labels,
                registry=self.registry,
            )  # fmt: skip
        else:
            self._waiting = Gauge(
                "sglang:num_queue_reqs", "The number of requests in the waiting queue.", labels,
                registry=self.registry,
            )  # fmt: skip
            self._running = Gauge(
                "sglang:num_running_reqs", "The number of running requests.", labels, registry=self.registry
            )
            self._kv_usage = Gauge("sglang:token_usage", "The token usage.", labels, registry=self.registry)
            self._e2e = Histogram(
                "sglang:e2e_request_latency_seconds", "Histogram of End-to-end request latency in seconds",
                labels, buckets=SGLANG_E2E_BUCKETS, registry=self.registry,
            )  # fmt: skip
            self._ttft = Histogram(
                "sglang:time_to_first_token_seconds", "Histogram of time to first token in seconds.", labels,
                buckets=SGLANG_TTFT_BUCKETS, registry=self.registry,
            )  # fmt: skip
            self._queue_time = Histogram(
                "sglang:queue_time_seconds", "Histogram of queueing time in seconds.", labels,
                buckets=SGLANG_E2E_BUCKETS, registry=self.registry,
            )  # fmt: skip
            self._success = Counter(
                "sglang:num_requests_total", "Number of requests processed.", labels, registry=self.registry
            )
            self._prompt_tokens = Counter(
                "sglang:prompt_tokens_total", "Number of prefill tokens processed.", labels,
                registry=self.registry,
            )  # fmt: skip
            self._generation_tokens = Counter(
                "sglang:generation_tokens_total", "Number of generation tokens processed.", labels,
                registry=self.registry,
            )  # fmt: skip
        # Only vLLM's server has the HTTP middleware that exports it; SGLang's has none.
        self._http_requests: Counter | None = (
            Counter(
                HTTP_REQUESTS_COUNTER,
                "Total number of requests by method, status and handler.",
                ["method", "status", "handler"],
                registry=self.registry,
            )
            if engine == "vllm"
            else None
        )
        self._failures = Counter(
            FAILURE_COUNTER,
            "Requests the simulator answered with an error (injected fault, draining, starting, aborted).",
            [*labels, "reason"],
            registry=self.registry,
        )
        # Touch the children so every series exists at 0 before the first request, as in the engines.
        for gauge in (self._waiting, self._running, self._kv_usage):
            gauge.labels(model_name=model_name).set(0)
        for metric in (self._e2e, self._ttft, self._queue_time, self._prompt_tokens, self._generation_tokens):
            metric.labels(model_name=model_name)
        if engine == "vllm":
            for reason in VLLM_FINISHED_REASONS:
                self._success.labels(model_name=model_name, finished_reason=reason)
        else:
            self._success.labels(model_name=model_name)

    def set_queue(self, waiting: int, running: int) -> None:
        self._waiting.labels(model_name=self.model_name).set(waiting)
        self._running.labels(model_name=self.model_name).set(running)

    def track_kv_usage(self, usage: Callable[[], float]) -> None:
        """KV usage is computed when scraped, so tokens need no bookkeeping while they stream."""
        self._kv_usage.labels(model_name=self.model_name).set_function(usage)

    def observe_queue_time(self, seconds: float) -> None:
        self._queue_time.labels(model_name=self.model_name).observe(seconds)

    def observe_first_token(self, seconds: float) -> None:
        self._ttft.labels(model_name=self.model_name).observe(seconds)

    def observe_finished(
        self, *, prompt_tokens: int, generation_tokens: int, e2e_seconds: float, finished_reason: str
    ) -> None:
        labels = {"model_name": self.model_name}
        self._prompt_tokens.labels(**labels).inc(prompt_tokens)
        self._generation_tokens.labels(**labels).inc(generation_tokens)
        self._e2e.labels(**labels).observe(e2e_seconds)
        if self.engine == "vllm":
            self._success.labels(**labels, finished_reason=finished_reason).inc()
        else:
            self._success.labels(**labels).inc()

    def count_http_request(self, method: str, handler: str, status: int) -> None:
        """One answered HTTP request, as vLLM's instrumentator counts it (status grouped, e.g. 5xx)."""
        if self._http_requests is None or handler in VLLM_UNCOUNTED_HANDLERS:
            return
        self._http_requests.labels(method=method, status=f"{status // 100}xx", handler=handler).inc()

    def count_failure(self, reason: str) -> None:
        self._failures.labels(model_name=self.model_name, reason=reason).inc()
