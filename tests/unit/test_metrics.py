"""The operator's per-DeepSeekDeployment metric series: set from status, and removed with what they describe."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from deepseek_operator import metrics
from deepseek_operator.api import DeepSeekDeploymentSpec
from deepseek_operator.status import compute_status
from prometheus_client import REGISTRY, generate_latest

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def status_of(**overrides: Any) -> Any:
    document: dict[str, Any] = {
        "model": {"name": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"},
        "regions": [{"name": "us-east", "role": "Active"}, {"name": "eu-west", "role": "Standby"}],
        "replicas": 4,
        "spot": {"enabled": True, "onDemandBase": 1, "spotPercentage": 50},
    }
    document.update(overrides)
    spec = DeepSeekDeploymentSpec.model_validate(document)
    return compute_status("r1", spec, 1, spec.active_region_name, [], [], [], NOW)


def series_of(namespace: str) -> list[str]:
    """The exposition lines (what /metrics serves) that carry this namespace label."""
    text = generate_latest(REGISTRY).decode()
    return [line for line in text.splitlines() if f'namespace="{namespace}"' in line]


def fresh_namespace() -> str:
    return f"ns-{uuid.uuid4().hex[:8]}"  # the registry is process-wide: keep tests apart


def test_status_sets_a_gauge_per_region_and_pool() -> None:
    namespace = fresh_namespace()
    metrics.record_status(namespace, "r1", status_of())
    lines = series_of(namespace)
    assert len([line for line in lines if line.startswith("deepseek_operator_replicas{")]) == 8
    assert len([line for line in lines if line.startswith("deepseek_operator_active_region{")]) == 2
    assert (
        REGISTRY.get_sample_value(
            "deepseek_operator_replicas",
            {"namespace": namespace, "name": "r1", "region": "us-east", "pool": "spot", "state": "desired"},
        )
        == 1
    )


def test_a_pool_or_region_that_leaves_the_spec_loses_its_series() -> None:
    namespace = fresh_namespace()
    metrics.record_status(namespace, "r1", status_of())
    metrics.record_status(namespace, "r1", status_of(spot={"enabled": False}))
    assert not [line for line in series_of(namespace) if 'pool="spot"' in line]
    assert [line for line in series_of(namespace) if 'pool="on-demand"' in line]

    metrics.record_status(
        namespace,
        "r1",
        status_of(
            spot={"enabled": False},
            regions=[{"name": "us-east", "role": "Active"}],
            failover={"enabled": False},
        ),
    )
    assert not [line for line in series_of(namespace) if 'region="eu-west"' in line]
    assert [line for line in series_of(namespace) if 'region="us-east"' in line]


def test_forget_removes_every_series_of_the_object_and_only_those() -> None:
    namespace = fresh_namespace()
    metrics.record_status(namespace, "r1", status_of())
    metrics.record_status(namespace, "r2", status_of())
    metrics.count_reconcile(namespace, "r1", "success")
    metrics.count_pruned(namespace, "r1", "Deployment")
    metrics.count_reconcile(namespace, "r2", "success")

    metrics.forget(namespace, "r1")

    remaining = series_of(namespace)
    assert not [line for line in remaining if 'name="r1"' in line], remaining
    assert [line for line in remaining if 'name="r2"' in line and "replicas{" in line]
    assert [line for line in remaining if 'name="r2"' in line and "reconciles_total" in line]
    metrics.forget(namespace, "r1")  # twice (a DELETED event, then a reconcile that finds it gone) is fine


def test_the_predictive_figures_are_set_and_removed_with_their_forecast() -> None:
    namespace = fresh_namespace()
    metrics.record_predictive(namespace, "r1", forecast=12.5, floor=5, error_percent=7.0)
    lines = series_of(namespace)
    assert (
        f'deepseek_operator_predictive_forecast_requests_per_second{{name="r1",namespace="{namespace}"}} 12.5'
        in lines
    )
    assert f'deepseek_operator_predictive_floor_replicas{{name="r1",namespace="{namespace}"}} 5.0' in lines
    assert (
        f'deepseek_operator_predictive_forecast_error_percent{{name="r1",namespace="{namespace}"}} 7.0'
        in lines
    )
    # No forecast any more: no forecast series (not a forecast of 0); the floor still held is shown.
    metrics.record_predictive(namespace, "r1", forecast=None, floor=3, error_percent=None)
    lines = series_of(namespace)
    assert not any("forecast_requests_per_second" in line or "error_percent" in line for line in lines)
    assert f'deepseek_operator_predictive_floor_replicas{{name="r1",namespace="{namespace}"}} 3.0' in lines
    metrics.record_predictive(namespace, "r1", forecast=2.0, floor=None, error_percent=1.0)
    metrics.forget(namespace, "r1")
    assert series_of(namespace) == []


def test_the_spot_controllers_series_follow_its_regions_and_go_with_the_object() -> None:
    from deepseek_operator.api import SpotStatus

    namespace = fresh_namespace()

    def spot_status(*regions: str) -> SpotStatus:
        return SpotStatus.model_validate(
            {
                "fallbackReplicas": 2,
                "regions": [
                    {
                        "name": r,
                        "phase": "FallenBack",
                        "reason": "SpotShortage",
                        "message": "m",
                        "fallbackReplicas": 2,
                    }
                    for r in regions
                ],
            }
        )

    metrics.record_spot(namespace, "r1", spot_status("us-east", "eu-west"))
    metrics.count_interruption(namespace, "r1", "eu-west", "karpenter.sh/disrupted")
    metrics.add_replica_seconds(namespace, "r1", "eu-west", "spot", 12.5)
    metrics.add_replica_seconds(namespace, "r1", "us-east", "on-demand", 3.0)
    lines = series_of(namespace)
    assert any(
        line.startswith("deepseek_operator_spot_fallback_replicas{") and 'region="eu-west"' in line
        for line in lines
    )
    assert any(line.startswith("deepseek_operator_spot_interruptions_total{") for line in lines)
    assert any(
        line.startswith("deepseek_operator_replica_seconds_total{") and line.endswith(" 12.5")
        for line in lines
    )

    metrics.record_spot(namespace, "r1", spot_status("us-east"))
    assert not [line for line in series_of(namespace) if 'region="eu-west"' in line]
    assert any('region="us-east"' in line and "replica_seconds" in line for line in series_of(namespace))

    metrics.record_spot(namespace, "r1", None)  # spot turned off
    assert not [line for line in series_of(namespace) if "spot" in line.split("{")[0]]
    metrics.forget(namespace, "r1")
    assert series_of(namespace) == []
