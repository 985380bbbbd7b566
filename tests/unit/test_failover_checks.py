"""One check of one region, signal by signal, from pod and node summaries, engine probes and PromQL
values (pure functions), and the operator's --probe-address-annotation option."""

from __future__ import annotations

import math
from typing import Any

import pytest
from deepseek_operator.__main__ import PROBE_ADDRESS_ANNOTATION_ENV, kopf_arguments, operator_options
from deepseek_operator.api import CapacityPool, DeepSeekDeploymentSpec, FailoverSignal
from deepseek_operator.failover import controller
from deepseek_operator.failover.checks import (
    EngineProbe,
    MetricValue,
    Outcome,
    engine_result,
    metric_result,
    metric_threshold,
    needed_replicas,
    nodes_result,
    pods_result,
    probe_candidates,
    probe_sample,
    serving_replicas,
)
from deepseek_operator.failover.observe import probe_address
from deepseek_operator.indexes import NodeSummary, PodSummary


def pod(
    name: str, node: str | None = "n1", ready: bool = True, phase: str = "Running", **extra: Any
) -> PodSummary:
    fields: dict[str, Any] = {
        "namespace": "ml",
        "name": name,
        "deployment": "r1",
        "region": "us-east",
        "pool": CapacityPool.ON_DEMAND,
        "node": node,
        "phase": phase,
        "ready": ready,
        "terminating": False,
        "pod_ip": "10.0.0.7",
        "annotations": {},
        "unschedulable_message": None,
        "disruption_reason": None,
        "created_at": None,
    }
    fields.update(extra)
    return PodSummary(**fields)


def node(name: str, ready: bool = True, region: str = "us-east") -> NodeSummary:
    return NodeSummary(name, {"topology.kubernetes.io/region": region}, (), ready, False, False)


NODES = {"n1": node("n1"), "n2": node("n2", ready=False)}


def spec(**failover: Any) -> DeepSeekDeploymentSpec:
    return DeepSeekDeploymentSpec.model_validate(
        {
            "model": {"name": "m"},
            "regions": [{"name": "us-east", "role": "Active"}, {"name": "eu-west", "role": "Standby"}],
            "failover": failover,
        }
    )


def test_the_threshold_is_min_ready_replicas_at_most_what_the_region_runs() -> None:
    assert needed_replicas(spec(), 4) == 1
    assert needed_replicas(spec(minReadyReplicas=3), 4) == 3
    assert needed_replicas(spec(minReadyReplicas=3), 2) == 2
    assert needed_replicas(spec(minReadyReplicas=3), 0) == 0


def test_nodes_fail_when_too_few_pods_are_on_ready_nodes_and_name_them() -> None:
    assert nodes_result("us-east", [pod("a"), pod("b", node="n2")], NODES, 1).outcome is Outcome.PASS
    failed = nodes_result("us-east", [pod("a", node="n2"), pod("b", node="gone")], NODES, 1)
    assert failed.outcome is Outcome.FAIL
    assert failed.message == "0 of 2 scheduled pods on Ready nodes (needs 1); gone: gone, n2: NotReady"


def test_nodes_without_a_scheduled_pod_look_at_the_region_nodes() -> None:
    assert nodes_result("us-east", [pod("a", node=None)], NODES, 1).outcome is Outcome.PASS
    assert nodes_result("us-east", [], {"n2": node("n2", ready=False)}, 1).outcome is Outcome.FAIL
    assert nodes_result("ap-south", [], NODES, 1).outcome is Outcome.UNKNOWN


def test_pods_fail_below_the_threshold() -> None:
    assert pods_result([pod("a", ready=False), pod("b")], 1, 2).outcome is Outcome.PASS
    result = pods_result([pod("a", ready=False)], 1, 2)
    assert (result.outcome, result.message) == (Outcome.FAIL, "0 ready of 2 asked for (needs 1)")
    assert pods_result([], 0, 0).outcome is Outcome.PASS


def test_engine_probes_count_answers_and_unknowns_never_decide() -> None:
    ok, dead, unknown = (
        EngineProbe("a", Outcome.PASS, "answered 200"),
        EngineProbe("b", Outcome.FAIL, "answered 503"),
        EngineProbe("c", Outcome.UNKNOWN, "not probed: no annotation"),
    )
    assert engine_result([ok, dead], 2, 1).outcome is Outcome.PASS
    assert engine_result([dead], 2, 1).outcome is Outcome.FAIL
    assert engine_result([dead, unknown], 2, 1).outcome is Outcome.UNKNOWN
    assert engine_result([unknown], 1, 1).outcome is Outcome.UNKNOWN
    assert engine_result([], 0, 1).outcome is Outcome.FAIL  # nothing runs to answer
    assert engine_result([], 0, 0).outcome is Outcome.PASS
    assert "b: answered 503" in engine_result([dead], 2, 1).message


def test_probes_go_to_running_pods_on_ready_nodes_in_turn() -> None:
    pods = [
        pod("c"),
        pod("b", ready=False),
        pod("a"),
        pod("d", node="n2"),
        pod("e", phase="Pending", node=None),
    ]
    candidates = probe_candidates(pods, NODES)
    assert [p.name for p in candidates] == ["a", "c", "b"]  # ready ones first
    assert [p.name for p in probe_sample(candidates, 1, 0)] == ["a"]
    assert [p.name for p in probe_sample(candidates, 1, 1)] == ["c"]
    assert [p.name for p in probe_sample(candidates, 2, 2)] == ["b", "a"]
    assert [p.name for p in probe_sample(candidates, 0, 0)] == ["a"]
    assert probe_sample([], 1, 0) == []


def test_serving_replicas_are_ready_pods_on_ready_nodes_whose_engine_did_not_fail() -> None:
    pods = [pod("a"), pod("b"), pod("c", node="n2"), pod("d", ready=False)]
    assert serving_replicas(pods, NODES, [EngineProbe("b", Outcome.FAIL, "503")]) == 1


@pytest.mark.parametrize(
    ("signal", "value", "outcome", "message"),
    [
        (FailoverSignal.ERROR_RATE, 0.05, Outcome.PASS, "5% of requests failed (limit 5%)"),
        (FailoverSignal.ERROR_RATE, 0.5, Outcome.FAIL, "50% of requests failed (limit 5%)"),
        (FailoverSignal.LATENCY, 61.0, Outcome.FAIL, "6.1e+04ms p99 end-to-end latency (limit 60000ms)"),
        (FailoverSignal.LATENCY, math.inf, Outcome.FAIL, "+Infms p99 end-to-end latency (limit 60000ms)"),
        (
            FailoverSignal.TIME_TO_FIRST_TOKEN,
            0.2,
            Outcome.PASS,
            "200ms p99 time to first token (limit 10000ms)",
        ),
    ],
)
def test_metric_values_against_their_thresholds(
    signal: FailoverSignal, value: float, outcome: Outcome, message: str
) -> None:
    result = metric_result(signal, MetricValue(value=value), metric_threshold(spec(), signal), "1m", True)
    assert (result.outcome, result.message) == (outcome, message)


def test_missing_metric_values_are_unknown_where_traffic_goes_and_skipped_elsewhere() -> None:
    threshold = metric_threshold(spec(), FailoverSignal.ERROR_RATE)
    down = MetricValue(error="Prometheus http://p:9090: ConnectionError: refused")
    for traffic in (True, False):
        result = metric_result(FailoverSignal.ERROR_RATE, down, threshold, "1m", traffic)
        assert (result.outcome, result.message) == (Outcome.UNKNOWN, down.error)
    idle = MetricValue(value=math.nan)
    assert metric_result(FailoverSignal.ERROR_RATE, idle, threshold, "1m", True).outcome is Outcome.UNKNOWN
    skipped = metric_result(FailoverSignal.ERROR_RATE, idle, threshold, "1m", False)
    assert (skipped.outcome, skipped.message) == (
        Outcome.SKIPPED,
        "no request in the last 1m (the region takes no traffic)",
    )


def test_a_pod_is_probed_at_its_annotation_when_told_and_never_at_its_ip_then() -> None:
    annotated = pod("a", annotations={"example.com/address": "127.0.0.9"})
    assert probe_address(annotated, "example.com/address") == "127.0.0.9"
    assert probe_address(pod("b"), "example.com/address") is None
    assert probe_address(pod("b"), None) == "10.0.0.7"


def test_the_operator_takes_its_own_option_and_passes_the_rest_to_kopf() -> None:
    options, rest = operator_options(["--probe-address-annotation=a/b", "--peering=x", "--verbose"])
    assert options == {PROBE_ADDRESS_ANNOTATION_ENV: "a/b"}
    assert rest == ["--peering=x", "--verbose"]
    assert operator_options(["--probe-address-annotation", "c/d"])[0] == {PROBE_ADDRESS_ANNOTATION_ENV: "c/d"}
    assert not any("probe-address" in argument for argument in kopf_arguments(rest))
    # The handlers read the same variable the command line sets.
    assert controller.PROBE_ADDRESS_ANNOTATION_ENV == PROBE_ADDRESS_ANNOTATION_ENV
    with pytest.raises(SystemExit, match="needs a value"):
        operator_options(["--probe-address-annotation"])


def test_status_is_rewritten_only_for_material_changes() -> None:
    before = {
        "phase": "Healthy",
        "message": "us-east is healthy",
        "regions": [{"name": "us-east", "state": "Healthy", "lastProbeTime": "t1", "message": "50ms"}],
    }
    after = {
        "phase": "Healthy",
        "message": "us-east is healthy!",
        "regions": [{"name": "us-east", "state": "Healthy", "lastProbeTime": "t2", "message": "60ms"}],
    }
    assert controller._material(before) == controller._material(after)
    assert controller._material(before) != controller._material({**after, "phase": "Degraded"})
