"""DeepSeekDeployment objects the API server must reject, and what it must say.

A data table for the integration test that applies each object to a real API server with the
CRD installed: ``error`` is a substring of the expected rejection message (a CEL message of the
CRD, or an OpenAPI schema error such as "Unsupported value"). Each object breaks exactly one
rule: the API server skips the CEL rules when the schema already rejects a field, so mixing
both kinds of error in one object would hide the CEL message.

Messages are literal on purpose: rewording a CRD message should make this table fail, not
follow along silently. ``VALID_OBJECTS`` lists objects that must be accepted, so a rule that
rejects too much is caught as well. Every object has its own name (``bad-<id>``), so one
wrongly accepted object does not change the outcome of the next.
"""

from __future__ import annotations

import copy
from typing import Any, Final, TypedDict

API_VERSION: Final = "serving.deepseek-operator.io/v1alpha1"
KIND: Final = "DeepSeekDeployment"
_DELETE: Final = object()


class InvalidSpec(TypedDict):
    id: str
    object: dict[str, Any]
    error: str


def base_spec() -> dict[str, Any]:
    """A small valid spec: two regions, so that failover has a standby."""
    return {
        "model": {"name": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"},
        "regions": [
            {"name": "us-east-1", "role": "Active"},
            {"name": "us-west-2", "role": "Standby"},
        ],
    }


def _merged(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``patch`` merged in: dicts recursively, anything else replaced, _DELETE removes."""
    result = copy.deepcopy(base)
    for key, value in patch.items():
        if value is _DELETE:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def dsd(name: str, spec_patch: dict[str, Any] | None = None) -> dict[str, Any]:
    """A DeepSeekDeployment object named ``name`` whose spec is base_spec() with ``spec_patch``."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name},
        "spec": _merged(base_spec(), spec_patch or {}),
    }


def _case(case_id: str, spec_patch: dict[str, Any], error: str) -> InvalidSpec:
    return {"id": case_id, "object": dsd(f"bad-{case_id}", spec_patch), "error": error}


_ONE_REGION = {"regions": [{"name": "us-east-1", "role": "Active"}]}

INVALID_SPECS: Final[tuple[InvalidSpec, ...]] = (
    # metadata.name (root CEL rules)
    {
        "id": "name-too-long",
        "object": dsd("a" * 41),
        "error": "metadata.name must be at most 40 characters",
    },
    {
        "id": "name-starts-with-digit",
        "object": dsd("7b-model"),
        "error": "metadata.name must start with a lowercase letter",
    },
    # spec.model
    _case("model-missing", {"model": _DELETE}, "Required value"),
    _case("model-name-quote", {"model": {"name": 'deepseek"}'}}, "spec.model.name in body should match"),
    _case(
        "hf-member-missing",
        {"model": {"source": {"type": "HuggingFace"}}},
        "spec.model.source.huggingFace is required when spec.model.source.type is HuggingFace",
    ),
    _case(
        "hf-member-on-image",
        {"model": {"source": {"type": "Image", "huggingFace": {"repoId": "deepseek-ai/x"}}}},
        "spec.model.source.huggingFace must only be set when spec.model.source.type is HuggingFace",
    ),
    _case(
        "pvc-member-missing",
        {"model": {"source": {"type": "PVC"}}},
        "spec.model.source.pvc is required when spec.model.source.type is PVC",
    ),
    _case(
        "pvc-member-on-huggingface",
        {
            "model": {
                "source": {
                    "type": "HuggingFace",
                    "huggingFace": {"repoId": "deepseek-ai/x"},
                    "pvc": {"claimName": "weights"},
                }
            }
        },
        "spec.model.source.pvc must only be set when spec.model.source.type is PVC",
    ),
    _case(
        "path-on-pvc",
        {"model": {"source": {"type": "PVC", "pvc": {"claimName": "weights"}, "path": "/opt/model"}}},
        "spec.model.source.path must only be set when spec.model.source.type is Image",
    ),
    _case(
        "pvc-subpath-escapes",
        {"model": {"source": {"type": "PVC", "pvc": {"claimName": "weights", "subPath": "a/../../etc"}}}},
        "spec.model.source.pvc.subPath must be a relative path inside the volume",
    ),
    _case("source-type-unknown", {"model": {"source": {"type": "S3"}}}, 'Unsupported value: "S3"'),
    # spec.engine
    _case("engine-unknown", {"engine": {"name": "tgi"}}, 'Unsupported value: "tgi"'),
    _case("quantization-unknown", {"engine": {"quantization": "int4"}}, 'Unsupported value: "int4"'),
    _case(
        "tensor-parallel-too-large",
        {"engine": {"tensorParallelSize": 128}},
        "should be less than or equal to 64",
    ),
    _case(
        "gpu-memory-as-fraction",
        {"engine": {"gpuMemoryUtilizationPercent": 0.9}},
        "must be of type integer",
    ),
    _case(
        "gpu-memory-too-high",
        {"engine": {"gpuMemoryUtilizationPercent": 100}},
        "should be less than or equal to 99",
    ),
    # spec.image and spec.resources
    _case(
        "digest-malformed",
        {"image": {"digest": "sha256:1234"}},
        "spec.image.digest must look like sha256:<64 lowercase hex characters>",
    ),
    _case("pull-policy-unknown", {"image": {"pullPolicy": "Sometimes"}}, 'Unsupported value: "Sometimes"'),
    _case(
        "gpus-not-multiple-of-tp",
        {"engine": {"tensorParallelSize": 2}, "resources": {"gpusPerReplica": 3}},
        "spec.resources.gpusPerReplica (3) must be a multiple of spec.engine.tensorParallelSize (2)",
    ),
    _case(
        "memory-not-a-quantity",
        {"resources": {"memory": "lots"}},
        "spec.resources.memory in body should match",
    ),
    _case("cpu-negative", {"resources": {"cpu": -4}}, "should be greater than or equal to 0"),
    # spec.regions
    _case(
        "no-active-region",
        {"regions": [{"name": "us-east-1", "role": "Standby"}, {"name": "us-west-2", "role": "Standby"}]},
        "spec.regions must have exactly one region with role Active; found 0",
    ),
    _case(
        "two-active-regions",
        {"regions": [{"name": "us-east-1", "role": "Active"}, {"name": "us-west-2", "role": "Active"}]},
        "spec.regions must have exactly one region with role Active; found 2",
    ),
    _case(
        "duplicate-region",
        {"regions": [{"name": "us-east-1", "role": "Active"}, {"name": "us-east-1", "role": "Standby"}]},
        "Duplicate value",
    ),
    _case("no-regions", {"regions": []}, "should have at least 1 items"),
    _case(
        "region-name-too-long",
        {"regions": [{"name": "r" * 21, "role": "Active"}, {"name": "us-west-2", "role": "Standby"}]},
        "Too long",
    ),
    _case(
        "region-role-missing",
        {"regions": [{"name": "us-east-1", "role": "Active"}, {"name": "us-west-2"}]},
        "Required value",
    ),
    _case(
        "metric-signal-without-prometheus",
        {"failover": {"signals": ["NodesNotReady", "ErrorRate"]}},
        "ErrorRate, Latency and TimeToFirstToken need spec.monitoring.prometheusUrl",
    ),
    _case("negative-replicas", {"replicas": -1}, "should be greater than or equal to 0"),
    # spec.autoscaling
    _case(
        "autoscaling-min-above-max",
        {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}},
        "spec.autoscaling.minReplicas (5) must not exceed spec.autoscaling.maxReplicas (2)",
    ),
    _case(
        "keda-without-prometheus",
        {"autoscaling": {"enabled": True, "provider": "keda"}},
        "spec.autoscaling.provider keda needs spec.monitoring.prometheusUrl",
    ),
    _case(
        "predictive-without-prometheus",
        {"autoscaling": {"enabled": True, "predictive": {"enabled": True}}},
        "spec.autoscaling.predictive.enabled needs spec.monitoring.prometheusUrl",
    ),
    _case(
        "predictive-without-autoscaling",
        {
            "autoscaling": {"enabled": False, "predictive": {"enabled": True}},
            "monitoring": {"prometheusUrl": "http://prometheus:9090"},
        },
        "spec.autoscaling.predictive.enabled needs spec.autoscaling.enabled",
    ),
    _case(
        "hpa-scale-to-zero",
        {"autoscaling": {"enabled": True, "minReplicas": 0}},
        "spec.autoscaling.minReplicas 0 (scale to zero) needs provider keda",
    ),
    # spec.failover
    _case("failover-signal-unknown", {"failover": {"signals": ["Vibes"]}}, 'Unsupported value: "Vibes"'),
    _case("failover-no-signals", {"failover": {"signals": []}}, "should have at least 1 items"),
    _case(
        "metrics-window-not-a-duration",
        {"failover": {"metricsWindow": "a minute"}},
        "spec.failover.metricsWindow in body should match",
    ),
    # spec.spot
    _case(
        "spot-custom-missing",
        {"spot": {"enabled": True, "provider": "custom"}},
        "spec.spot.custom is required when spec.spot.provider is custom",
    ),
    _case(
        "spot-custom-with-preset",
        {"spot": {"provider": "gke", "custom": {"labelKey": "example.com/spot", "spotValue": "yes"}}},
        "spec.spot.custom must only be set when spec.spot.provider is custom",
    ),
    _case(
        "spot-percentage-over-100", {"spot": {"spotPercentage": 120}}, "should be less than or equal to 100"
    ),
    _case(
        "spot-fallback-too-fast",
        {"spot": {"fallback": {"pendingTimeoutSeconds": 5}}},
        "should be greater than or equal to 10",
    ),
    # spec.service, spec.monitoring, spec.priorityTier, spec.rollout
    _case("service-type-unknown", {"service": {"type": "ExternalName"}}, 'Unsupported value: "ExternalName"'),
    _case(
        "prometheus-url-without-scheme",
        {"monitoring": {"prometheusUrl": "prometheus:9090"}},
        "spec.monitoring.prometheusUrl in body should match",
    ),
    _case("priority-tier-unknown", {"priorityTier": "P9"}, 'Unsupported value: "P9"'),
    _case(
        "rollout-cannot-progress",
        {"rollout": {"maxSurge": 0, "maxUnavailable": "0%"}},
        "spec.rollout.maxSurge and spec.rollout.maxUnavailable must not both be 0",
    ),
    _case(
        "rollout-surge-not-a-percentage",
        {"rollout": {"maxSurge": "lots"}},
        "spec.rollout.maxSurge in body should match",
    ),
    _case("drain-too-long", {"rollout": {"drainSeconds": 7200}}, "should be less than or equal to 3600"),
)

VALID_OBJECTS: Final[tuple[dict[str, Any], ...]] = (
    dsd("minimal"),
    dsd("single-region", {**_ONE_REGION, "failover": {"enabled": False}}),
    # A single region needs no failover section (failover.enabled defaults to true).
    dsd("single-region-defaults", _ONE_REGION),
    dsd(
        "everything",
        {
            "model": {
                "servedModelName": "r1-7b",
                "source": {
                    "type": "HuggingFace",
                    "huggingFace": {"repoId": "deepseek-ai/DeepSeek-R1", "tokenSecretRef": {"name": "hf"}},
                },
            },
            "engine": {
                "name": "sglang",
                "tensorParallelSize": 2,
                "maxModelLength": 32768,
                "quantization": "fp8",
            },
            "image": {"digest": "sha256:" + "0" * 64, "pullSecrets": [{"name": "registry"}]},
            "resources": {"gpusPerReplica": 4, "cpu": 16, "gpuProducts": ["NVIDIA-H100-80GB-HBM3"]},
            "replicas": 3,
            "autoscaling": {
                "enabled": True,
                "provider": "keda",
                "minReplicas": 0,
                "maxReplicas": 8,
                "p99LatencyTargetMilliseconds": 2500,
            },
            "spot": {
                "enabled": True,
                "provider": "custom",
                "custom": {
                    "labelKey": "example.com/capacity",
                    "spotValue": "spot",
                    "spotTaint": {"key": "example.com/spot"},
                },
            },
            "failover": {
                "probeIntervalSeconds": 5,
                "failureThreshold": 4,
                "successThreshold": 8,
                "signals": [
                    "NodesNotReady",
                    "PodsNotReady",
                    "EngineUnhealthy",
                    "ErrorRate",
                    "Latency",
                    "TimeToFirstToken",
                ],
                "minReadyReplicas": 2,
                "errorRatePercent": 2,
                "p99LatencyMilliseconds": 30000,
                "p99TimeToFirstTokenMilliseconds": 2000,
                "metricsWindow": "2m",
                "queries": {
                    "errorRate": "sum by ({{ by }}) (rate(my_errors_total{ {{ selector }} }[{{ window }}]))"
                },
                "standbyWarmReplicas": 2,
                "failback": "Auto",
                "minActiveSeconds": 900,
                "maxSwitchesPerHour": 2,
                "switchTimeoutSeconds": 120,
            },
            "service": {"type": "LoadBalancer", "port": 80},
            "monitoring": {
                "prometheusUrl": "http://prometheus.monitoring:9090",
                "serviceMonitor": {"enabled": True, "interval": "30s"},
                "prometheusRule": {"enabled": True},
            },
            "priorityTier": "P0",
            "rollout": {"maxSurge": 1, "maxUnavailable": "10%", "drainSeconds": 300},
        },
    ),
)
