"""The inference pod template: container, environment, probes, scheduling.

The environment follows docs/inference-contract.md, the contract between the operator and the
inference container (the real launcher or the simulator).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from deepseek_operator.api import (
    DEFAULT_IMAGE_MODEL_PATH,
    PVC_MODEL_MOUNT_PATH,
    CapacityPool,
    DeepSeekDeploymentSpec,
    ImageSpec,
    ModelSourceType,
    PriorityTier,
    RegionSpec,
)
from deepseek_operator.render.capacity import capacity_labels
from deepseek_operator.render.labels import CONFIG_HASH_ANNOTATION, pool_labels, pool_selector

CONTAINER_NAME = "inference"
CONTAINER_PORT = 8080
PORT_NAME = "http"
HEALTH_PATH = "/health"
METRICS_PATH = "/metrics"

GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
REGION_TOPOLOGY_KEY = "topology.kubernetes.io/region"
ZONE_TOPOLOGY_KEY = "topology.kubernetes.io/zone"

SHM_VOLUME = "dshm"
# Shared memory for NCCL and the engine's worker processes; the runtime's 64Mi default starves them.
SHM_MOUNT_PATH = "/dev/shm"  # noqa: S108 - a memory-backed volume of the pod's own, not a shared temp dir
MODEL_VOLUME = "model"

# Shutdown, per the contract: endpoints drop the pod during the preStop sleep, then the container
# drains for up to drainSeconds, then gets a margin to exit before SIGKILL. Spot pods fit the three in
# what the provider's interruption notice leaves (`shutdown_timings`).
PRESTOP_SLEEP_SECONDS = 10
EXIT_MARGIN_SECONDS = 10

# Loading a large model can take many minutes; the startup probe allows 10 s x 180 = 30 minutes
# before liveness takes over.
STARTUP_PERIOD_SECONDS = 10
STARTUP_FAILURE_THRESHOLD = 180
STARTUP_BUDGET_SECONDS = STARTUP_PERIOD_SECONDS * STARTUP_FAILURE_THRESHOLD

PRIORITY_CLASS_NAMES: Mapping[PriorityTier, str] = MappingProxyType(
    {tier: f"deepseek-{tier.value.lower()}" for tier in PriorityTier}
)


def image_reference(image: ImageSpec) -> str:
    """``repository@digest`` when a digest pins the image, else ``repository:tag``."""
    if image.digest is not None:
        return f"{image.repository}@{image.digest}"
    return f"{image.repository}:{image.tag}"


def gpu_memory_utilization(percent: int) -> str:
    """The contract's fraction with two decimals, from the API's integer percent: 90 -> "0.90".

    The API bounds percent to 10..99, so integer formatting is exact (no float rounding).
    """
    if not 10 <= percent <= 99:
        raise ValueError(f"gpuMemoryUtilizationPercent must be within 10..99, got {percent}")
    return f"0.{percent:02d}"


def config_hash(spec: DeepSeekDeploymentSpec) -> str:
    """First 16 hex digits of a sha256 over what the pods run: model, engine, image and resources.

    Replica counts, autoscaling, regions and the like are left out, so scaling never rolls pods.
    Unset (None) fields are left out, so adding an optional field to the API does not change the
    hash of existing objects.
    """
    payload = {
        section: getattr(spec, section).model_dump(mode="json", by_alias=True, exclude_none=True)
        for section in ("model", "engine", "image", "resources")
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def model_env(spec: DeepSeekDeploymentSpec) -> list[dict[str, Any]]:
    """DSD_MODEL_SOURCE and where the weights are (path, or Hub id, revision and token)."""
    source = spec.model.source
    env: list[dict[str, Any]] = [{"name": "DSD_MODEL_SOURCE", "value": source.type.value}]
    if source.type is ModelSourceType.IMAGE:
        env.append({"name": "DSD_MODEL_PATH", "value": source.path or DEFAULT_IMAGE_MODEL_PATH})
    elif source.type is ModelSourceType.PVC:
        env.append({"name": "DSD_MODEL_PATH", "value": PVC_MODEL_MOUNT_PATH})
    elif source.hugging_face is not None:
        hub = source.hugging_face
        env.append({"name": "DSD_MODEL_ID", "value": hub.repo_id})
        env.append({"name": "DSD_MODEL_REVISION", "value": hub.revision})
        if hub.token_secret_ref is not None:
            secret = hub.token_secret_ref
            env.append(
                {
                    "name": "HF_TOKEN",
                    "valueFrom": {"secretKeyRef": {"name": secret.name, "key": secret.key}},
                }
            )
    return env


@dataclass(frozen=True)
class ShutdownTimings:
    """preStop sleep, then drain, then an exit margin: together the pod's grace period."""

    pre_stop_seconds: int
    drain_seconds: int
    exit_margin_seconds: int

    @property
    def grace_seconds(self) -> int:
        return self.pre_stop_seconds + self.drain_seconds + self.exit_margin_seconds


def shutdown_timings(
    spec: DeepSeekDeploymentSpec, pool: CapacityPool = CapacityPool.ON_DEMAND
) -> ShutdownTimings:
    """The contract's timings (10 s + drainSeconds + 10 s), or for spot pods what fits in the provider's
    interruption notice (``spot.terminationGracePeriodSeconds``, else the preset's budget): a quarter of
    the budget each (at most 10 s) for the preStop sleep and the exit margin, the rest for the drain (at
    most drainSeconds). A pod killed at the end of the notice has no drain at all, so a shorter drain
    that ends in time serves more requests to the end than a longer one cut off."""
    regular = ShutdownTimings(PRESTOP_SLEEP_SECONDS, spec.rollout.drain_seconds, EXIT_MARGIN_SECONDS)
    if pool is not CapacityPool.SPOT or not spec.spot.enabled:
        return regular
    budget = spec.spot.termination_grace_period_seconds or capacity_labels(spec.spot).spot_grace_seconds
    if budget is None or budget >= regular.grace_seconds:
        return regular
    pre_stop = min(PRESTOP_SLEEP_SECONDS, budget // 4)
    margin = min(EXIT_MARGIN_SECONDS, budget // 4)
    return ShutdownTimings(pre_stop, min(spec.rollout.drain_seconds, budget - pre_stop - margin), margin)


def container_env(
    spec: DeepSeekDeploymentSpec, pool: CapacityPool = CapacityPool.ON_DEMAND
) -> list[dict[str, Any]]:
    """The container environment of docs/inference-contract.md, in the contract's order."""
    engine = spec.engine
    env: list[dict[str, Any]] = [{"name": "DSD_ENGINE", "value": engine.name.value}]
    env += model_env(spec)
    env += [
        {"name": "DSD_SERVED_MODEL_NAME", "value": spec.served_model_name},
        {"name": "DSD_TENSOR_PARALLEL_SIZE", "value": str(engine.tensor_parallel_size)},
        {"name": "DSD_MAX_NUM_SEQS", "value": str(engine.max_batch_size)},
    ]
    if engine.max_model_length is not None:
        env.append({"name": "DSD_MAX_MODEL_LEN", "value": str(engine.max_model_length)})
    env += [
        {"name": "DSD_QUANTIZATION", "value": engine.quantization.value},
        {
            "name": "DSD_GPU_MEMORY_UTILIZATION",
            "value": gpu_memory_utilization(engine.gpu_memory_utilization_percent),
        },
        {"name": "DSD_EXTRA_ARGS", "value": json.dumps(list(engine.extra_args))},
        {"name": "DSD_PORT", "value": str(CONTAINER_PORT)},
        {"name": "DSD_DRAIN_SECONDS", "value": str(shutdown_timings(spec, pool).drain_seconds)},
    ]
    return env


def _http_probe(period_seconds: int, failure_threshold: int, timeout_seconds: int = 1) -> dict[str, Any]:
    return {
        "httpGet": {"path": HEALTH_PATH, "port": PORT_NAME},
        "periodSeconds": period_seconds,
        "timeoutSeconds": timeout_seconds,
        "failureThreshold": failure_threshold,
    }


def inference_container(
    spec: DeepSeekDeploymentSpec, pool: CapacityPool = CapacityPool.ON_DEMAND
) -> dict[str, Any]:
    """The one container of the pod."""
    resources = spec.resources
    mounts: list[dict[str, Any]] = [{"name": SHM_VOLUME, "mountPath": SHM_MOUNT_PATH}]
    pvc = spec.model.source.pvc
    if spec.model.source.type is ModelSourceType.PVC and pvc is not None:
        model_mount: dict[str, Any] = {
            "name": MODEL_VOLUME,
            "mountPath": PVC_MODEL_MOUNT_PATH,
            "readOnly": True,
        }
        if pvc.sub_path is not None:
            model_mount["subPath"] = pvc.sub_path
        mounts.append(model_mount)
    return {
        "name": CONTAINER_NAME,
        "image": image_reference(spec.image),
        "imagePullPolicy": spec.image.pull_policy.value,
        "ports": [{"name": PORT_NAME, "containerPort": CONTAINER_PORT, "protocol": "TCP"}],
        "env": container_env(spec, pool),
        "resources": {
            "requests": {"cpu": resources.cpu, "memory": resources.memory},
            # GPUs are an extended resource: the request defaults to (and must equal) the limit.
            "limits": {GPU_RESOURCE: str(resources.gpus_per_replica), "memory": resources.memory},
        },
        "startupProbe": _http_probe(STARTUP_PERIOD_SECONDS, STARTUP_FAILURE_THRESHOLD),
        "readinessProbe": _http_probe(5, 3),
        # A generous timeout: a busy engine answering /health slowly must not be restarted.
        "livenessProbe": _http_probe(15, 4, timeout_seconds=5),
        # The native sleep action: no sleep binary needed in the image.
        "lifecycle": {"preStop": {"sleep": {"seconds": shutdown_timings(spec, pool).pre_stop_seconds}}},
        "volumeMounts": mounts,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def node_affinity(spec: DeepSeekDeploymentSpec, region: RegionSpec, pool: CapacityPool) -> dict[str, Any]:
    """Required node affinity: the region, its zones, the GPU products and the pool's capacity type.

    All expressions sit in one nodeSelectorTerm, so they are ANDed. The capacity-type expression
    is only added when spot is enabled; otherwise any capacity will do.
    """
    expressions: list[dict[str, Any]] = [
        {"key": REGION_TOPOLOGY_KEY, "operator": "In", "values": [region.name]}
    ]
    if region.zones:
        expressions.append({"key": ZONE_TOPOLOGY_KEY, "operator": "In", "values": list(region.zones)})
    if spec.resources.gpu_products:
        expressions.append(
            {"key": GPU_PRODUCT_LABEL, "operator": "In", "values": list(spec.resources.gpu_products)}
        )
    if spec.spot.enabled:
        expressions.append(capacity_labels(spec.spot).node_selector_requirement(pool))
    return {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": expressions}]
        }
    }


def tolerations(spec: DeepSeekDeploymentSpec, pool: CapacityPool) -> list[dict[str, Any]]:
    """GPU nodes are commonly tainted nvidia.com/gpu; spot pods also tolerate the spot taints."""
    result: list[dict[str, Any]] = [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]
    if spec.spot.enabled and pool is CapacityPool.SPOT:
        result += [toleration.to_toleration() for toleration in capacity_labels(spec.spot).spot_tolerations]
    return result


def volumes(spec: DeepSeekDeploymentSpec) -> list[dict[str, Any]]:
    """The memory-backed shared memory volume, and the model PVC for source type PVC."""
    result: list[dict[str, Any]] = [
        {"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": spec.resources.shared_memory_size}}
    ]
    pvc = spec.model.source.pvc
    if spec.model.source.type is ModelSourceType.PVC and pvc is not None:
        result.append(
            {"name": MODEL_VOLUME, "persistentVolumeClaim": {"claimName": pvc.claim_name, "readOnly": True}}
        )
    return result


def termination_grace_period_seconds(
    spec: DeepSeekDeploymentSpec, pool: CapacityPool = CapacityPool.ON_DEMAND
) -> int:
    """preStop sleep + drain + exit margin: per the contract 10 + drainSeconds + 10 (`shutdown_timings`)."""
    return shutdown_timings(spec, pool).grace_seconds


def pod_template(
    name: str, spec: DeepSeekDeploymentSpec, region: RegionSpec, pool: CapacityPool
) -> dict[str, Any]:
    """The pod template of the Deployment of ``pool`` in ``region``."""
    pod_spec: dict[str, Any] = {
        "containers": [inference_container(spec, pool)],
        "terminationGracePeriodSeconds": termination_grace_period_seconds(spec, pool),
        "priorityClassName": PRIORITY_CLASS_NAMES[spec.priority_tier],
        "affinity": {"nodeAffinity": node_affinity(spec, region, pool)},
        "tolerations": tolerations(spec, pool),
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": ZONE_TOPOLOGY_KEY,
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": pool_selector(name, region.name, pool)},
            }
        ],
        "volumes": volumes(spec),
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        # The inference server needs no Kubernetes API access.
        "automountServiceAccountToken": False,
        # Service links inject <SERVICE>_PORT variables; a Service named e.g. "vllm" would set
        # VLLM_PORT, which vLLM reads as its own setting.
        "enableServiceLinks": False,
    }
    if region.node_selector:
        pod_spec["nodeSelector"] = dict(region.node_selector)
    if spec.image.pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": secret.name} for secret in spec.image.pull_secrets]
    return {
        "metadata": {
            "labels": pool_labels(name, region.name, pool),
            "annotations": {CONFIG_HASH_ANNOTATION: config_hash(spec)},
        },
        "spec": pod_spec,
    }
