"""The alerts the product ships, evaluated for real by Prometheus' own promtool: the chart's fleet-wide
PrometheusRule and the per-deployment PrometheusRule the operator renders. Each alert has a case where
it fires and one where it stays quiet (`promtool test rules`), and a test fails when an alert has none.

Expected annotations are the rule's own templates with the case's labels and value filled in, so the
wording can change without touching these cases, but a template that does not render fails.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from deepseek_operator.api import DeepSeekDeploymentSpec
from deepseek_operator.render.monitoring import render_prometheus_rule
from localcluster.tools import ensure_tools

from tests.unit.chart_support import only, render

NS = "ml"
MODEL = "deepseek-r1-7b"
REGION = {"serving_deepseek_operator_io_region": "us-east"}


@dataclass(frozen=True)
class Case:
    """Input series, and at `eval_time` the alerts expected (labels, and the text `$value` renders as)."""

    alert: str
    series: Mapping[str, str]
    eval_time: str
    fires: tuple[Mapping[str, str], ...] = ()
    value_text: str = ""
    extra_annotations: Mapping[str, str] = field(default_factory=dict)


def _series(name: str, labels: Mapping[str, str]) -> str:
    inner = ",".join(f'{key}="{value}"' for key, value in labels.items())
    return f"{name}{{{inner}}}"


def _buckets(metric: str, per_minute: Mapping[str, int], labels: Mapping[str, str]) -> dict[str, str]:
    """Cumulative histogram buckets growing by `per_minute[le]` requests a minute, for 20 minutes."""
    return {
        _series(f"{metric}_bucket", {**labels, "le": le}): f"0+{increase}x20"
        for le, increase in per_minute.items()
    }


LATENCY_LABELS = {"namespace": NS, "model_name": MODEL, **REGION}
# Every request between 10 s and 20 s: the p99 interpolates to 19.9 s, above the chart's 10 s default.
SLOW = {"1": 0, "10": 0, "20": 60, "+Inf": 60}
FAST = {"1": 60, "10": 60, "20": 60, "+Inf": 60}
HTTP = {
    "namespace": NS,
    "service": "r1-us-east",
    "handler": "/v1/chat/completions",
    "method": "POST",
    **REGION,
}
OPERATOR = {"namespace": NS, "name": "r1"}

CHART_CASES = [
    Case(
        "DeepSeekInferenceP99LatencyHigh",
        _buckets("vllm:e2e_request_latency_seconds", SLOW, LATENCY_LABELS),
        "10m",
        fires=({"namespace": NS, "model_name": MODEL},),
        value_text="19.9s",
    ),
    Case(
        "DeepSeekInferenceP99LatencyHigh",
        _buckets("sglang:e2e_request_latency_seconds", SLOW, LATENCY_LABELS),
        "10m",
        fires=({"namespace": NS, "model_name": MODEL},),
        value_text="19.9s",
    ),
    Case(
        "DeepSeekInferenceP99LatencyHigh",
        _buckets("vllm:e2e_request_latency_seconds", FAST, LATENCY_LABELS),
        "10m",
    ),
    Case(
        "DeepSeekInferenceErrorRateHigh",
        {
            _series("http_requests_total", {**HTTP, "status": "2xx"}): "0+80x20",
            _series("http_requests_total", {**HTTP, "status": "5xx"}): "0+20x20",
        },
        "15m",
        fires=({"namespace": NS, "service": "r1-us-east"},),
        value_text="20%",
    ),
    Case(
        "DeepSeekInferenceErrorRateHigh",
        {
            _series("http_requests_total", {**HTTP, "status": "2xx"}): "0+99x20",
            _series("http_requests_total", {**HTTP, "status": "5xx"}): "0+1x20",
        },
        "15m",
    ),
    Case(
        "DeepSeekDeploymentFailedOver",
        {
            _series(
                "deepseek_operator_failovers_total", {**OPERATOR, "reason": "NodesNotReady"}
            ): "0 0 0 1 1 1 1 1"
        },
        "5m",
        fires=({**OPERATOR, "reason": "NodesNotReady"},),
    ),
    Case(
        "DeepSeekDeploymentFailedOver",
        {_series("deepseek_operator_failovers_total", {**OPERATOR, "reason": "NodesNotReady"}): "1+0x30"},
        "25m",
    ),
    Case(
        "DeepSeekSpotReplicasPending",
        {
            _series(
                "deepseek_operator_replicas",
                {**OPERATOR, "region": "us-east", "pool": "spot", "state": "desired"},
            ): "2+0x20",
            _series(
                "deepseek_operator_replicas",
                {**OPERATOR, "region": "us-east", "pool": "spot", "state": "ready"},
            ): "0+0x20",
        },
        "15m",
        fires=({**OPERATOR, "region": "us-east"},),
    ),
    Case(
        "DeepSeekSpotReplicasPending",
        {
            _series(
                "deepseek_operator_replicas",
                {**OPERATOR, "region": "us-east", "pool": "spot", "state": "desired"},
            ): "2+0x20",
            # Short of capacity for 5 minutes only: less than the 10 minutes the alert waits.
            _series(
                "deepseek_operator_replicas",
                {**OPERATOR, "region": "us-east", "pool": "spot", "state": "ready"},
            ): "0 0 0 0 0 2+0x15",
        },
        "15m",
    ),
    Case(
        "DeepSeekOperatorReconcileErrors",
        {_series("deepseek_operator_reconciles_total", {**OPERATOR, "result": "error"}): "0+1x30"},
        "25m",
        fires=(OPERATOR,),
    ),
    Case(
        "DeepSeekOperatorReconcileErrors",
        {
            _series("deepseek_operator_reconciles_total", {**OPERATOR, "result": "error"}): "0+0x30",
            _series("deepseek_operator_reconciles_total", {**OPERATOR, "result": "success"}): "0+5x30",
        },
        "25m",
    ),
]


def _deployment_rule_spec() -> DeepSeekDeploymentSpec:
    return DeepSeekDeploymentSpec.model_validate(
        {
            "model": {"name": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "servedModelName": MODEL},
            "regions": [{"name": "us-east", "role": "Active"}, {"name": "eu-west", "role": "Standby"}],
            "autoscaling": {
                "enabled": True,
                "queueDepthTargetPerReplica": 4,
                "p99LatencyTargetMilliseconds": 8000,
            },
            "monitoring": {"prometheusRule": {"enabled": True}},
        }
    )


DEPLOYMENT = {"deepseekdeployment": "r1"}
DEPLOYMENT_CASES = [
    Case(
        "DeepSeekDeploymentHighLatency",
        _buckets("vllm:e2e_request_latency_seconds", SLOW, LATENCY_LABELS),
        "10m",
        fires=(DEPLOYMENT,),
    ),
    Case(
        "DeepSeekDeploymentHighLatency",
        _buckets("vllm:e2e_request_latency_seconds", FAST, LATENCY_LABELS),
        "10m",
    ),
    Case(
        "DeepSeekDeploymentHighErrorRate",
        {
            _series("http_requests_total", {**HTTP, "status": "2xx"}): "0+80x20",
            _series("http_requests_total", {**HTTP, "status": "5xx"}): "0+20x20",
        },
        "15m",
        fires=(DEPLOYMENT,),
    ),
    Case(
        "DeepSeekDeploymentHighErrorRate",
        {_series("http_requests_total", {**HTTP, "status": "2xx"}): "0+80x20"},
        "15m",
    ),
    Case(
        "DeepSeekDeploymentQueueBacklog",
        {
            _series(
                "vllm:num_requests_waiting", {"namespace": NS, "model_name": MODEL, "pod": "r1-a"}
            ): "12+0x20"
        },
        "15m",
        fires=(DEPLOYMENT,),
    ),
    Case(
        "DeepSeekDeploymentQueueBacklog",
        {
            _series(
                "vllm:num_requests_waiting", {"namespace": NS, "model_name": MODEL, "pod": "r1-a"}
            ): "5+0x20"
        },
        "15m",
    ),
]


def _alerts(groups: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}


_LABEL = re.compile(r"\{\{\s*\$labels\.(\w+)\s*\}\}")
_VALUE = re.compile(r"\{\{\s*\$value[^}]*\}\}")


def _expected_annotations(rule: Mapping[str, Any], labels: Mapping[str, str], case: Case) -> dict[str, str]:
    expanded = {}
    for key, template in (rule.get("annotations") or {}).items():
        text = _LABEL.sub(lambda m: labels.get(m.group(1), ""), template)
        expanded[key] = _VALUE.sub(case.value_text, text)
    return expanded


def _promtool_test_file(
    rule_file: Path, rules: dict[str, dict[str, Any]], cases: list[Case]
) -> dict[str, Any]:
    tests = []
    for case in cases:
        rule = rules[case.alert]
        expected = []
        for labels in case.fires:
            all_labels = {**(rule.get("labels") or {}), **labels}
            expected.append(
                {"exp_labels": all_labels, "exp_annotations": _expected_annotations(rule, all_labels, case)}
            )
        tests.append(
            {
                "name": f"{case.alert} {'fires' if case.fires else 'stays quiet'}",
                "interval": "1m",
                "input_series": [
                    {"series": series, "values": values} for series, values in case.series.items()
                ],
                "alert_rule_test": [
                    {"eval_time": case.eval_time, "alertname": case.alert, "exp_alerts": expected}
                ],
            }
        )
    return {"rule_files": [rule_file.name], "evaluation_interval": "1m", "tests": tests}


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = ensure_tools(["promtool"])["promtool"].path
    return subprocess.run([str(promtool), *args], capture_output=True, text=True, timeout=120, check=False)


def _check_and_test(tmp_path: Path, groups: list[dict[str, Any]], cases: list[Case]) -> None:
    rules = _alerts(groups)
    # Every alert shipped has a case that fires and one that stays quiet.
    assert {c.alert for c in cases if c.fires} == set(rules), "an alert without a firing case"
    assert {c.alert for c in cases if not c.fires} == set(rules), "an alert without a quiet case"
    rule_file = tmp_path / "rules.yaml"
    rule_file.write_text(yaml.safe_dump({"groups": groups}))
    checked = _promtool("check", "rules", str(rule_file))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    test_file = tmp_path / "rules_test.yaml"
    test_file.write_text(yaml.safe_dump(_promtool_test_file(rule_file, rules, cases), sort_keys=False))
    tested = _promtool("test", "rules", str(test_file))
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_charts_alerts_pass_promtool_and_fire_exactly_when_they_should(tmp_path: Path) -> None:
    rule = only(render(set_values=["prometheusRule.enabled=true"]), "PrometheusRule")
    _check_and_test(tmp_path, rule["spec"]["groups"], CHART_CASES)


def test_each_deployments_alerts_pass_promtool_and_fire_exactly_when_they_should(tmp_path: Path) -> None:
    rule = render_prometheus_rule("r1", NS, _deployment_rule_spec())
    _check_and_test(tmp_path, rule["spec"]["groups"], DEPLOYMENT_CASES)


@pytest.mark.parametrize(
    "alert",
    sorted(
        _alerts(only(render(set_values=["prometheusRule.enabled=true"]), "PrometheusRule")["spec"]["groups"])
    ),
)
def test_a_case_that_expects_the_wrong_thing_fails(tmp_path: Path, alert: str) -> None:
    """The harness can fail: claiming that an alert stays quiet where it fires is caught by promtool."""
    groups = only(render(set_values=["prometheusRule.enabled=true"]), "PrometheusRule")["spec"]["groups"]
    firing = next(c for c in CHART_CASES if c.alert == alert and c.fires)
    wrong = Case(alert, firing.series, firing.eval_time)  # expects no alert
    rule_file = tmp_path / "rules.yaml"
    rule_file.write_text(yaml.safe_dump({"groups": groups}))
    test_file = tmp_path / "rules_test.yaml"
    test_file.write_text(yaml.safe_dump(_promtool_test_file(rule_file, _alerts(groups), [wrong])))
    assert _promtool("test", "rules", str(test_file)).returncode != 0
