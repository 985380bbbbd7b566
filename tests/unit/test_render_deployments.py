"""The per-region, per-pool Deployments and their pod template (docs/inference-contract.md)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from deepseek_operator.api import CapacityPool, DeepSeekDeploymentSpec
from deepseek_operator.render import CONFIG_HASH_ANNOTATION, config_hash
from deepseek_operator.render.deployments import render_deployment
from deepseek_operator.render.pods import container_env, gpu_memory_utilization, image_reference
from render_support import make_spec

NAME = "r1"
NAMESPACE = "ml"


def deployment(
    spec: DeepSeekDeploymentSpec,
    pool: CapacityPool = CapacityPool.ON_DEMAND,
    region: int = 0,
    replicas: int = 2,
) -> dict[str, Any]:
    return render_deployment(NAME, NAMESPACE, spec, spec.regions[region], pool, replicas)


def pod_spec(spec: DeepSeekDeploymentSpec, pool: CapacityPool = CapacityPool.ON_DEMAND) -> dict[str, Any]:
    result: dict[str, Any] = deployment(spec, pool)["spec"]["template"]["spec"]
    return result


def container(spec: DeepSeekDeploymentSpec, pool: CapacityPool = CapacityPool.ON_DEMAND) -> dict[str, Any]:
    containers = pod_spec(spec, pool)["containers"]
    assert len(containers) == 1
    result: dict[str, Any] = containers[0]
    return result


def env_of(spec: DeepSeekDeploymentSpec, pool: CapacityPool = CapacityPool.ON_DEMAND) -> dict[str, Any]:
    """Plain values by name; secret references as their valueFrom."""
    env = container(spec, pool)["env"]
    names = [item["name"] for item in env]
    assert len(names) == len(set(names)), "duplicate environment variables"
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in env}


def match_expressions(spec: DeepSeekDeploymentSpec, pool: CapacityPool = CapacityPool.ON_DEMAND) -> list[Any]:
    affinity = pod_spec(spec, pool)["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    terms = affinity["nodeSelectorTerms"]
    assert len(terms) == 1, "one term: its expressions are ANDed"
    expressions: list[Any] = terms[0]["matchExpressions"]
    return expressions


# --- Deployment --------------------------------------------------------------------------------


def test_deployment_metadata_selector_and_strategy() -> None:
    obj = deployment(
        make_spec(rollout={"maxSurge": 1, "maxUnavailable": "10%"}), CapacityPool.SPOT, replicas=3
    )
    assert (obj["apiVersion"], obj["kind"]) == ("apps/v1", "Deployment")
    assert obj["metadata"]["name"] == "r1-us-east-1-spot"
    assert obj["metadata"]["namespace"] == NAMESPACE
    assert obj["spec"]["replicas"] == 3
    assert obj["spec"]["revisionHistoryLimit"] == 5
    assert obj["spec"]["selector"] == {
        "matchLabels": {
            "serving.deepseek-operator.io/deployment": "r1",
            "serving.deepseek-operator.io/region": "us-east-1",
            "serving.deepseek-operator.io/pool": "spot",
        }
    }
    assert obj["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "10%"},
    }
    labels = obj["spec"]["template"]["metadata"]["labels"]
    assert labels == obj["metadata"]["labels"]
    assert obj["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert labels["app.kubernetes.io/name"] == "deepseek-inference"
    assert labels["app.kubernetes.io/instance"] == "r1"
    assert labels["app.kubernetes.io/component"] == "inference"
    assert labels["app.kubernetes.io/managed-by"] == "deepseek-operator"
    assert labels["app.kubernetes.io/part-of"] == "deepseek-operator"


def test_default_rollout_keeps_capacity_while_surging() -> None:
    strategy = deployment(make_spec())["spec"]["strategy"]["rollingUpdate"]
    assert strategy == {"maxSurge": "25%", "maxUnavailable": 0}


def test_zero_replicas_are_rendered() -> None:
    assert deployment(make_spec(), replicas=0)["spec"]["replicas"] == 0


def test_progress_deadline_outlasts_the_startup_probe() -> None:
    obj = deployment(make_spec())
    startup = obj["spec"]["template"]["spec"]["containers"][0]["startupProbe"]
    startup_budget = startup["periodSeconds"] * startup["failureThreshold"]
    assert obj["spec"]["progressDeadlineSeconds"] > startup_budget


# --- container ---------------------------------------------------------------------------------


def test_image_reference_prefers_the_digest() -> None:
    assert container(make_spec())["image"] == "ghcr.io/deepseek-operator/inference:0.1.0"
    assert (
        container(make_spec(image={"repository": "registry.local/ds", "tag": "v2"}))["image"]
        == "registry.local/ds:v2"
    )
    digest = "sha256:" + "ab" * 32
    spec = make_spec(image={"repository": "registry.local/ds", "tag": "v2", "digest": digest})
    assert image_reference(spec.image) == f"registry.local/ds@{digest}"
    assert container(spec)["image"] == f"registry.local/ds@{digest}"


def test_pull_policy_and_pull_secrets() -> None:
    spec = make_spec(image={"pullPolicy": "Always", "pullSecrets": [{"name": "a"}, {"name": "b"}]})
    assert container(spec)["imagePullPolicy"] == "Always"
    assert pod_spec(spec)["imagePullSecrets"] == [{"name": "a"}, {"name": "b"}]
    assert "imagePullSecrets" not in pod_spec(make_spec())


def test_port_and_resources() -> None:
    spec = make_spec(
        engine={"tensorParallelSize": 2},
        resources={"gpusPerReplica": 4, "cpu": 12, "memory": "200Gi"},
    )
    c = container(spec)
    assert c["name"] == "inference"
    assert c["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert c["resources"] == {
        "requests": {"cpu": "12", "memory": "200Gi"},
        "limits": {"nvidia.com/gpu": "4", "memory": "200Gi"},
    }


def test_probes_follow_the_contract() -> None:
    c = container(make_spec())
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": "/health", "port": "http"}
    assert (c["startupProbe"]["periodSeconds"], c["startupProbe"]["failureThreshold"]) == (10, 180)
    assert (c["readinessProbe"]["periodSeconds"], c["readinessProbe"]["failureThreshold"]) == (5, 3)
    assert (c["livenessProbe"]["periodSeconds"], c["livenessProbe"]["failureThreshold"]) == (15, 4)


def test_shutdown_timing_follows_the_contract() -> None:
    spec = make_spec(rollout={"drainSeconds": 300})
    assert container(spec)["lifecycle"] == {"preStop": {"sleep": {"seconds": 10}}}
    assert pod_spec(spec)["terminationGracePeriodSeconds"] == 10 + 300 + 10
    assert env_of(spec)["DSD_DRAIN_SECONDS"] == "300"
    assert pod_spec(make_spec())["terminationGracePeriodSeconds"] == 140


def shutdown(spec: DeepSeekDeploymentSpec, pool: CapacityPool) -> tuple[int, str, int]:
    """preStop sleep, DSD_DRAIN_SECONDS, terminationGracePeriodSeconds of a pool's pods."""
    return (
        container(spec, pool)["lifecycle"]["preStop"]["sleep"]["seconds"],
        env_of(spec, pool)["DSD_DRAIN_SECONDS"],
        pod_spec(spec, pool)["terminationGracePeriodSeconds"],
    )


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        # AWS: 2 minutes of notice, 90 s for the pod: 10 + 70 + 10.
        ("karpenter", (10, "70", 90)),
        ("eks", (10, "70", 90)),
        # GKE gives ordinary pods 15 s of its 30 s: 3 + 9 + 3.
        ("gke", (3, "9", 15)),
        # AKS: about 30 s of notice, 25 s for the pod: 6 + 13 + 6.
        ("aks", (6, "13", 25)),
    ],
)
def test_spot_pods_fit_their_shutdown_in_the_providers_notice(
    provider: str, expected: tuple[int, str, int]
) -> None:
    spec = make_spec(spot={"enabled": True, "provider": provider})
    assert shutdown(spec, CapacityPool.SPOT) == expected
    # On-demand pods keep the contract's timings: 10 + drainSeconds + 10.
    assert shutdown(spec, CapacityPool.ON_DEMAND) == (10, "120", 140)


def test_spot_shutdown_budget_is_a_setting_and_never_longer_than_on_demand() -> None:
    extended = make_spec(spot={"enabled": True, "provider": "gke", "terminationGracePeriodSeconds": 110})
    assert shutdown(extended, CapacityPool.SPOT) == (10, "90", 110)
    short_drain = make_spec(spot={"enabled": True}, rollout={"drainSeconds": 20})
    assert (
        shutdown(short_drain, CapacityPool.SPOT)
        == shutdown(short_drain, CapacityPool.ON_DEMAND)
        == (10, "20", 40)
    )
    custom = make_spec(
        spot={
            "enabled": True,
            "provider": "custom",
            "custom": {"labelKey": "example.com/spot", "spotValue": "y"},
        }
    )
    assert shutdown(custom, CapacityPool.SPOT) == (10, "120", 140), "no known notice: the contract's timings"


def test_security_settings() -> None:
    spec = make_spec()
    assert container(spec)["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    pod = pod_spec(spec)
    assert pod["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False


# --- environment (docs/inference-contract.md) --------------------------------------------------


def test_environment_for_an_image_model_with_defaults() -> None:
    assert env_of(make_spec()) == {
        "DSD_ENGINE": "vllm",
        "DSD_MODEL_SOURCE": "Image",
        "DSD_MODEL_PATH": "/opt/model",
        "DSD_SERVED_MODEL_NAME": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
        "DSD_TENSOR_PARALLEL_SIZE": "1",
        "DSD_MAX_NUM_SEQS": "256",
        "DSD_QUANTIZATION": "bf16",
        "DSD_GPU_MEMORY_UTILIZATION": "0.90",
        "DSD_EXTRA_ARGS": "[]",
        "DSD_PORT": "8080",
        "DSD_DRAIN_SECONDS": "120",
    }


def test_environment_reflects_the_engine_settings() -> None:
    spec = make_spec(
        model={"name": "deepseek-ai/DeepSeek-V3", "servedModelName": "v3"},
        engine={
            "name": "sglang",
            "tensorParallelSize": 8,
            "maxBatchSize": 64,
            "maxModelLength": 32768,
            "quantization": "fp8",
            "gpuMemoryUtilizationPercent": 85,
            "extraArgs": ["--enable-prefix-caching", "--seed", "1"],
        },
        resources={"gpusPerReplica": 8},
    )
    env = env_of(spec)
    assert env["DSD_ENGINE"] == "sglang"
    assert env["DSD_SERVED_MODEL_NAME"] == "v3"
    assert env["DSD_TENSOR_PARALLEL_SIZE"] == "8"
    assert env["DSD_MAX_NUM_SEQS"] == "64"
    assert env["DSD_MAX_MODEL_LEN"] == "32768"
    assert env["DSD_QUANTIZATION"] == "fp8"
    assert env["DSD_GPU_MEMORY_UTILIZATION"] == "0.85"
    assert json.loads(env["DSD_EXTRA_ARGS"]) == ["--enable-prefix-caching", "--seed", "1"]


@pytest.mark.parametrize(
    ("percent", "fraction"), [(10, "0.10"), (90, "0.90"), (99, "0.99"), (9, None), (100, None)]
)
def test_gpu_memory_utilization_is_formatted_without_floats(percent: int, fraction: str | None) -> None:
    if fraction is None:
        with pytest.raises(ValueError, match=r"within 10\.\.99"):
            gpu_memory_utilization(percent)
    else:
        assert gpu_memory_utilization(percent) == fraction


def test_environment_for_an_image_model_with_a_custom_path() -> None:
    spec = make_spec(model={"name": "m", "source": {"type": "Image", "path": "/models/r1"}})
    assert env_of(spec)["DSD_MODEL_PATH"] == "/models/r1"


def test_environment_for_a_hugging_face_model() -> None:
    spec = make_spec(
        model={
            "name": "deepseek-ai/DeepSeek-R1",
            "source": {
                "type": "HuggingFace",
                "huggingFace": {
                    "repoId": "deepseek-ai/DeepSeek-R1",
                    "revision": "0123abc",
                    "tokenSecretRef": {"name": "hub", "key": "token"},
                },
            },
        }
    )
    env = env_of(spec)
    assert env["DSD_MODEL_SOURCE"] == "HuggingFace"
    assert env["DSD_MODEL_ID"] == "deepseek-ai/DeepSeek-R1"
    assert env["DSD_MODEL_REVISION"] == "0123abc"
    assert env["HF_TOKEN"] == {"secretKeyRef": {"name": "hub", "key": "token"}}
    assert "DSD_MODEL_PATH" not in env
    assert [volume["name"] for volume in pod_spec(spec)["volumes"]] == ["dshm"]


def test_hugging_face_defaults_and_public_models() -> None:
    public = make_spec(
        model={"name": "m", "source": {"type": "HuggingFace", "huggingFace": {"repoId": "org/m"}}}
    )
    assert env_of(public)["DSD_MODEL_REVISION"] == "main"
    assert "HF_TOKEN" not in env_of(public)
    gated = make_spec(
        model={
            "name": "m",
            "source": {
                "type": "HuggingFace",
                "huggingFace": {"repoId": "org/m", "tokenSecretRef": {"name": "hub"}},
            },
        }
    )
    assert env_of(gated)["HF_TOKEN"] == {"secretKeyRef": {"name": "hub", "key": "HF_TOKEN"}}


def test_pvc_model_is_mounted_read_only() -> None:
    spec = make_spec(
        model={"name": "m", "source": {"type": "PVC", "pvc": {"claimName": "weights", "subPath": "r1/7b"}}}
    )
    env = env_of(spec)
    assert env["DSD_MODEL_SOURCE"] == "PVC"
    assert env["DSD_MODEL_PATH"] == "/mnt/model"
    assert {"name": "model", "persistentVolumeClaim": {"claimName": "weights", "readOnly": True}} in pod_spec(
        spec
    )["volumes"]
    assert {"name": "model", "mountPath": "/mnt/model", "readOnly": True, "subPath": "r1/7b"} in container(
        spec
    )["volumeMounts"]
    whole_volume = make_spec(model={"name": "m", "source": {"type": "PVC", "pvc": {"claimName": "weights"}}})
    assert {"name": "model", "mountPath": "/mnt/model", "readOnly": True} in container(whole_volume)[
        "volumeMounts"
    ]


def test_shared_memory_volume() -> None:
    spec = make_spec(resources={"sharedMemorySize": "32Gi"})
    assert pod_spec(spec)["volumes"] == [
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "32Gi"}}
    ]
    assert container(spec)["volumeMounts"] == [{"name": "dshm", "mountPath": "/dev/shm"}]


# --- scheduling --------------------------------------------------------------------------------


def test_affinity_pins_the_region_only_by_default() -> None:
    assert match_expressions(make_spec()) == [
        {"key": "topology.kubernetes.io/region", "operator": "In", "values": ["us-east-1"]}
    ]


def test_affinity_adds_zones_and_gpu_products() -> None:
    spec = make_spec(
        regions=[
            {"name": "us-east-1", "role": "Active", "zones": ["us-east-1a", "us-east-1b"]},
            {"name": "us-west-2", "role": "Standby"},
        ],
        resources={"gpuProducts": ["NVIDIA-H100-80GB-HBM3", "NVIDIA-H200"]},
    )
    assert match_expressions(spec) == [
        {"key": "topology.kubernetes.io/region", "operator": "In", "values": ["us-east-1"]},
        {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-east-1a", "us-east-1b"]},
        {
            "key": "nvidia.com/gpu.product",
            "operator": "In",
            "values": ["NVIDIA-H100-80GB-HBM3", "NVIDIA-H200"],
        },
    ]


def test_affinity_of_a_standby_region() -> None:
    spec = make_spec()
    obj = deployment(spec, region=1)
    assert obj["metadata"]["name"] == "r1-us-west-2-on-demand"
    term = obj["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    assert term["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == ["us-west-2"]


def test_capacity_terms_only_when_spot_is_enabled() -> None:
    spot = make_spec(spot={"enabled": True})
    assert match_expressions(spot, CapacityPool.SPOT)[-1] == {
        "key": "karpenter.sh/capacity-type",
        "operator": "In",
        "values": ["spot"],
    }
    # Not spot: on-demand and reserved capacity both.
    assert match_expressions(spot, CapacityPool.ON_DEMAND)[-1] == {
        "key": "karpenter.sh/capacity-type",
        "operator": "NotIn",
        "values": ["spot"],
    }
    assert len(match_expressions(make_spec(), CapacityPool.ON_DEMAND)) == 1


def test_region_node_selector() -> None:
    spec = make_spec(
        regions=[
            {"name": "us-east-1", "role": "Active", "nodeSelector": {"example.com/gpu-pool": "inference"}},
            {"name": "us-west-2", "role": "Standby"},
        ]
    )
    assert pod_spec(spec)["nodeSelector"] == {"example.com/gpu-pool": "inference"}
    assert "nodeSelector" not in pod_spec(make_spec())


def test_tolerations() -> None:
    gpu = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    assert pod_spec(make_spec())["tolerations"] == [gpu]
    spot = make_spec(spot={"enabled": True, "provider": "gke"})
    assert pod_spec(spot, CapacityPool.ON_DEMAND)["tolerations"] == [gpu]
    assert pod_spec(spot, CapacityPool.SPOT)["tolerations"] == [
        gpu,
        {"key": "cloud.google.com/gke-spot", "operator": "Equal", "value": "true", "effect": "NoSchedule"},
    ]
    own_taint = make_spec(
        spot={"enabled": True, "spotTaints": [{"key": "example.com/spot"}, {"key": "b", "value": "c"}]}
    )
    assert pod_spec(own_taint, CapacityPool.SPOT)["tolerations"] == [
        gpu,
        {"key": "example.com/spot", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "b", "operator": "Equal", "value": "c", "effect": "NoSchedule"},
    ]
    no_taint = make_spec(spot={"enabled": True, "spotTaints": []})
    assert pod_spec(no_taint, CapacityPool.SPOT)["tolerations"] == [gpu]


def test_zone_spread_selects_this_deployment_region_and_pool() -> None:
    spread = pod_spec(make_spec(spot={"enabled": True}), CapacityPool.SPOT)["topologySpreadConstraints"]
    assert spread == [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {
                "matchLabels": {
                    "serving.deepseek-operator.io/deployment": "r1",
                    "serving.deepseek-operator.io/region": "us-east-1",
                    "serving.deepseek-operator.io/pool": "spot",
                }
            },
        }
    ]


@pytest.mark.parametrize(
    ("tier", "class_name"), [("P0", "deepseek-p0"), ("P2", "deepseek-p2"), ("P3", "deepseek-p3")]
)
def test_priority_class_from_tier(tier: str, class_name: str) -> None:
    assert pod_spec(make_spec(priorityTier=tier))["priorityClassName"] == class_name


# --- config hash -------------------------------------------------------------------------------


def test_config_hash_is_a_stable_short_digest_on_the_pod_template() -> None:
    spec = make_spec()
    digest = config_hash(spec)
    assert len(digest) == 16
    assert int(digest, 16) >= 0
    assert config_hash(make_spec()) == digest
    annotations = deployment(spec)["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {CONFIG_HASH_ANNOTATION: digest}
    assert CONFIG_HASH_ANNOTATION == "serving.deepseek-operator.io/config-hash"


@pytest.mark.parametrize(
    "changes",
    [
        {"engine": {"maxBatchSize": 128}},
        {"engine": {"extraArgs": ["--enable-prefix-caching"]}},
        {"model": {"name": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "servedModelName": "r1"}},
        {"image": {"tag": "0.2.0"}},
        {"resources": {"memory": "96Gi"}},
        {"resources": {"gpuProducts": ["NVIDIA-A100-SXM4-80GB"]}},
    ],
)
def test_config_hash_changes_with_what_pods_run(changes: dict[str, Any]) -> None:
    assert config_hash(make_spec(**changes)) != config_hash(make_spec())


@pytest.mark.parametrize(
    "changes",
    [
        {"replicas": 7},
        {"autoscaling": {"enabled": True, "maxReplicas": 9}},
        {"failover": {"standbyWarmReplicas": 3}},
        {"spot": {"enabled": True}},
        {"service": {"port": 80}},
        {"monitoring": {"serviceMonitor": {"enabled": True}}},
        {"priorityTier": "P0"},
    ],
)
def test_config_hash_ignores_scaling_and_placement(changes: dict[str, Any]) -> None:
    assert config_hash(make_spec(**changes)) == config_hash(make_spec())


def test_container_env_is_in_contract_order() -> None:
    names = [item["name"] for item in container_env(make_spec(engine={"maxModelLength": 4096}))]
    assert names == [
        "DSD_ENGINE",
        "DSD_MODEL_SOURCE",
        "DSD_MODEL_PATH",
        "DSD_SERVED_MODEL_NAME",
        "DSD_TENSOR_PARALLEL_SIZE",
        "DSD_MAX_NUM_SEQS",
        "DSD_MAX_MODEL_LEN",
        "DSD_QUANTIZATION",
        "DSD_GPU_MEMORY_UTILIZATION",
        "DSD_EXTRA_ARGS",
        "DSD_PORT",
        "DSD_DRAIN_SECONDS",
    ]
