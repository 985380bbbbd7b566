"""render_children as a whole: order, identity, validity, purity, and that every spec field counts."""

from __future__ import annotations

import copy
import re
import types
import typing
from typing import Any

import kubernetes_validate
import pytest
from deepseek_operator.api import DeepSeekDeploymentSpec
from deepseek_operator.render import render_children
from pydantic import BaseModel

LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
COMMON_LABELS = {
    "app.kubernetes.io/name": "deepseek-inference",
    "app.kubernetes.io/instance": "r1",
    "app.kubernetes.io/component": "inference",
    "app.kubernetes.io/managed-by": "deepseek-operator",
    "app.kubernetes.io/part-of": "deepseek-operator",
    "serving.deepseek-operator.io/deployment": "r1",
}
# Kinds whose schema ships with Kubernetes (the others are CRDs of KEDA and prometheus-operator).
CORE_API_VERSIONS = {"v1", "apps/v1", "policy/v1", "autoscaling/v2"}


def merged(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


BASE: dict[str, Any] = {
    "model": {"name": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"},
    "regions": [{"name": "us-east-1", "role": "Active"}, {"name": "us-west-2", "role": "Standby"}],
}
EVERYTHING: dict[str, Any] = merged(
    BASE,
    {
        "model": {
            "servedModelName": "r1",
            "source": {"type": "PVC", "pvc": {"claimName": "w", "subPath": "r1"}},
        },
        "engine": {"tensorParallelSize": 2, "maxModelLength": 8192, "extraArgs": ["--enable-prefix-caching"]},
        "image": {"digest": "sha256:" + "0" * 64, "pullSecrets": [{"name": "registry"}]},
        "resources": {"gpusPerReplica": 2, "gpuProducts": ["NVIDIA-H100-80GB-HBM3"]},
        "regions": [
            {"name": "us-east-1", "role": "Active", "zones": ["us-east-1a"], "nodeSelector": {"pool": "gpu"}},
            {"name": "us-west-2", "role": "Standby"},
            {"name": "eu-west-1", "role": "Standby"},
        ],
        "replicas": 5,
        "autoscaling": {"enabled": True, "p99LatencyTargetMilliseconds": 1500},
        "spot": {"enabled": True, "provider": "aks"},
        "service": {"type": "LoadBalancer"},
        "monitoring": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}},
        "priorityTier": "P1",
    },
)
KEDA: dict[str, Any] = merged(
    BASE,
    {
        "autoscaling": {"enabled": True, "provider": "keda", "minReplicas": 0},
        "monitoring": {"prometheusUrl": "http://prometheus:9090"},
        "engine": {"name": "sglang"},
        "model": {
            "source": {
                "type": "HuggingFace",
                "huggingFace": {"repoId": "org/m", "tokenSecretRef": {"name": "t"}},
            }
        },
    },
)
SPECS = {"minimal": BASE, "everything": EVERYTHING, "keda": KEDA}


def render(spec: dict[str, Any], active_region: str | None = None) -> list[dict[str, Any]]:
    return render_children("r1", "ml", DeepSeekDeploymentSpec.model_validate(spec), active_region)


def kinds_and_names(children: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(child["kind"], child["metadata"]["name"]) for child in children]


def test_minimal_spec_children_in_order() -> None:
    assert kinds_and_names(render(BASE)) == [
        ("Deployment", "r1-us-east-1-on-demand"),
        ("Deployment", "r1-us-west-2-on-demand"),
        ("Service", "r1-us-east-1"),
        ("Service", "r1-us-west-2"),
        ("Service", "r1"),
        ("PodDisruptionBudget", "r1-us-east-1"),
        ("PodDisruptionBudget", "r1-us-west-2"),
    ]


def test_everything_enabled_children_in_order() -> None:
    assert kinds_and_names(render(EVERYTHING)) == [
        ("Deployment", "r1-us-east-1-on-demand"),
        ("Deployment", "r1-us-east-1-spot"),
        ("Deployment", "r1-us-west-2-on-demand"),
        ("Deployment", "r1-us-west-2-spot"),
        ("Deployment", "r1-eu-west-1-on-demand"),
        ("Deployment", "r1-eu-west-1-spot"),
        ("Service", "r1-us-east-1"),
        ("Service", "r1-us-west-2"),
        ("Service", "r1-eu-west-1"),
        ("Service", "r1"),
        ("PodDisruptionBudget", "r1-us-east-1"),
        ("PodDisruptionBudget", "r1-us-west-2"),
        ("PodDisruptionBudget", "r1-eu-west-1"),
        ("HorizontalPodAutoscaler", "r1"),
        ("ServiceMonitor", "r1"),
        ("PrometheusRule", "r1"),
    ]


@pytest.mark.parametrize("spec", SPECS.values(), ids=list(SPECS))
def test_every_child_is_identified_and_labelled(spec: dict[str, Any]) -> None:
    children = render(spec)
    identities = [(child["apiVersion"], child["kind"], child["metadata"]["name"]) for child in children]
    assert len(identities) == len(set(identities))
    for child in children:
        assert set(child) == {"apiVersion", "kind", "metadata", "spec"}
        assert child["metadata"]["namespace"] == "ml"
        assert "ownerReferences" not in child["metadata"]
        labels = child["metadata"]["labels"]
        assert COMMON_LABELS.items() <= labels.items()
        for key, value in labels.items():
            assert len(value) <= 63
            assert LABEL_VALUE.match(value), (key, value)


@pytest.mark.parametrize("spec", SPECS.values(), ids=list(SPECS))
def test_core_children_are_valid_kubernetes_objects(spec: dict[str, Any]) -> None:
    validated = 0
    for child in render(spec):
        if child["apiVersion"] in CORE_API_VERSIONS:
            kubernetes_validate.validate(child, "1.33", strict=True)
            validated += 1
    assert validated >= 7


def test_rendering_is_pure_and_deterministic() -> None:
    spec = DeepSeekDeploymentSpec.model_validate(EVERYTHING)
    before = spec.model_dump()
    first = render_children("r1", "ml", spec)
    second = render_children("r1", "ml", spec)
    assert first == second
    assert first is not second
    assert spec.model_dump() == before
    first[0]["spec"]["replicas"] = 99
    assert render_children("r1", "ml", spec)[0]["spec"]["replicas"] != 99


def test_active_region_override_moves_replicas_and_traffic() -> None:
    spec = merged(BASE, {"replicas": 4, "failover": {"standbyWarmReplicas": 1}})

    def replicas(children: list[dict[str, Any]]) -> dict[str, int]:
        return {c["metadata"]["name"]: c["spec"]["replicas"] for c in children if c["kind"] == "Deployment"}

    assert replicas(render(spec)) == {"r1-us-east-1-on-demand": 4, "r1-us-west-2-on-demand": 1}
    failed_over = render(spec, "us-west-2")
    assert replicas(failed_over) == {"r1-us-east-1-on-demand": 1, "r1-us-west-2-on-demand": 4}
    front = next(c for c in failed_over if c["kind"] == "Service" and c["metadata"]["name"] == "r1")
    assert front["spec"]["selector"]["serving.deepseek-operator.io/region"] == "us-west-2"
    with pytest.raises(ValueError, match=r"not in spec\.regions"):
        render(spec, "ap-south-1")


def test_the_namespace_is_used_everywhere() -> None:
    children = render_children("r1", "team-a", DeepSeekDeploymentSpec.model_validate(KEDA))
    assert {child["metadata"]["namespace"] for child in children} == {"team-a"}
    scaled = next(child for child in children if child["kind"] == "ScaledObject")
    assert 'namespace="team-a"' in scaled["spec"]["triggers"][0]["metadata"]["query"]


# --- every spec field has an effect ------------------------------------------------------------

# Fields read by the failover and spot controllers at run time, not by rendering.
CONTROLLER_FIELDS = {
    "failover.probeIntervalSeconds",
    "failover.failureThreshold",
    "failover.successThreshold",
    "failover.signals",
    "failover.minReadyReplicas",
    "failover.errorRatePercent",
    # The predictive pre-scaler's: the floor it writes to status reaches the autoscaler (tested in
    # test_predictive_decide), the settings themselves render nothing.
    "autoscaling.predictive.enabled",
    "autoscaling.predictive.mode",
    "autoscaling.predictive.horizonMinutes",
    "autoscaling.predictive.historyDays",
    "autoscaling.predictive.requestsPerSecondPerReplica",
    "autoscaling.predictive.maxForecastErrorPercent",
    "failover.p99LatencyMilliseconds",
    "failover.p99TimeToFirstTokenMilliseconds",
    "failover.metricsWindow",
    "failover.queries.errorRate",
    "failover.queries.latency",
    "failover.queries.timeToFirstToken",
    "failover.failback",
    "failover.minActiveSeconds",
    "failover.maxSwitchesPerHour",
    "failover.switchTimeoutSeconds",
    "spot.fallback.enabled",
    "spot.fallback.pendingTimeoutSeconds",
    "spot.fallback.maxReplicas",
    "spot.fallback.quietPeriodSeconds",
    "spot.fallback.stepSeconds",
    "spot.fallback.spillToSpot",
    "spot.fallback.cooldown.interruptions",
    "spot.fallback.cooldown.windowSeconds",
    "spot.fallback.cooldown.seconds",
    "spot.fallback.cooldown.maxSeconds",
    "spot.fallback.cooldown.groupSeconds",
}

_SPOT_CUSTOM = {
    "enabled": True,
    "provider": "custom",
    "custom": {"labelKey": "example.com/spot", "spotValue": "yes", "spotTaint": {"key": "example.com/spot"}},
}
_HUGGING_FACE = {"type": "HuggingFace", "huggingFace": {"repoId": "org/m", "tokenSecretRef": {"name": "t"}}}
_PVC = {"type": "PVC", "pvc": {"claimName": "w"}}
_AUTOSCALING = {"autoscaling": {"enabled": True}}
_KEDA = {
    "autoscaling": {"enabled": True, "provider": "keda"},
    "monitoring": {"prometheusUrl": "http://prometheus:9090"},
}
_RULES = {"monitoring": {"prometheusRule": {"enabled": True}}}

# field path -> (context patch, change patch): rendering context+change differs from context.
FIELD_EFFECTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "model.name": ({}, {"model": {"name": "deepseek-ai/other"}}),
    "model.servedModelName": ({}, {"model": {"servedModelName": "r1"}}),
    "model.source.type": ({}, {"model": {"source": _PVC}}),
    "model.source.path": ({}, {"model": {"source": {"path": "/models/r1"}}}),
    "model.source.huggingFace.repoId": (
        {"model": {"source": _HUGGING_FACE}},
        {"model": {"source": {"huggingFace": {"repoId": "org/other"}}}},
    ),
    "model.source.huggingFace.revision": (
        {"model": {"source": _HUGGING_FACE}},
        {"model": {"source": {"huggingFace": {"revision": "v2"}}}},
    ),
    "model.source.huggingFace.tokenSecretRef.name": (
        {"model": {"source": _HUGGING_FACE}},
        {"model": {"source": {"huggingFace": {"tokenSecretRef": {"name": "other"}}}}},
    ),
    "model.source.huggingFace.tokenSecretRef.key": (
        {"model": {"source": _HUGGING_FACE}},
        {"model": {"source": {"huggingFace": {"tokenSecretRef": {"key": "token"}}}}},
    ),
    "model.source.pvc.claimName": (
        {"model": {"source": _PVC}},
        {"model": {"source": {"pvc": {"claimName": "other"}}}},
    ),
    "model.source.pvc.subPath": (
        {"model": {"source": _PVC}},
        {"model": {"source": {"pvc": {"subPath": "r1"}}}},
    ),
    "engine.name": ({}, {"engine": {"name": "sglang"}}),
    "engine.tensorParallelSize": (
        {},
        {"engine": {"tensorParallelSize": 2}, "resources": {"gpusPerReplica": 2}},
    ),
    "engine.maxBatchSize": ({}, {"engine": {"maxBatchSize": 64}}),
    "engine.maxModelLength": ({}, {"engine": {"maxModelLength": 4096}}),
    "engine.quantization": ({}, {"engine": {"quantization": "fp8"}}),
    "engine.gpuMemoryUtilizationPercent": ({}, {"engine": {"gpuMemoryUtilizationPercent": 80}}),
    "engine.extraArgs": ({}, {"engine": {"extraArgs": ["--enforce-eager"]}}),
    "image.repository": ({}, {"image": {"repository": "registry.local/inference"}}),
    "image.tag": ({}, {"image": {"tag": "0.2.0"}}),
    "image.digest": ({}, {"image": {"digest": "sha256:" + "1" * 64}}),
    "image.pullPolicy": ({}, {"image": {"pullPolicy": "Always"}}),
    "image.pullSecrets[].name": ({}, {"image": {"pullSecrets": [{"name": "registry"}]}}),
    "resources.gpusPerReplica": ({}, {"resources": {"gpusPerReplica": 2}}),
    "resources.gpuProducts": ({}, {"resources": {"gpuProducts": ["NVIDIA-L40S"]}}),
    "resources.cpu": ({}, {"resources": {"cpu": "12"}}),
    "resources.memory": ({}, {"resources": {"memory": "80Gi"}}),
    "resources.sharedMemorySize": ({}, {"resources": {"sharedMemorySize": "8Gi"}}),
    "regions[].name": (
        {},
        {"regions": [{"name": "us-east-2", "role": "Active"}, {"name": "us-west-2", "role": "Standby"}]},
    ),
    "regions[].role": (
        {},
        {"regions": [{"name": "us-east-1", "role": "Standby"}, {"name": "us-west-2", "role": "Active"}]},
    ),
    "regions[].zones": (
        {},
        {
            "regions": [
                {"name": "us-east-1", "role": "Active", "zones": ["a"]},
                {"name": "us-west-2", "role": "Standby"},
            ]
        },
    ),
    "regions[].nodeSelector": (
        {},
        {
            "regions": [
                {"name": "us-east-1", "role": "Active", "nodeSelector": {"k": "v"}},
                {"name": "us-west-2", "role": "Standby"},
            ]
        },
    ),
    "replicas": ({}, {"replicas": 3}),
    "autoscaling.enabled": ({}, _AUTOSCALING),
    "autoscaling.provider": (
        merged(_KEDA, {"autoscaling": {"provider": "hpa"}}),
        {"autoscaling": {"provider": "keda"}},
    ),
    "autoscaling.minReplicas": (_AUTOSCALING, {"autoscaling": {"minReplicas": 2}}),
    "autoscaling.maxReplicas": (_AUTOSCALING, {"autoscaling": {"maxReplicas": 8}}),
    "autoscaling.queueDepthTargetPerReplica": (
        _AUTOSCALING,
        {"autoscaling": {"queueDepthTargetPerReplica": 8}},
    ),
    "autoscaling.p99LatencyTargetMilliseconds": (
        _AUTOSCALING,
        {"autoscaling": {"p99LatencyTargetMilliseconds": 900}},
    ),
    "autoscaling.scaleUp.stabilizationWindowSeconds": (
        _AUTOSCALING,
        {"autoscaling": {"scaleUp": {"stabilizationWindowSeconds": 30}}},
    ),
    "autoscaling.scaleUp.maxPodsPerPeriod": (
        _AUTOSCALING,
        {"autoscaling": {"scaleUp": {"maxPodsPerPeriod": 4}}},
    ),
    "autoscaling.scaleUp.periodSeconds": (_AUTOSCALING, {"autoscaling": {"scaleUp": {"periodSeconds": 30}}}),
    "autoscaling.scaleDown.stabilizationWindowSeconds": (
        _AUTOSCALING,
        {"autoscaling": {"scaleDown": {"stabilizationWindowSeconds": 900}}},
    ),
    "autoscaling.scaleDown.maxPodsPerPeriod": (
        _AUTOSCALING,
        {"autoscaling": {"scaleDown": {"maxPodsPerPeriod": 2}}},
    ),
    "autoscaling.scaleDown.periodSeconds": (
        _AUTOSCALING,
        {"autoscaling": {"scaleDown": {"periodSeconds": 600}}},
    ),
    "failover.enabled": ({}, {"failover": {"enabled": False}}),
    "failover.standbyWarmReplicas": ({}, {"failover": {"standbyWarmReplicas": 2}}),
    "spot.enabled": ({}, {"spot": {"enabled": True}}),
    "spot.onDemandBase": ({"replicas": 4, "spot": {"enabled": True}}, {"spot": {"onDemandBase": 3}}),
    "spot.spotPercentage": ({"replicas": 4, "spot": {"enabled": True}}, {"spot": {"spotPercentage": 100}}),
    "spot.provider": ({"spot": {"enabled": True}}, {"spot": {"provider": "eks"}}),
    "spot.custom.labelKey": ({"spot": _SPOT_CUSTOM}, {"spot": {"custom": {"labelKey": "example.com/other"}}}),
    "spot.custom.spotValue": ({"spot": _SPOT_CUSTOM}, {"spot": {"custom": {"spotValue": "true"}}}),
    "spot.custom.onDemandValue": ({"spot": _SPOT_CUSTOM}, {"spot": {"custom": {"onDemandValue": "no"}}}),
    "spot.custom.spotTaint.key": (
        {"spot": _SPOT_CUSTOM},
        {"spot": {"custom": {"spotTaint": {"key": "other"}}}},
    ),
    "spot.custom.spotTaint.value": (
        {"spot": _SPOT_CUSTOM},
        {"spot": {"custom": {"spotTaint": {"value": "yes"}}}},
    ),
    "spot.custom.spotTaint.effect": (
        {"spot": _SPOT_CUSTOM},
        {"spot": {"custom": {"spotTaint": {"effect": "NoExecute"}}}},
    ),
    # (an optional list: the field walk names its items without "[]")
    "spot.spotTaints.key": (
        {"spot": {"enabled": True}},
        {"spot": {"spotTaints": [{"key": "example.com/spot"}]}},
    ),
    "spot.spotTaints.value": (
        {"spot": {"enabled": True, "spotTaints": [{"key": "example.com/spot"}]}},
        {"spot": {"spotTaints": [{"key": "example.com/spot", "value": "yes"}]}},
    ),
    "spot.spotTaints.effect": (
        {"spot": {"enabled": True, "spotTaints": [{"key": "example.com/spot"}]}},
        {"spot": {"spotTaints": [{"key": "example.com/spot", "effect": "NoExecute"}]}},
    ),
    "spot.terminationGracePeriodSeconds": (
        {"spot": {"enabled": True}},
        {"spot": {"terminationGracePeriodSeconds": 30}},
    ),
    "service.port": ({}, {"service": {"port": 80}}),
    "service.type": ({}, {"service": {"type": "LoadBalancer"}}),
    "monitoring.prometheusUrl": (_KEDA, {"monitoring": {"prometheusUrl": "https://prometheus.example.com"}}),
    "monitoring.serviceMonitor.enabled": ({}, {"monitoring": {"serviceMonitor": {"enabled": True}}}),
    "monitoring.serviceMonitor.interval": (
        {"monitoring": {"serviceMonitor": {"enabled": True}}},
        {"monitoring": {"serviceMonitor": {"interval": "1m"}}},
    ),
    "monitoring.prometheusRule.enabled": ({}, _RULES),
    "priorityTier": ({}, {"priorityTier": "P0"}),
    "rollout.maxSurge": ({}, {"rollout": {"maxSurge": 1}}),
    "rollout.maxUnavailable": ({}, {"rollout": {"maxUnavailable": 1}}),
    "rollout.drainSeconds": ({}, {"rollout": {"drainSeconds": 30}}),
}


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model class inside X, X | None or tuple[X, ...], if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) in {typing.Union, tuple}:
        for argument in typing.get_args(annotation):
            found = _model_in(argument)
            if found is not None:
                return found
    return None


def leaf_fields(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Dotted wire paths of every leaf field (``regions[].name``)."""
    paths: list[str] = []
    for name, field in model.model_fields.items():
        alias = field.alias or name
        path = f"{prefix}{alias}"
        nested = _model_in(field.annotation)
        if nested is None:
            paths.append(path)
        else:
            is_list = typing.get_origin(field.annotation) is tuple
            paths += leaf_fields(nested, f"{path}[]." if is_list else f"{path}.")
    return paths


def test_every_spec_field_is_listed_as_rendered_or_controller_owned() -> None:
    fields = set(leaf_fields(DeepSeekDeploymentSpec))
    assert not CONTROLLER_FIELDS & set(FIELD_EFFECTS)
    assert fields == set(FIELD_EFFECTS) | CONTROLLER_FIELDS


@pytest.mark.parametrize("path", sorted(FIELD_EFFECTS))
def test_field_changes_the_rendered_children(path: str) -> None:
    context, change = FIELD_EFFECTS[path]
    before = merged(BASE, context)
    after = merged(before, change)
    assert render(after) != render(before)


@pytest.mark.parametrize(
    "change",
    [
        {"failover": {"probeIntervalSeconds": 60, "failureThreshold": 10, "successThreshold": 2}},
        {
            "failover": {
                "signals": ["ErrorRate", "TimeToFirstToken"],
                "failback": "Auto",
                "metricsWindow": "30s",
            },
            "monitoring": {"prometheusUrl": "http://prometheus:9090"},
        },
        {"failover": {"minActiveSeconds": 5, "maxSwitchesPerHour": 9, "switchTimeoutSeconds": 1}},
        {"failover": {"queries": {"latency": "x"}, "minReadyReplicas": 3, "errorRatePercent": 50}},
        {"spot": {"fallback": {"enabled": False, "pendingTimeoutSeconds": 60}}},
        {
            "spot": {
                "fallback": {
                    "maxReplicas": 1,
                    "quietPeriodSeconds": 5,
                    "stepSeconds": 5,
                    "spillToSpot": True,
                    "cooldown": {"interruptions": 1, "windowSeconds": 60, "seconds": 10, "maxSeconds": 20},
                }
            }
        },
    ],
)
def test_controller_fields_do_not_change_rendering(change: dict[str, Any]) -> None:
    context = {"spot": {"enabled": True}}
    assert render(merged(merged(BASE, context), change)) == render(merged(BASE, context))
