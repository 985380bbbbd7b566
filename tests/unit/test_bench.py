"""The benchmarks print what they measured: counted figures, readiness in every region, finished requests
over the elapsed time."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def convergence() -> ModuleType:
    return load("convergence")


@pytest.fixture(scope="module")
def throughput() -> ModuleType:
    return load("simulator_throughput")


def dsd(ready: str, regions: list[tuple[int, int]]) -> dict[str, Any]:
    return {
        "metadata": {"generation": 2},
        "status": {
            "conditions": [{"type": "Ready", "status": ready, "observedGeneration": 2}],
            "regions": [
                {"name": f"region-{index}", "desiredReplicas": desired, "readyReplicas": ready_replicas}
                for index, (desired, ready_replicas) in enumerate(regions)
            ],
        },
    }


def test_ready_in_a_benchmark_means_every_regions_pods(convergence: ModuleType) -> None:
    assert convergence.ready_in_every_region(dsd("True", [(2, 2), (1, 1)]))
    # Ready=True is about the active region: the standby's warm replica is not up yet.
    assert not convergence.ready_in_every_region(dsd("True", [(2, 2), (1, 0)]))
    assert not convergence.ready_in_every_region(dsd("False", [(2, 2), (1, 1)]))
    assert not convergence.ready_in_every_region(dsd("True", []))


def test_the_convergence_report_prints_the_counts_it_is_given(convergence: ModuleType) -> None:
    lines = convergence.report(
        nodes=7,
        cluster_seconds=3.0,
        operator_seconds=1.0,
        shapes={(9, 4)},
        one=[1.0, 2.0, 3.0],
        burst=6,
        burst_seconds=5.0,
        histogram="12 reconciles, mean 3.0 ms",
    )
    text = "\n".join(lines)
    assert "kwok, 7 nodes)" in text
    assert "(9 children, 4 pods), 3 runs" in text
    assert "6 CRs applied together" in text
    # Nothing typed in: the figures of the previous hard-coded report do not appear.
    assert "14 nodes" not in text
    assert "10 children" not in text
    assert "3 pods" not in text


def test_requests_per_second_divides_finished_requests_by_the_elapsed_time(throughput: ModuleType) -> None:
    # 10 requests finished and 3 failed over 2.5 s measured (the nominal duration may have been 2 s: the
    # last requests finish after the deadline).
    results = throughput.Results(latencies_s=[0.01] * 10, errors=3, elapsed_s=2.5)
    summary = throughput.summarize(results, model_latency_ms=1.0, concurrency=4, stream=False)
    assert summary["requests_per_second"] == 4.0
    assert (summary["requests"], summary["errors"], summary["elapsed_s"]) == (10, 3, 2.5)
    assert "4.0 req/s (10 requests finished, 3 errors in 2.5 s" in throughput.report(summary)[0]


@pytest.fixture(scope="module")
def predictive() -> ModuleType:
    return load("predictive")


def test_the_predictive_report_prints_each_figure_next_to_its_goal(predictive: ModuleType) -> None:
    reactive = predictive.Figures(20.0, 6.0, 30.0, 1, 1000, 400.0)
    halved = predictive.Figures(8.0, 6.0, 14.0, 0, 1000, 440.0)
    lines = predictive.report(reactive, halved, 1440.0)
    ramp = next(line for line in lines if "ramp" in line)
    assert "20" in ramp
    assert "8" in ramp
    assert "0.40x (met)" in ramp
    cost = next(line for line in lines if "replica-minutes" in line)
    assert "+10.0 % (met)" in cost
    missed = predictive.report(reactive, predictive.Figures(15.0, 6.0, 20.0, 0, 1000, 480.0), 1440.0)
    assert "0.75x (NOT met)" in next(line for line in missed if "ramp" in line)
    assert "+20.0 % (NOT met)" in next(line for line in missed if "replica-minutes" in line)


def test_predictive_figures_count_samples_in_day_minutes(predictive: ModuleType) -> None:
    """At scale 60 a sample (one real second) is one day-minute; at 120, two."""
    outcomes = predictive.Outcomes()
    outcomes.record(0, 0.5)
    outcomes.record(1, 9.0)  # p99 above the 4 s target in second 1
    outcomes.record(1, None)
    queue = {"queue": 0.0, "replicas": 3}
    trace = [
        {"second": 0, "hour": 7.0, "reactive": queue},
        {"second": 1, "hour": 7.1, "reactive": queue},
        {"second": 2, "hour": 13.0, "reactive": {"queue": 5.0, "replicas": 4}},
    ]
    at_60 = predictive.figures(trace, "reactive", outcomes, 60.0)
    assert (at_60.ramp_violations, at_60.day_violations, at_60.replica_minutes) == (1.0, 2.0, 10.0)
    assert (at_60.failed, at_60.sent) == (1, 3)
    at_120 = predictive.figures(trace, "reactive", outcomes, 120.0)
    assert (at_120.ramp_violations, at_120.day_violations, at_120.replica_minutes) == (2.0, 4.0, 20.0)


def test_a_sample_that_fell_behind_stands_for_every_second_it_covers(predictive: ModuleType) -> None:
    outcomes = predictive.Outcomes()
    outcomes.record(1, 9.0)  # sent in a second the sampler skipped: it still counts, in the sample before
    trace = [
        {"second": 0, "hour": 7.0, "reactive": {"queue": 0.0, "replicas": 2}},
        {"second": 3, "hour": 7.1, "reactive": {"queue": 0.0, "replicas": 5}},
    ]
    result = predictive.figures(trace, "reactive", outcomes, 60.0)
    assert result.replica_minutes == 2 * 3 + 5
    assert result.ramp_violations == 3.0


@pytest.fixture(scope="module")
def failover() -> ModuleType:
    return load("failover")


def test_the_failover_report_prints_each_figure_over_the_runs_with_its_goal(failover: ModuleType) -> None:
    runs = [
        failover.Run("outage", decision=2.5, service=3.0, gap=3.2, failed=10, answered=12),
        failover.Run("outage", decision=2.7, service=3.4, gap=3.6, failed=14, answered=16),
        failover.Run("outage", decision=2.6, service=3.1, gap=None, failed=12, answered=14),
    ]
    text = "\n".join(failover.report(runs, ["outage"]))
    assert "3 runs per fault kind" in text
    assert "fault -> decision:                 min  2.50  median  2.60  max  2.70" in text
    assert "fault -> front Service on eu-west: min  3.00  median  3.10  max  3.40   goal <= 4 s" in text
    # A run where the client saw no success on one side is left out of the gap, not counted as 0.
    assert "min  3.20  median  3.40  max  3.60" in text
    assert "k8gb" in text


def test_the_cost_report_states_request_rates_and_what_per_object_probing_would_cost(
    failover: ModuleType,
) -> None:
    figure = failover.Cost(
        deployments=500,
        pods=1500,
        metric_signals=3,
        queries_per_second=3.0,
        probes_per_second=500.0,
        writes_per_second=16.0,
        check_seconds=0.25,
    )
    text = "\n".join(failover.cost_report([figure], 10))
    assert "500 deployments (1500 pods):    3.0 PromQL queries/s" in text
    assert "per deployment and signal it would be 1500/s" in text
    assert "500.0 engine probes/s" in text
    assert "every pod every second would be 1500/s" in text
    assert "250 ms" in text


def test_the_spot_benchmark_prints_each_figure_with_its_goal_and_says_when_one_is_missed() -> None:
    spot = load("spot")
    day = spot.Day(
        seconds=150,
        replicas=4,
        minimum_ready=1,
        minimum_on_demand=1,
        below_spec_share=0.2,
        spot_share=0.42,
        spec_spot_share=0.75,
        events=["  15s spot short"],
    )
    notice = spot.Interruption(replacement_seconds=3.7, pod_start_seconds=2.6, ok=248, failed=0)
    lines, met = spot.report([11.6, 12.2, 11.0], notice, day)
    assert met
    assert lines[0].endswith("(goal <= pendingTimeoutSeconds 10 + 5 = 15 s)")
    assert "max 12.2 s" in lines[0]
    assert "(goal <= 5 s + pod start = 7.6 s)" in lines[1]
    assert "lost 0" in lines[2]
    assert "(the spec's target 75 %)" in lines[5]
    _, slow_shortage = spot.report([16.0], notice, day)
    assert not slow_shortage
    _, slow_notice = spot.report([11.0], spot.Interruption(9.0, 2.0, 10, 0), day)
    assert not slow_notice
    _, below_base = spot.report([11.0], notice, spot.Day(**{**day.__dict__, "minimum_on_demand": 0}))
    assert not below_base
