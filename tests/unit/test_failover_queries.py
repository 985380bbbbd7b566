"""The metric signals' PromQL: every built-in template rendered with its defaults, overrides, the sandbox
and strict undefined variables, and the names checked against what the simulator exports."""

from __future__ import annotations

import re
from typing import Any

import pytest
from deepseek_operator.api import DeepSeekDeploymentSpec, EngineName, FailoverSignal
from deepseek_operator.failover.observe import fan_out
from deepseek_operator.failover.queries import (
    DEFAULT_TEMPLATES,
    DEPLOYMENT_LABEL_NAME,
    REGION_LABEL_NAME,
    QueryTemplateError,
    render_query,
)
from deepseek_simulator.metrics import EngineMetrics

METRIC_SIGNALS = (FailoverSignal.ERROR_RATE, FailoverSignal.LATENCY, FailoverSignal.TIME_TO_FIRST_TOKEN)
BY = f"namespace, {DEPLOYMENT_LABEL_NAME}, {REGION_LABEL_NAME}"


def make_spec(engine: str = "vllm", **failover: Any) -> DeepSeekDeploymentSpec:
    return DeepSeekDeploymentSpec.model_validate(
        {
            "model": {"name": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "servedModelName": "r1"},
            "engine": {"name": engine},
            "regions": [{"name": "us-east", "role": "Active"}, {"name": "eu-west", "role": "Standby"}],
            "monitoring": {"prometheusUrl": "http://prometheus:9090"},
            "failover": {
                "signals": ["ErrorRate", "Latency", "TimeToFirstToken"],
                "metricsWindow": "2m",
                **failover,
            },
        }
    )


EXPECTED = {
    ("vllm", FailoverSignal.ERROR_RATE): (
        f'(\n  sum by ({BY}) (rate(http_requests_total{{ {DEPLOYMENT_LABEL_NAME}!="", handler=~"/v1/.*", '
        f'status=~"5.." }}[2m]))\n  or\n  0 * sum by ({BY}) (rate(http_requests_total{{ {DEPLOYMENT_LABEL_NAME}!="", '
        f'handler=~"/v1/.*" }}[2m]))\n)\n/ sum by ({BY}) (rate(http_requests_total{{ {DEPLOYMENT_LABEL_NAME}!="", '
        f'handler=~"/v1/.*" }}[2m]))'
    ),
    ("vllm", FailoverSignal.LATENCY): (
        f"histogram_quantile(0.99, sum by ({BY}, le) "
        f'(rate(vllm:e2e_request_latency_seconds_bucket{{ {DEPLOYMENT_LABEL_NAME}!="" }}[2m])))'
    ),
    ("vllm", FailoverSignal.TIME_TO_FIRST_TOKEN): (
        f"histogram_quantile(0.99, sum by ({BY}, le) "
        f'(rate(vllm:time_to_first_token_seconds_bucket{{ {DEPLOYMENT_LABEL_NAME}!="" }}[2m])))'
    ),
    ("sglang", FailoverSignal.ERROR_RATE): (
        f'(\n  sum by ({BY}) (rate(sglang:num_aborted_requests_total{{ {DEPLOYMENT_LABEL_NAME}!="" }}[2m]))\n  or\n'
        f'  0 * sum by ({BY}) (rate(sglang:num_requests_total{{ {DEPLOYMENT_LABEL_NAME}!="" }}[2m]))\n)\n'
        f'/ sum by ({BY}) (rate(sglang:num_requests_total{{ {DEPLOYMENT_LABEL_NAME}!="" }}[2m]))'
    ),
    ("sglang", FailoverSignal.LATENCY): (
        f"histogram_quantile(0.99, sum by ({BY}, le) "
        f'(rate(sglang:e2e_request_latency_seconds_bucket{{ {DEPLOYMENT_LABEL_NAME}!="" }}[2m])))'
    ),
    ("sglang", FailoverSignal.TIME_TO_FIRST_TOKEN): (
        f"histogram_quantile(0.99, sum by ({BY}, le) "
        f'(rate(sglang:time_to_first_token_seconds_bucket{{ {DEPLOYMENT_LABEL_NAME}!="" }}[2m])))'
    ),
}


@pytest.mark.parametrize(("engine", "signal"), sorted(EXPECTED, key=str))
def test_every_default_template_renders_with_its_defaults(engine: str, signal: FailoverSignal) -> None:
    assert render_query(make_spec(engine), "team-a", "r1", signal) == EXPECTED[(engine, signal)]


def test_the_defaults_select_every_deployment_so_one_query_serves_them_all() -> None:
    spec = make_spec()
    for signal in METRIC_SIGNALS:
        assert render_query(spec, "team-a", "r1", signal) == render_query(spec, "team-b", "other", signal)


def _names(promql: str) -> set[str]:
    """Metric names a query reads (histogram buckets by their histogram's name)."""
    names = set(re.findall(r"([a-z_]+:[a-z_]+|http_requests_total)\{", promql))
    return {name.removesuffix("_bucket") for name in names}


def _exported(engine: str) -> set[str]:
    registry = EngineMetrics(engine, "r1").registry  # type: ignore[arg-type]
    names = set()
    for family in registry.collect():
        names.add(family.name)
        if family.type == "counter":
            names.add(f"{family.name}_total")
    return names


def test_the_vllm_defaults_read_series_the_simulator_exports_in_the_vllm_dialect() -> None:
    exported = _exported("vllm")
    for signal in METRIC_SIGNALS:
        assert _names(DEFAULT_TEMPLATES[EngineName.VLLM][signal]) <= exported, signal


def test_the_sglang_defaults_read_sglang_names_the_simulator_lacks_only_the_aborted_counter() -> None:
    """SGLang has no HTTP status counter: its error ratio is aborted over all requests. The simulator's
    SGLang dialect does not export sglang:num_aborted_requests_total, so there ErrorRate reads 0 (the
    numerator falls back to 0 x the request rate); latency and time to first token are exported."""
    exported = _exported("sglang")
    missing = set()
    for signal in METRIC_SIGNALS:
        names = _names(DEFAULT_TEMPLATES[EngineName.SGLANG][signal])
        assert all(name.startswith("sglang:") for name in names), signal
        missing |= names - exported
    assert missing == {"sglang:num_aborted_requests_total"}


def test_an_override_uses_the_variables_and_may_be_per_deployment() -> None:
    spec = make_spec(
        queries={
            "latency": 'max by ({{ by }}) (my_p99{namespace="{{ namespace }}",model="{{ model }}",e="{{ engine }}"}) / {{ window | length }}'
        }
    )
    assert render_query(spec, "team-a", "r1", FailoverSignal.LATENCY) == (
        f'max by ({BY}) (my_p99{{namespace="team-a",model="r1",e="vllm"}}) / 2'
    )
    # The other signals keep their defaults.
    assert (
        render_query(spec, "team-a", "r1", FailoverSignal.ERROR_RATE)
        == EXPECTED[("vllm", FailoverSignal.ERROR_RATE)]
    )


@pytest.mark.parametrize(
    ("template", "error"),
    [
        ("rate(x[{{ windw }}])", "'windw' is undefined"),
        ("{{ ''.__class__.__mro__ }}", "unsafe"),
        ("{{ window.__class__ }}", "unsafe"),
        ("{% if %}", "does not render"),
        ("   ", "renders to nothing"),
    ],
)
def test_a_template_that_does_not_render_is_an_error_naming_the_signal(template: str, error: str) -> None:
    spec = make_spec(queries={"errorRate": template})
    with pytest.raises(QueryTemplateError, match="ErrorRate") as raised:
        render_query(spec, "team-a", "r1", FailoverSignal.ERROR_RATE)
    assert error in str(raised.value)


def test_results_are_fanned_out_by_namespace_deployment_and_region() -> None:
    result = fan_out(
        [
            {
                "metric": {"namespace": "a", DEPLOYMENT_LABEL_NAME: "r1", REGION_LABEL_NAME: "us-east"},
                "value": [1, "0.25"],
            },
            {
                "metric": {"namespace": "a", DEPLOYMENT_LABEL_NAME: "r1", REGION_LABEL_NAME: "eu-west"},
                "value": [1, "NaN"],
            },
            {"metric": {"namespace": "b"}, "value": [1, "1"]},  # without the grouping labels: ignored
        ]
    )
    assert result.value_for(("a", "r1", "us-east")).value == 0.25
    nan = result.value_for(("a", "r1", "eu-west")).value
    assert nan is not None
    assert nan != nan  # NaN: no request in the window
    assert result.value_for(("a", "other", "us-east")).missing == (
        "no sample for this region: no request since its pods started"
    )
    empty = fan_out([]).value_for(("a", "r1", "us-east"))
    assert empty.missing is not None
    assert "metric or its labels are named differently" in empty.missing
