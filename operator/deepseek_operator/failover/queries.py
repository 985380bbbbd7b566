"""The PromQL of the metric signals: jinja2 templates, sandboxed, with built-in defaults per engine.

A query returns one sample per (namespace, deployment, region): the series carry the pods' labels
`serving.deepseek-operator.io/{deployment,region}`, which the operator's ServiceMonitor copies onto them
(podTargetLabels; Prometheus spells them `serving_deepseek_operator_io_deployment` and
`serving_deepseek_operator_io_region`) and the `namespace` label every ServiceMonitor target gets. So one
query answers for every DeepSeekDeployment behind a Prometheus, and the results are fanned out.

The defaults were checked against what the engines and the simulator export: vLLM's
`http_requests_total{status="5xx",handler="/v1/..."}` (its HTTP middleware groups status codes),
`vllm:e2e_request_latency_seconds` and `vllm:time_to_first_token_seconds` histograms; SGLang's
`sglang:num_requests_total`, `sglang:num_aborted_requests_total` counters and
`sglang:e2e_request_latency_seconds`, `sglang:time_to_first_token_seconds` histograms (SGLang has no
HTTP status counter). A region without a single failed request has no 5xx (aborted) series at all: the
error ratio's numerator then falls back to 0 times the request rate, so it reads 0, not "no sample".
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from deepseek_operator.api import DeepSeekDeploymentSpec, EngineName, FailoverSignal
from deepseek_operator.render.labels import DEPLOYMENT_LABEL, REGION_LABEL


def prometheus_label_name(label: str) -> str:
    """A Kubernetes label as Prometheus' kubernetes_sd and prometheus-operator name it."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", label)


NAMESPACE_LABEL_NAME = "namespace"
DEPLOYMENT_LABEL_NAME = prometheus_label_name(DEPLOYMENT_LABEL)
REGION_LABEL_NAME = prometheus_label_name(REGION_LABEL)
GROUP_BY = f"{NAMESPACE_LABEL_NAME}, {DEPLOYMENT_LABEL_NAME}, {REGION_LABEL_NAME}"
# Every DeepSeekDeployment's series (and nothing else that Prometheus scrapes).
SELECTOR = f'{DEPLOYMENT_LABEL_NAME}!=""'

_VLLM_ERROR_RATE = """
(
  sum by ({{ by }}) (rate(http_requests_total{ {{ selector }}, handler=~"/v1/.*", status=~"5.." }[{{ window }}]))
  or
  0 * sum by ({{ by }}) (rate(http_requests_total{ {{ selector }}, handler=~"/v1/.*" }[{{ window }}]))
)
/ sum by ({{ by }}) (rate(http_requests_total{ {{ selector }}, handler=~"/v1/.*" }[{{ window }}]))
"""
_SGLANG_ERROR_RATE = """
(
  sum by ({{ by }}) (rate(sglang:num_aborted_requests_total{ {{ selector }} }[{{ window }}]))
  or
  0 * sum by ({{ by }}) (rate(sglang:num_requests_total{ {{ selector }} }[{{ window }}]))
)
/ sum by ({{ by }}) (rate(sglang:num_requests_total{ {{ selector }} }[{{ window }}]))
"""
_QUANTILE = """
histogram_quantile(0.99, sum by ({{ by }}, le) (rate(METRIC_bucket{ {{ selector }} }[{{ window }}])))
"""

DEFAULT_TEMPLATES: Mapping[EngineName, Mapping[FailoverSignal, str]] = MappingProxyType(
    {
        EngineName.VLLM: MappingProxyType(
            {
                FailoverSignal.ERROR_RATE: _VLLM_ERROR_RATE.strip(),
                FailoverSignal.LATENCY: _QUANTILE.replace(
                    "METRIC", "vllm:e2e_request_latency_seconds"
                ).strip(),
                FailoverSignal.TIME_TO_FIRST_TOKEN: _QUANTILE.replace(
                    "METRIC", "vllm:time_to_first_token_seconds"
                ).strip(),
            }
        ),
        EngineName.SGLANG: MappingProxyType(
            {
                FailoverSignal.ERROR_RATE: _SGLANG_ERROR_RATE.strip(),
                FailoverSignal.LATENCY: _QUANTILE.replace(
                    "METRIC", "sglang:e2e_request_latency_seconds"
                ).strip(),
                FailoverSignal.TIME_TO_FIRST_TOKEN: _QUANTILE.replace(
                    "METRIC", "sglang:time_to_first_token_seconds"
                ).strip(),
            }
        ),
    }
)

# Variables a template may use; any other name is an error (StrictUndefined).
VARIABLES = (
    "window",
    "by",
    "selector",
    "deployment_label",
    "region_label",
    "namespace",
    "name",
    "model",
    "engine",
)


class QueryTemplateError(ValueError):
    """A template that does not render; the message names the signal and what is wrong."""


_environment = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


@functools.lru_cache(maxsize=512)
def _compiled(source: str) -> Any:
    return _environment.from_string(source)


def template_for(spec: DeepSeekDeploymentSpec, signal: FailoverSignal) -> str:
    """The deployment's own template for a metric signal (failover.queries), else the built-in one."""
    overrides = spec.failover.queries
    override = {
        FailoverSignal.ERROR_RATE: overrides.error_rate,
        FailoverSignal.LATENCY: overrides.latency,
        FailoverSignal.TIME_TO_FIRST_TOKEN: overrides.time_to_first_token,
    }.get(signal)
    return override if override is not None else DEFAULT_TEMPLATES[spec.engine.name][signal]


def template_variables(spec: DeepSeekDeploymentSpec, namespace: str, name: str) -> dict[str, str]:
    return {
        "window": spec.failover.metrics_window,
        "by": GROUP_BY,
        "selector": SELECTOR,
        "deployment_label": DEPLOYMENT_LABEL_NAME,
        "region_label": REGION_LABEL_NAME,
        "namespace": namespace,
        "name": name,
        "model": spec.served_model_name,
        "engine": spec.engine.name.value,
    }


def render_query(spec: DeepSeekDeploymentSpec, namespace: str, name: str, signal: FailoverSignal) -> str:
    """The PromQL of one metric signal for one deployment. Deployments that render to the same text
    share one query (the built-in templates do not use namespace or name)."""
    source = template_for(spec, signal)
    try:
        rendered: str = _compiled(source).render(**template_variables(spec, namespace, name))
    except TemplateError as error:
        raise QueryTemplateError(f"the {signal.value} query template does not render: {error}") from error
    query = rendered.strip()
    if not query:
        raise QueryTemplateError(f"the {signal.value} query template renders to nothing")
    return query


def sample_key(labels: Mapping[str, str]) -> tuple[str, str, str] | None:
    """(namespace, deployment, region) of a result sample; None when a label is missing."""
    try:
        return labels[NAMESPACE_LABEL_NAME], labels[DEPLOYMENT_LABEL_NAME], labels[REGION_LABEL_NAME]
    except KeyError:
        return None
