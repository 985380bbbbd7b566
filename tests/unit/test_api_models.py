"""The DeepSeekDeployment pydantic models: defaults, aliases, immutability and the cross-field rules.

The rules are also CEL rules in the CRD; the last tests run the integration table of invalid
objects through the models, so pydantic and the API server reject the same specs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from deepseek_operator import __version__
from deepseek_operator.api import (
    API_VERSION,
    GROUP,
    KIND,
    PLURAL,
    SHORT_NAMES,
    VERSION,
    AutoscalingProvider,
    CapacityPool,
    CapacityProvider,
    ConditionStatus,
    DeepSeekDeploymentSpec,
    DeepSeekDeploymentStatus,
    EngineName,
    FailbackMode,
    FailoverSignal,
    ModelSourceType,
    PriorityTier,
    PullPolicy,
    Quantization,
    RegionRole,
    ServiceType,
    validate_object_name,
)
from invalid_specs_table import load_invalid_specs
from pydantic import ValidationError


def spec_dict(**changes: Any) -> dict[str, Any]:
    """A valid wire-format spec (camelCase) with top-level ``changes``."""
    spec: dict[str, Any] = {
        "model": {"name": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"},
        "regions": [{"name": "us-east-1", "role": "Active"}, {"name": "us-west-2", "role": "Standby"}],
    }
    spec.update(changes)
    return spec


def parse(**changes: Any) -> DeepSeekDeploymentSpec:
    return DeepSeekDeploymentSpec.model_validate(spec_dict(**changes))


INVALID = load_invalid_specs()


def test_resource_identity() -> None:
    assert (GROUP, VERSION, KIND, PLURAL) == (
        "serving.deepseek-operator.io",
        "v1alpha1",
        "DeepSeekDeployment",
        "deepseekdeployments",
    )
    assert API_VERSION == "serving.deepseek-operator.io/v1alpha1"
    assert SHORT_NAMES == ["dsd"]


def test_minimal_spec_gets_every_default() -> None:
    spec = parse()
    assert spec.model.served_model_name is None
    assert spec.served_model_name == "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"
    assert spec.model.source.type is ModelSourceType.IMAGE
    assert spec.model.source.path is None
    assert spec.engine.name is EngineName.VLLM
    assert spec.engine.tensor_parallel_size == 1
    assert spec.engine.max_batch_size == 256
    assert spec.engine.max_model_length is None
    assert spec.engine.quantization is Quantization.BF16
    assert spec.engine.gpu_memory_utilization_percent == 90
    assert spec.engine.extra_args == ()
    assert spec.image.repository == "ghcr.io/deepseek-operator/inference"
    assert spec.image.tag == __version__ == "0.1.0"
    assert spec.image.digest is None
    assert spec.image.pull_policy is PullPolicy.IF_NOT_PRESENT
    assert spec.image.pull_secrets == ()
    assert spec.resources.gpus_per_replica == 1
    assert spec.resources.gpu_products == ()
    assert (spec.resources.cpu, spec.resources.memory, spec.resources.shared_memory_size) == (
        "8",
        "64Gi",
        "16Gi",
    )
    assert spec.replicas == 1
    autoscaling = spec.autoscaling
    assert not autoscaling.enabled
    assert autoscaling.provider is AutoscalingProvider.HPA
    assert (autoscaling.min_replicas, autoscaling.max_replicas) == (1, 4)
    assert autoscaling.queue_depth_target_per_replica == 4
    assert autoscaling.p99_latency_target_milliseconds is None
    up, down = autoscaling.scale_up, autoscaling.scale_down
    assert (up.stabilization_window_seconds, up.max_pods_per_period, up.period_seconds) == (0, 2, 60)
    assert (down.stabilization_window_seconds, down.max_pods_per_period, down.period_seconds) == (300, 1, 120)
    failover = spec.failover
    assert failover.enabled
    assert (failover.probe_interval_seconds, failover.failure_threshold) == (10, 3)
    assert failover.signals == (
        FailoverSignal.NODES_NOT_READY,
        FailoverSignal.PODS_NOT_READY,
        FailoverSignal.ENGINE_UNHEALTHY,
    )
    assert (failover.success_threshold, failover.min_ready_replicas, failover.min_active_seconds) == (
        6,
        1,
        300,
    )
    assert (failover.max_switches_per_hour, failover.switch_timeout_seconds) == (3, 60)
    assert failover.standby_warm_replicas == 1
    assert failover.failback is FailbackMode.MANUAL
    spot = spec.spot
    assert not spot.enabled
    assert (spot.on_demand_base, spot.spot_percentage) == (1, 50)
    assert spot.provider is CapacityProvider.KARPENTER
    assert spot.custom is None
    assert spot.fallback.enabled
    assert spot.fallback.pending_timeout_seconds == 300
    assert (spec.service.port, spec.service.type) == (8080, ServiceType.CLUSTER_IP)
    assert spec.monitoring.prometheus_url is None
    assert not spec.monitoring.service_monitor.enabled
    assert spec.monitoring.service_monitor.interval == "15s"
    assert not spec.monitoring.prometheus_rule.enabled
    assert spec.priority_tier is PriorityTier.P2
    assert (spec.rollout.max_surge, spec.rollout.max_unavailable, spec.rollout.drain_seconds) == (
        "25%",
        0,
        120,
    )


def test_wire_format_is_camel_case_and_python_names_are_accepted() -> None:
    by_alias = parse(engine={"tensorParallelSize": 2}, resources={"gpusPerReplica": 2})
    by_name = DeepSeekDeploymentSpec.model_validate(
        {
            "model": {"name": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"},
            "regions": [{"name": "us-east-1", "role": "Active"}, {"name": "us-west-2", "role": "Standby"}],
            "engine": {"tensor_parallel_size": 2},
            "resources": {"gpus_per_replica": 2},
        }
    )
    assert by_alias == by_name
    dumped = by_alias.model_dump(mode="json", by_alias=True)
    assert dumped["engine"]["tensorParallelSize"] == 2
    assert "p99LatencyTargetMilliseconds" in dumped["autoscaling"]
    assert "gpuMemoryUtilizationPercent" in dumped["engine"]
    assert "huggingFace" in dumped["model"]["source"]


def test_dump_and_parse_round_trip() -> None:
    spec = parse(
        model={
            "name": "deepseek-ai/DeepSeek-R1",
            "source": {"type": "HuggingFace", "huggingFace": {"repoId": "deepseek-ai/DeepSeek-R1"}},
        },
        spot={
            "enabled": True,
            "provider": "custom",
            "custom": {"labelKey": "example.com/spot", "spotValue": "1"},
        },
    )
    again = DeepSeekDeploymentSpec.model_validate(
        spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    )
    assert again == spec


def test_models_are_frozen() -> None:
    spec = parse()
    with pytest.raises(ValidationError, match="frozen"):
        spec.replicas = 3  # type: ignore[misc]
    with pytest.raises(ValidationError, match="frozen"):
        spec.engine.tensor_parallel_size = 2  # type: ignore[misc]


def test_quantities_accept_plain_numbers_as_kubernetes_does() -> None:
    spec = parse(resources={"cpu": 16, "memory": "128Gi"})
    assert spec.resources.cpu == "16"
    with pytest.raises(ValidationError, match="String should match pattern"):
        parse(resources={"memory": "lots"})
    with pytest.raises(ValidationError, match="String should match pattern"):
        parse(resources={"cpu": -1})


@pytest.mark.parametrize("value", [0, 3, "0%", "25%", "100%"])
def test_rollout_accepts_counts_and_percentages(value: int | str) -> None:
    assert parse(rollout={"maxSurge": value, "maxUnavailable": 1}).rollout.max_surge == value


@pytest.mark.parametrize("value", [-1, "150%", "25", "lots"])
def test_rollout_rejects_other_values(value: int | str) -> None:
    with pytest.raises(ValidationError, match="non-negative integer or a percentage"):
        parse(rollout={"maxSurge": value})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"regions": [{"name": "a", "role": "Standby"}, {"name": "b", "role": "Standby"}]}, "found 0"),
        ({"regions": [{"name": "a", "role": "Active"}, {"name": "b", "role": "Active"}]}, "found 2"),
        (
            {"regions": [{"name": "a", "role": "Active"}, {"name": "a", "role": "Standby"}]},
            "spec.regions names must be unique; duplicated: a",
        ),
        (
            {"engine": {"tensorParallelSize": 4}, "resources": {"gpusPerReplica": 6}},
            r"spec.resources.gpusPerReplica \(6\) must be a multiple of spec.engine.tensorParallelSize \(4\)",
        ),
        (
            {"failover": {"signals": ["PodsNotReady", "Latency"]}},
            "ErrorRate, Latency and TimeToFirstToken need spec.monitoring.prometheusUrl",
        ),
        ({"autoscaling": {"enabled": True, "provider": "keda"}}, "needs spec.monitoring.prometheusUrl"),
        (
            {"autoscaling": {"minReplicas": 5}},
            r"minReplicas \(5\) must not exceed spec.autoscaling.maxReplicas \(4\)",
        ),
        ({"autoscaling": {"enabled": True, "minReplicas": 0}}, "needs provider keda"),
        ({"spot": {"provider": "custom"}}, "spec.spot.custom is required"),
        ({"spot": {"custom": {"labelKey": "k", "spotValue": "v"}}}, "spec.spot.custom must only be set"),
        ({"rollout": {"maxSurge": "0%", "maxUnavailable": 0}}, "must not both be 0"),
        ({"image": {"digest": "sha256:ABC"}}, "spec.image.digest must look like sha256:"),
        ({"model": {"name": "m", "source": {"type": "HuggingFace"}}}, "huggingFace is required"),
        ({"model": {"name": "m", "source": {"type": "PVC"}}}, "pvc is required"),
        (
            {"model": {"name": "m", "source": {"pvc": {"claimName": "c"}}}},
            "pvc must only be set when spec.model.source.type is PVC",
        ),
        (
            {"model": {"name": "m", "source": {"type": "PVC", "pvc": {"claimName": "c", "subPath": "/abs"}}}},
            "subPath must be a relative path",
        ),
    ],
)
def test_cross_field_rules(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse(**changes)


def test_keda_with_prometheus_and_scale_to_zero_is_valid() -> None:
    spec = parse(
        autoscaling={"enabled": True, "provider": "keda", "minReplicas": 0},
        monitoring={"prometheusUrl": "https://prometheus.example.com"},
    )
    assert spec.autoscaling.min_replicas == 0


def test_single_region_without_failover_is_valid() -> None:
    spec = parse(regions=[{"name": "eu-west-1", "role": "Active"}], failover={"enabled": False})
    assert spec.active_region_name == "eu-west-1"


def test_single_region_needs_no_failover_section() -> None:
    """failover.enabled defaults to true; one region simply has nowhere to fail over to (status says so)."""
    spec = parse(regions=[{"name": "eu-west-1", "role": "Active"}])
    assert spec.failover.enabled


def test_metric_signals_with_a_prometheus_are_valid() -> None:
    spec = parse(
        failover={"signals": ["ErrorRate", "Latency", "TimeToFirstToken"]},
        monitoring={"prometheusUrl": "http://prometheus:9090"},
    )
    assert FailoverSignal.TIME_TO_FIRST_TOKEN in spec.failover.signals


def test_active_region_name_is_the_active_one_wherever_it_is_listed() -> None:
    spec = parse(regions=[{"name": "a", "role": "Standby"}, {"name": "b", "role": "Active"}])
    assert spec.active_region_name == "b"


def test_served_model_name_overrides_model_name() -> None:
    assert parse(model={"name": "deepseek-ai/x", "servedModelName": "x"}).served_model_name == "x"


@pytest.mark.parametrize("name", ["r1", "deepseek-r1-7b", "a" * 40])
def test_object_names_that_fit(name: str) -> None:
    assert validate_object_name(name) == name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("a" * 41, r"at most 40 characters \(it has 41\)"),
        ("7b", "must start with a lowercase letter"),
        ("my.model", "must start with a lowercase letter"),
        ("model-", "must start with a lowercase letter"),
    ],
)
def test_object_names_that_do_not_fit(name: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_object_name(name)


def test_status_parses_the_wire_format() -> None:
    status = DeepSeekDeploymentStatus.model_validate(
        {
            "observedGeneration": 3,
            "activeRegion": "us-east-1",
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "AllReplicasReady",
                    "lastTransitionTime": "2025-01-02T03:04:05Z",
                }
            ],
            "regions": [
                {
                    "name": "us-east-1",
                    "role": "Active",
                    "desiredReplicas": 4,
                    "readyReplicas": 3,
                    "pools": [
                        {"name": "on-demand", "desiredReplicas": 2},
                        {"name": "spot", "desiredReplicas": 2},
                    ],
                }
            ],
            "replicas": 4,
            "ready": "3/4",
            "spotShare": "50%",
            "selector": "serving.deepseek-operator.io/deployment=r1",
        }
    )
    assert status.conditions[0].status is ConditionStatus.TRUE
    assert status.conditions[0].last_transition_time == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert status.regions[0].role is RegionRole.ACTIVE
    assert [pool.name for pool in status.regions[0].pools] == [CapacityPool.ON_DEMAND, CapacityPool.SPOT]
    dumped = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert dumped["conditions"][0]["lastTransitionTime"] == "2025-01-02T03:04:05Z"
    assert DeepSeekDeploymentStatus().model_dump(exclude_none=True) == {"conditions": (), "regions": ()}


# --- the integration table, through the models -------------------------------------------------

# OpenAPI errors have their own wording in pydantic; CEL messages must match word for word.
_SCHEMA_ERROR_MARKERS = (
    "Unsupported value",
    "in body should",
    "Required value",
    "Too long",
    "Duplicate value",
    "must be of type",
    "should have at least",
    "should be greater than",
    "should be less than",
)


def _reject_reason(obj: dict[str, Any]) -> str:
    try:
        validate_object_name(obj["metadata"]["name"])
        DeepSeekDeploymentSpec.model_validate(obj["spec"])
    except (ValueError, ValidationError) as error:
        return str(error)
    return ""


def test_invalid_specs_table_is_large_and_unique() -> None:
    ids = [case["id"] for case in INVALID.INVALID_SPECS]
    assert len(ids) >= 18
    assert len(set(ids)) == len(ids)
    names = [case["object"]["metadata"]["name"] for case in INVALID.INVALID_SPECS]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("case", INVALID.INVALID_SPECS, ids=lambda case: case["id"])
def test_models_reject_every_invalid_spec(case: dict[str, Any]) -> None:
    reason = _reject_reason(case["object"])
    assert reason, f"{case['id']} was accepted"
    if not any(marker in case["error"] for marker in _SCHEMA_ERROR_MARKERS):
        assert case["error"] in reason


@pytest.mark.parametrize("obj", INVALID.VALID_OBJECTS, ids=lambda obj: obj["metadata"]["name"])
def test_models_accept_every_valid_object(obj: dict[str, Any]) -> None:
    assert _reject_reason(obj) == ""
