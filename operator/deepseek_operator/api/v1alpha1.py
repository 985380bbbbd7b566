"""The ``DeepSeekDeployment`` custom resource, ``serving.deepseek-operator.io/v1alpha1``.

These frozen pydantic models are the single source of the API: the CustomResourceDefinition
(:mod:`deepseek_operator.crd`) is generated from them, descriptions become ``kubectl explain`` text and
defaults become schema defaults. Cross-field rules are written twice on purpose, with the same
message: as CEL (``x-kubernetes-validations``, enforced by the API server at admission) and as
pydantic validators (so the operator and the unit tests reject the same specs without a cluster).
Fields are snake_case in Python and camelCase on the wire (``populate_by_name`` accepts both).
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from deepseek_operator import __version__

GROUP = "serving.deepseek-operator.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "DeepSeekDeployment"
PLURAL = "deepseekdeployments"
SINGULAR = "deepseekdeployment"
SHORT_NAMES = ["dsd"]
CATEGORIES = ["deepseek"]

# The longest child name is the region Service "<name>-<region>" (a DNS-1035 label, at most 63
# characters): 40 + 1 + MAX_REGION_NAME_LENGTH = 61.
MAX_NAME_LENGTH = 40
MAX_REGION_NAME_LENGTH = 20
MAX_REGIONS = 8

DEFAULT_IMAGE_REPOSITORY = "ghcr.io/deepseek-operator/inference"

# The annotation a person sets to acknowledge the switches so far, once failover.maxSwitchesPerHour has
# stopped automatic switching: its value is status.failover.failoverCount.
FAILOVER_ACKNOWLEDGED_ANNOTATION = f"{GROUP}/failover-acknowledged"
DEFAULT_IMAGE_MODEL_PATH = "/opt/model"
PVC_MODEL_MOUNT_PATH = "/mnt/model"

# Patterns shared by the pydantic validation and the OpenAPI schema. Kept within the regex
# subset that Python, Rust (pydantic-core) and Go (the API server) agree on: no look-arounds.
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_1035_LABEL_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
LABEL_KEY_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
# Model names end up in PromQL label matchers and Prometheus labels: no quotes, spaces or braces.
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/:-]*$"
HUGGING_FACE_REPO_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$"
GIT_REVISION_PATTERN = r"^[A-Za-z0-9._/-]+$"
# Keys of Secret and ConfigMap data.
DATA_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"
IMAGE_REPOSITORY_PATTERN = r"^[a-z0-9]([a-z0-9._/:-]*[a-z0-9])?$"
IMAGE_TAG_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
IMAGE_DIGEST_PATTERN = r"^sha256:[a-f0-9]{64}$"
ABSOLUTE_PATH_PATTERN = r"^/[^\s]*$"
HTTP_URL_PATTERN = r"^https?://[^\s/?#]+[^\s]*$"
PROMETHEUS_DURATION_PATTERN = r"^([0-9]+(ms|s|m|h))+$"
PERCENT_PATTERN = r"^(100|[1-9]?[0-9])%$"
# resource.Quantity as the Kubernetes OpenAPI publishes it, without the leading sign: resources are >= 0.
QUANTITY_PATTERN = (
    r"^(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)


# --------------------------------------------------------------------------------------------
# CEL rules: one definition feeds the schema; the pydantic validators below reuse the messages.
# --------------------------------------------------------------------------------------------


def cel(rule: str, message: str, message_expression: str | None = None) -> dict[str, str]:
    """One ``x-kubernetes-validations`` entry.

    ``message`` is what a person reads; ``messageExpression`` (when given) adds the offending values
    and falls back to ``message`` if it cannot be evaluated.
    """
    entry = {"rule": rule, "message": message}
    if message_expression is not None:
        entry["messageExpression"] = message_expression
    return entry


def validations(*rules: dict[str, str]) -> dict[str, Any]:
    """``json_schema_extra`` carrying CEL rules (for a model's config or a ``Field``)."""
    return {"x-kubernetes-validations": list(rules)}


MSG_NAME_TOO_LONG = (
    f"metadata.name must be at most {MAX_NAME_LENGTH} characters: it prefixes the names of the "
    "Services the operator creates, which Kubernetes limits to 63 characters"
)
MSG_NAME_NOT_DNS_LABEL = (
    "metadata.name must start with a lowercase letter and contain only lowercase letters, digits "
    "and '-' (it is used as a Service name)"
)
MSG_HUGGING_FACE_REQUIRED = (
    "spec.model.source.huggingFace is required when spec.model.source.type is HuggingFace"
)
MSG_HUGGING_FACE_FORBIDDEN = (
    "spec.model.source.huggingFace must only be set when spec.model.source.type is HuggingFace"
)
MSG_PVC_REQUIRED = "spec.model.source.pvc is required when spec.model.source.type is PVC"
MSG_PVC_FORBIDDEN = "spec.model.source.pvc must only be set when spec.model.source.type is PVC"
MSG_PATH_FORBIDDEN = (
    "spec.model.source.path must only be set when spec.model.source.type is Image "
    f"(a PVC is mounted at {PVC_MODEL_MOUNT_PATH}: use pvc.subPath to pick a directory)"
)
MSG_SUB_PATH_RELATIVE = (
    "spec.model.source.pvc.subPath must be a relative path inside the volume, without '..' segments"
)
MSG_DIGEST_FORMAT = "spec.image.digest must look like sha256:<64 lowercase hex characters>"
MSG_ONE_ACTIVE_REGION = "spec.regions must have exactly one region with role Active"
MSG_MIN_ABOVE_MAX = "spec.autoscaling.minReplicas must not exceed spec.autoscaling.maxReplicas"
MSG_HPA_SCALE_TO_ZERO = (
    "spec.autoscaling.minReplicas 0 (scale to zero) needs provider keda: "
    "a HorizontalPodAutoscaler keeps at least 1 replica"
)
MSG_CUSTOM_CAPACITY_REQUIRED = "spec.spot.custom is required when spec.spot.provider is custom"
MSG_CUSTOM_CAPACITY_FORBIDDEN = (
    "spec.spot.custom must only be set when spec.spot.provider is custom "
    "(the other providers have built-in node labels)"
)
MSG_ROLLOUT_STUCK = (
    "spec.rollout.maxSurge and spec.rollout.maxUnavailable must not both be 0: "
    "a rolling update could then never replace a pod"
)
MSG_GPUS_NOT_MULTIPLE_OF_TP = (
    "spec.resources.gpusPerReplica must be a multiple of spec.engine.tensorParallelSize"
)
MSG_METRIC_SIGNALS_NEED_PROMETHEUS = (
    "spec.failover.signals ErrorRate, Latency and TimeToFirstToken need spec.monitoring.prometheusUrl "
    "(the Prometheus the failover controller queries)"
)
MSG_KEDA_NEEDS_PROMETHEUS = (
    "spec.autoscaling.provider keda needs spec.monitoring.prometheusUrl (the Prometheus that KEDA queries)"
)
MSG_PREDICTIVE_NEEDS_PROMETHEUS = (
    "spec.autoscaling.predictive.enabled needs spec.monitoring.prometheusUrl (the Prometheus whose "
    "request-rate history the operator forecasts from)"
)
MSG_PREDICTIVE_NEEDS_AUTOSCALING = (
    "spec.autoscaling.predictive.enabled needs spec.autoscaling.enabled: the forecast raises the "
    "autoscaler's floor"
)


def validate_object_name(name: str) -> str:
    """Check a DeepSeekDeployment's metadata.name as the CRD's root CEL rules do; return it.

    The API server enforces this at admission; the operator and tests use it to agree with it.
    """
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(
            f"metadata.name must be at most {MAX_NAME_LENGTH} characters (it has {len(name)}): it prefixes "
            "the names of the Services the operator creates, which Kubernetes limits to 63 characters"
        )
    if not re.fullmatch(DNS_1035_LABEL_PATTERN, name):
        raise ValueError(MSG_NAME_NOT_DNS_LABEL)
    return name


# --------------------------------------------------------------------------------------------
# Base model and reusable field types
# --------------------------------------------------------------------------------------------


class ApiModel(BaseModel):
    """Base of every API object: immutable, camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(
        frozen=True,
        populate_by_name=True,
        alias_generator=to_camel,
    )


def _quantity_from_number(value: object) -> object:
    """YAML users write ``cpu: 8``; Kubernetes quantities accept that, so do we (as the string "8")."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _check_int_or_percent(value: int | str) -> int | str:
    if isinstance(value, int):
        if value < 0:
            raise ValueError("must be a non-negative integer or a percentage such as '25%'")
    elif not re.fullmatch(PERCENT_PATTERN, value):
        raise ValueError("must be a non-negative integer or a percentage such as '25%'")
    return value


# A Kubernetes resource.Quantity ("8", "500m", "64Gi"); schema: int-or-string with the quantity pattern.
Quantity = Annotated[
    str,
    # The constraint must come before the validator, or pydantic leaves it out of the JSON schema.
    Field(pattern=QUANTITY_PATTERN, json_schema_extra={"x-kubernetes-int-or-string": True, "minimum": 0}),
    BeforeValidator(_quantity_from_number),
]

# An absolute number of pods or a percentage ("25%"), like a Deployment's maxSurge.
IntOrPercent = Annotated[
    int | str,
    AfterValidator(_check_int_or_percent),
    Field(
        json_schema_extra={
            "x-kubernetes-int-or-string": True,
            "pattern": PERCENT_PATTERN,
            "minimum": 0,
        }
    ),
]

LabelValue = Annotated[str, Field(max_length=63, pattern=LABEL_VALUE_PATTERN)]


# --------------------------------------------------------------------------------------------
# Enums
# --------------------------------------------------------------------------------------------


class ModelSourceType(StrEnum):
    IMAGE = "Image"
    HUGGING_FACE = "HuggingFace"
    PVC = "PVC"


class EngineName(StrEnum):
    VLLM = "vllm"
    SGLANG = "sglang"


class Quantization(StrEnum):
    BF16 = "bf16"
    FP16 = "fp16"
    FP8 = "fp8"
    INT8 = "int8"
    AWQ = "awq"
    GPTQ = "gptq"


class PullPolicy(StrEnum):
    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


class RegionRole(StrEnum):
    ACTIVE = "Active"
    STANDBY = "Standby"


class AutoscalingProvider(StrEnum):
    HPA = "hpa"
    KEDA = "keda"


class PredictiveMode(StrEnum):
    """ForecastOnly writes the forecast to status; ForecastAndScale also raises the autoscaler's floor."""

    FORECAST_ONLY = "ForecastOnly"
    FORECAST_AND_SCALE = "ForecastAndScale"


class FailoverSignal(StrEnum):
    """What can make a region's health check fail (``failover.signals``)."""

    NODES_NOT_READY = "NodesNotReady"
    PODS_NOT_READY = "PodsNotReady"
    ENGINE_UNHEALTHY = "EngineUnhealthy"
    ERROR_RATE = "ErrorRate"
    LATENCY = "Latency"
    TIME_TO_FIRST_TOKEN = "TimeToFirstToken"  # noqa: S105 (a signal name, not a secret)


# Signals read from Prometheus (the others come from the API server's view and from HTTP probes).
METRIC_SIGNALS = (FailoverSignal.ERROR_RATE, FailoverSignal.LATENCY, FailoverSignal.TIME_TO_FIRST_TOKEN)


class FailbackMode(StrEnum):
    AUTO = "Auto"
    MANUAL = "Manual"


class CapacityProvider(StrEnum):
    KARPENTER = "karpenter"
    GKE = "gke"
    EKS = "eks"
    AKS = "aks"
    CUSTOM = "custom"


class CapacityPool(StrEnum):
    """The two Deployments a region runs; also the ``serving.deepseek-operator.io/pool`` label."""

    ON_DEMAND = "on-demand"
    SPOT = "spot"


class TaintEffect(StrEnum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


class ServiceType(StrEnum):
    CLUSTER_IP = "ClusterIP"
    NODE_PORT = "NodePort"
    LOAD_BALANCER = "LoadBalancer"


class PriorityTier(StrEnum):
    P0 = "P0"
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class SpotPhase(StrEnum):
    """Where a region's spot capacity stands (``status.spot.regions[].phase``)."""

    STEADY = "Steady"
    SHORTAGE = "Shortage"
    FALLEN_BACK = "FallenBack"
    RECOVERING = "Recovering"
    SUPPRESSED = "Suppressed"
    ON_DEMAND_SHORTAGE = "OnDemandShortage"
    SPILLED = "Spilled"
    FALLBACK_DISABLED = "FallbackDisabled"


class ConditionType(StrEnum):
    """Condition types the operator sets (``Condition.type`` stays a free string, as upstream)."""

    READY = "Ready"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"
    # Written by the failover controller (its own field manager).
    FAILOVER_READY = "FailoverReady"
    SIGNALS_AVAILABLE = "SignalsAvailable"
    # Written by the spot controller (its own field manager), only while spot is enabled.
    SPOT_AVAILABLE = "SpotAvailable"
    FALLBACK_ACTIVE = "FallbackActive"


class RegionHealthState(StrEnum):
    """A region's health as the failover controller judges it from consecutive checks."""

    HEALTHY = "Healthy"
    UNHEALTHY = "Unhealthy"
    UNKNOWN = "Unknown"


class FailoverPhase(StrEnum):
    """Where the failover controller stands (``status.failover.phase``)."""

    DISABLED = "Disabled"
    PENDING = "Pending"
    HEALTHY = "Healthy"
    DEGRADED = "Degraded"
    FAILING_OVER = "FailingOver"
    FAILED_OVER = "FailedOver"
    FAILING_BACK = "FailingBack"
    NO_HEALTHY_TARGET = "NoHealthyTarget"
    WAITING_FOR_USER = "WaitingForUser"


# --------------------------------------------------------------------------------------------
# spec.model
# --------------------------------------------------------------------------------------------


class SecretKeyReference(ApiModel):
    """A key of a Secret in the DeepSeekDeployment's namespace."""

    name: str = Field(
        min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN, description="Name of the Secret."
    )
    key: str = Field(
        default="HF_TOKEN",
        min_length=1,
        max_length=253,
        pattern=DATA_KEY_PATTERN,
        description="Key in the Secret whose value is the token.",
    )


class HuggingFaceSource(ApiModel):
    """Download the weights from the Hugging Face Hub when the pod starts."""

    repo_id: str = Field(
        min_length=1,
        max_length=200,
        pattern=HUGGING_FACE_REPO_PATTERN,
        description="Repository id on the Hub, e.g. deepseek-ai/DeepSeek-R1-Distill-Qwen-7B.",
    )
    revision: str = Field(
        default="main",
        min_length=1,
        max_length=255,
        pattern=GIT_REVISION_PATTERN,
        description="Branch, tag or commit of the repository. Pin a commit for reproducible rollouts.",
    )
    token_secret_ref: SecretKeyReference | None = Field(
        default=None,
        description="Secret key holding a Hub token (passed as HF_TOKEN); needed for gated or private "
        "models.",
    )


class PVCSource(ApiModel):
    """Weights on a PersistentVolumeClaim, mounted read-only at /mnt/model."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!has(self.subPath) || (!self.subPath.startsWith('/')"
                " && !self.subPath.matches('(^|/)[.][.](/|$)'))",
                MSG_SUB_PATH_RELATIVE,
            )
        )
    )

    claim_name: str = Field(
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description="Name of the PersistentVolumeClaim in the DeepSeekDeployment's namespace. "
        "It must be readable from every node of every region (e.g. ReadOnlyMany).",
    )
    sub_path: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="Directory inside the volume that holds the weights; the volume root when unset.",
    )

    @model_validator(mode="after")
    def _sub_path_is_relative(self) -> Self:
        if self.sub_path is not None and (self.sub_path.startswith("/") or ".." in self.sub_path.split("/")):
            raise ValueError(MSG_SUB_PATH_RELATIVE)
        return self


class ModelSource(ApiModel):
    """Where the weights come from. Set the member that matches ``type`` and no other."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel("self.type != 'HuggingFace' || has(self.huggingFace)", MSG_HUGGING_FACE_REQUIRED),
            cel("self.type == 'HuggingFace' || !has(self.huggingFace)", MSG_HUGGING_FACE_FORBIDDEN),
            cel("self.type != 'PVC' || has(self.pvc)", MSG_PVC_REQUIRED),
            cel("self.type == 'PVC' || !has(self.pvc)", MSG_PVC_FORBIDDEN),
            cel("self.type == 'Image' || !has(self.path)", MSG_PATH_FORBIDDEN),
        )
    )

    type: ModelSourceType = Field(
        default=ModelSourceType.IMAGE,
        description="Image: the weights are baked into the image; HuggingFace: downloaded from the Hub "
        "at start-up; PVC: read from a PersistentVolumeClaim.",
    )
    path: str | None = Field(
        default=None,
        max_length=1024,
        pattern=ABSOLUTE_PATH_PATTERN,
        description=f"For type Image: directory in the image holding the weights "
        f"(default {DEFAULT_IMAGE_MODEL_PATH}).",
    )
    hugging_face: HuggingFaceSource | None = Field(
        default=None, description="For type HuggingFace: the repository to download."
    )
    pvc: PVCSource | None = Field(default=None, description="For type PVC: the claim holding the weights.")

    @model_validator(mode="after")
    def _member_matches_type(self) -> Self:
        if self.type is ModelSourceType.HUGGING_FACE and self.hugging_face is None:
            raise ValueError(MSG_HUGGING_FACE_REQUIRED)
        if self.type is not ModelSourceType.HUGGING_FACE and self.hugging_face is not None:
            raise ValueError(MSG_HUGGING_FACE_FORBIDDEN)
        if self.type is ModelSourceType.PVC and self.pvc is None:
            raise ValueError(MSG_PVC_REQUIRED)
        if self.type is not ModelSourceType.PVC and self.pvc is not None:
            raise ValueError(MSG_PVC_FORBIDDEN)
        if self.type is not ModelSourceType.IMAGE and self.path is not None:
            raise ValueError(MSG_PATH_FORBIDDEN)
        return self


class ModelSpec(ApiModel):
    """The model to serve."""

    name: str = Field(
        min_length=1,
        max_length=200,
        pattern=MODEL_NAME_PATTERN,
        description="Model name, e.g. deepseek-ai/DeepSeek-R1-Distill-Qwen-7B.",
    )
    served_model_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=MODEL_NAME_PATTERN,
        description="Name clients send in the OpenAI API 'model' field and that metrics carry in "
        "their model_name label. Defaults to name.",
    )
    source: ModelSource = Field(
        default_factory=ModelSource,
        description="Where the weights come from (default: baked into the image).",
    )


# --------------------------------------------------------------------------------------------
# spec.engine, spec.image, spec.resources
# --------------------------------------------------------------------------------------------


class EngineSpec(ApiModel):
    """The inference engine and its tuning."""

    name: EngineName = Field(default=EngineName.VLLM, description="Inference engine: vllm or sglang.")
    tensor_parallel_size: int = Field(
        default=1, ge=1, le=64, description="Number of GPUs each replica shards the model across."
    )
    max_batch_size: int = Field(
        default=256,
        ge=1,
        description="Maximum number of sequences a replica processes concurrently; requests beyond "
        "it wait in the queue that autoscaling watches.",
    )
    max_model_length: int | None = Field(
        default=None, ge=1, description="Context length in tokens. Defaults to the model's own."
    )
    quantization: Quantization = Field(
        default=Quantization.BF16, description="Weight precision or quantization scheme."
    )
    gpu_memory_utilization_percent: int = Field(
        default=90,
        ge=10,
        le=99,
        description="Percentage of each GPU's memory the engine may use (weights plus KV cache).",
    )
    extra_args: tuple[str, ...] = Field(
        default=(),
        description="Extra command-line arguments passed to the engine as is, e.g. --enable-prefix-caching.",
    )


class LocalObjectReference(ApiModel):
    """A reference to an object in the same namespace."""

    name: str = Field(
        min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN, description="Name of the object."
    )


class ImageSpec(ApiModel):
    """The inference container image (the project's launcher for vLLM and SGLang)."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(f"!has(self.digest) || self.digest.matches('{IMAGE_DIGEST_PATTERN}')", MSG_DIGEST_FORMAT)
        )
    )

    repository: str = Field(
        default=DEFAULT_IMAGE_REPOSITORY,
        min_length=1,
        max_length=255,
        pattern=IMAGE_REPOSITORY_PATTERN,
        description="Image repository, including the registry.",
    )
    tag: str = Field(
        default=__version__,
        pattern=IMAGE_TAG_PATTERN,
        description="Image tag. Defaults to the operator's version. Ignored when digest is set.",
    )
    digest: str | None = Field(
        default=None,
        max_length=71,
        description="Image digest (sha256:...). When set the image is pulled as repository@digest.",
    )
    pull_policy: PullPolicy = Field(default=PullPolicy.IF_NOT_PRESENT, description="Image pull policy.")
    pull_secrets: tuple[LocalObjectReference, ...] = Field(
        default=(), max_length=16, description="Secrets used to pull the image from a private registry."
    )

    @model_validator(mode="after")
    def _digest_format(self) -> Self:
        if self.digest is not None and not re.fullmatch(IMAGE_DIGEST_PATTERN, self.digest):
            raise ValueError(MSG_DIGEST_FORMAT)
        return self


class ResourcesSpec(ApiModel):
    """Compute resources of one replica (one pod)."""

    gpus_per_replica: int = Field(
        default=1,
        ge=1,
        le=16,
        description="nvidia.com/gpu per pod; a multiple of engine.tensorParallelSize.",
    )
    gpu_products: tuple[LabelValue, ...] = Field(
        default=(),
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "set"},
        description="Acceptable values of the nvidia.com/gpu.product node label, e.g. "
        "NVIDIA-H100-80GB-HBM3. Empty accepts any GPU.",
    )
    cpu: Quantity = Field(default="8", description="CPU request of the pod.")
    memory: Quantity = Field(
        default="64Gi",
        description="Memory request and limit of the pod. The shared memory volume counts against it.",
    )
    shared_memory_size: Quantity = Field(
        default="16Gi",
        description="Size of the in-memory /dev/shm volume (NCCL and the engine's workers use it).",
    )


# --------------------------------------------------------------------------------------------
# spec.regions
# --------------------------------------------------------------------------------------------


class RegionSpec(ApiModel):
    """A region the model may run in; nodes are matched on topology.kubernetes.io/region."""

    name: str = Field(
        min_length=1,
        max_length=MAX_REGION_NAME_LENGTH,
        pattern=DNS_LABEL_PATTERN,
        description="Value of the topology.kubernetes.io/region node label, e.g. us-east-1. "
        "Also part of the child object names.",
    )
    role: RegionRole = Field(
        description="Active: the home region: it takes the traffic (the front Service selects its pods) "
        "and runs spec.replicas replicas, unless the failover controller has moved the traffic to a "
        "standby (status.activeRegion says where it is). Standby: keeps failover.standbyWarmReplicas warm "
        "replicas and takes over when the Active region fails. Making another region Active moves the "
        "traffic there at once."
    )
    zones: tuple[LabelValue, ...] = Field(
        default=(),
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "set"},
        description="Restrict pods to these topology.kubernetes.io/zone values. "
        "Empty: any zone of the region.",
    )
    node_selector: dict[str, Annotated[str, Field(max_length=63)]] = Field(
        default_factory=dict,
        max_length=16,
        description="Extra node labels the region's pods require (added to the pod nodeSelector).",
    )


def _count_active(regions: tuple[RegionSpec, ...]) -> int:
    return sum(1 for region in regions if region.role is RegionRole.ACTIVE)


# --------------------------------------------------------------------------------------------
# spec.autoscaling
# --------------------------------------------------------------------------------------------


class ScaleUpPolicy(ApiModel):
    """How fast replicas are added."""

    stabilization_window_seconds: int = Field(
        default=0, ge=0, le=3600, description="Look-back window before scaling up; 0 reacts at once."
    )
    max_pods_per_period: int = Field(default=2, ge=1, description="At most this many pods added per period.")
    period_seconds: int = Field(default=60, ge=1, le=1800, description="Length of the period.")


class ScaleDownPolicy(ApiModel):
    """How fast replicas are removed (slow by default: a GPU replica takes minutes to come back)."""

    stabilization_window_seconds: int = Field(
        default=300,
        ge=0,
        le=3600,
        description="The highest recommendation of this window is used, to avoid flapping.",
    )
    max_pods_per_period: int = Field(
        default=1, ge=1, description="At most this many pods removed per period."
    )
    period_seconds: int = Field(default=120, ge=1, le=1800, description="Length of the period.")


class PredictiveSpec(ApiModel):
    """Predictive pre-scaling: forecast the request rate from Prometheus history and raise the
    autoscaler's floor (HPA minReplicas or the ScaledObject's minReplicaCount) before the rate arrives.

    The forecast is a seasonal one (the same time one week earlier when the history holds it, else one
    day earlier, scaled to the current level); the reactive metrics keep scaling above the floor.
    """

    enabled: bool = Field(default=False, description="Forecast this deployment's request rate.")
    mode: PredictiveMode = Field(
        default=PredictiveMode.FORECAST_ONLY,
        description="ForecastOnly: the forecast and the floor it would set go to status only. "
        "ForecastAndScale: the floor is also applied to the autoscaler.",
    )
    horizon_minutes: int = Field(
        default=15,
        ge=1,
        le=180,
        description="How far ahead to forecast: the floor covers the highest forecast rate between now "
        "and now + horizon. Make it longer than a replica takes to start and load the model.",
    )
    history_days: int = Field(
        default=7,
        ge=2,
        le=28,
        description="How much request-rate history to read from Prometheus. With 7 days or more the "
        "weekly pattern is used (the same time one week earlier); with less, the daily one.",
    )
    requests_per_second_per_replica: Quantity | None = Field(
        default=None,
        description="Requests per second one replica serves at the queue-depth target, e.g. 2.5 or "
        "2500m. Unset: learned from the history (the rate per replica while the queue was at or above "
        "autoscaling.queueDepthTargetPerReplica).",
    )
    max_forecast_error_percent: int = Field(
        default=30,
        ge=1,
        le=1000,
        description="No floor while the forecast's error (mean absolute percentage error of its "
        "horizon-ahead forecasts over the most recent day) is above this.",
    )


class AutoscalingSpec(ApiModel):
    """Queue-depth based autoscaling of the active region (writes spec.replicas through /scale)."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.minReplicas <= self.maxReplicas",
                MSG_MIN_ABOVE_MAX,
                "'spec.autoscaling.minReplicas (%d) must not exceed spec.autoscaling.maxReplicas (%d)'"
                ".format([self.minReplicas, self.maxReplicas])",
            ),
            cel("!self.enabled || self.provider != 'hpa' || self.minReplicas >= 1", MSG_HPA_SCALE_TO_ZERO),
        )
    )

    enabled: bool = Field(default=False, description="Create an autoscaler for this deployment.")
    provider: AutoscalingProvider = Field(
        default=AutoscalingProvider.HPA,
        description="hpa: a HorizontalPodAutoscaler on custom metrics (prometheus-adapter); "
        "keda: a KEDA ScaledObject querying monitoring.prometheusUrl.",
    )
    min_replicas: int = Field(
        default=1, ge=0, description="Lower bound of spec.replicas; 0 (scale to zero) needs keda."
    )
    max_replicas: int = Field(default=4, ge=1, description="Upper bound of spec.replicas.")
    queue_depth_target_per_replica: int = Field(
        default=4, ge=1, description="Target number of waiting requests per replica."
    )
    p99_latency_target_milliseconds: int | None = Field(
        default=None,
        ge=1,
        description="Also scale up when the p99 end-to-end request latency exceeds this target.",
    )
    scale_up: ScaleUpPolicy = Field(default_factory=ScaleUpPolicy, description="Scale-up behavior.")
    scale_down: ScaleDownPolicy = Field(default_factory=ScaleDownPolicy, description="Scale-down behavior.")
    predictive: PredictiveSpec = Field(
        default_factory=PredictiveSpec,
        description="Predictive pre-scaling: raise the floor before a forecast rise of the request rate.",
    )

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"spec.autoscaling.minReplicas ({self.min_replicas}) must not exceed "
                f"spec.autoscaling.maxReplicas ({self.max_replicas})"
            )
        if self.enabled and self.provider is AutoscalingProvider.HPA and self.min_replicas < 1:
            raise ValueError(MSG_HPA_SCALE_TO_ZERO)
        return self


# --------------------------------------------------------------------------------------------
# spec.failover
# --------------------------------------------------------------------------------------------


class FailoverQueries(ApiModel):
    """PromQL templates that replace the built-in ones, for a Prometheus that names or labels series
    differently (jinja2, sandboxed; an unknown variable is an error, shown in the SignalsAvailable
    condition). Variables: window (failover.metricsWindow), by (the grouping labels), selector (matches
    every DeepSeekDeployment's series), deployment_label, region_label, namespace, name, model, engine.
    A query must return one sample per namespace, serving_deepseek_operator_io_deployment and
    serving_deepseek_operator_io_region label; one query serves every DeepSeekDeployment that renders it
    to the same text, so a template using namespace or name costs one query per deployment."""

    error_rate: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description="Ratio (0..1) of failed requests. Built in: vLLM's http_requests_total 5xx over all "
        "/v1 requests; SGLang's sglang:num_aborted_requests_total over sglang:num_requests_total.",
    )
    latency: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description="p99 end-to-end request latency in seconds. Built in: histogram_quantile(0.99) of "
        "vllm:e2e_request_latency_seconds (sglang:e2e_request_latency_seconds).",
    )
    time_to_first_token: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description="p99 time to first token in seconds. Built in: histogram_quantile(0.99) of "
        "vllm:time_to_first_token_seconds (sglang:time_to_first_token_seconds).",
    )


class FailoverSpec(ApiModel):
    """Region failover: health checks of every region, and moving the traffic to a healthy standby.

    Every probeIntervalSeconds each region is checked with the chosen signals. The region taking the
    traffic is failed over after failureThreshold consecutive failed checks to the first healthy standby
    (spec order), make before break: the standby is raised to spec.replicas first. Status shows every
    step (status.failover, the FailoverReady and SignalsAvailable conditions, events)."""

    enabled: bool = Field(
        default=True,
        description="Check the regions and fail over, and keep standbyWarmReplicas warm in each standby "
        "region. false: standby regions run no replicas and the traffic stays in the spec's Active region. "
        "A deployment with one region has nowhere to fail over to (status says so).",
    )
    probe_interval_seconds: int = Field(
        default=10,
        ge=1,
        le=300,
        description="How often every region is checked.",
    )
    failure_threshold: int = Field(
        default=3,
        ge=1,
        le=20,
        description="Consecutive failed checks after which a healthy region counts as unhealthy; the "
        "region taking the traffic is then failed over.",
    )
    success_threshold: int = Field(
        default=6,
        ge=1,
        le=60,
        description="Consecutive passed checks after which a region counts as healthy (again): before "
        "that it is no failover target and no failback goes to it.",
    )
    signals: tuple[FailoverSignal, ...] = Field(
        default=(
            FailoverSignal.NODES_NOT_READY,
            FailoverSignal.PODS_NOT_READY,
            FailoverSignal.ENGINE_UNHEALTHY,
        ),
        min_length=1,
        max_length=6,
        json_schema_extra={"x-kubernetes-list-type": "set"},
        description="What fails a check (any one of them does). NodesNotReady: fewer than minReadyReplicas "
        "of the region's pods are on Ready nodes (nodes NotReady or gone). PodsNotReady: fewer than "
        "minReadyReplicas ready pods. EngineUnhealthy: fewer than minReadyReplicas pods answer GET /health "
        "with 2xx in time (a dead engine behind a live process answers 503); the region taking the traffic "
        "is probed every check (minReadyReplicas pods in turn, all of them once one fails), a standby only "
        "when it is about to take the traffic (between, the kubelet's readiness probe watches it through "
        "PodsNotReady). ErrorRate: more than errorRatePercent of requests fail. Latency: p99 end-to-end "
        "latency above p99LatencyMilliseconds. TimeToFirstToken: p99 time to first token above "
        "p99TimeToFirstTokenMilliseconds. The last three query monitoring.prometheusUrl over metricsWindow. "
        "A signal that cannot be evaluated (Prometheus down, no sample, unknown metric) fails nothing and "
        "passes nothing: the SignalsAvailable condition says which and why.",
    )
    min_ready_replicas: int = Field(
        default=1,
        ge=1,
        description="Replicas a region needs to serve (at most what it is asked to run): the threshold "
        "of NodesNotReady, PodsNotReady and EngineUnhealthy.",
    )
    error_rate_percent: int = Field(
        default=5, ge=1, le=100, description="ErrorRate fails above this percentage of failed requests."
    )
    p99_latency_milliseconds: int = Field(
        default=60000, ge=1, description="Latency fails when the p99 end-to-end latency is above this."
    )
    p99_time_to_first_token_milliseconds: int = Field(
        default=10000,
        ge=1,
        description="TimeToFirstToken fails when the p99 time to first token is above this.",
    )
    metrics_window: str = Field(
        default="1m",
        pattern=PROMETHEUS_DURATION_PATTERN,
        description="Range of the rate() under the metric signals, e.g. 1m; at least two scrape intervals.",
    )
    queries: FailoverQueries = Field(
        default_factory=FailoverQueries,
        description="PromQL templates replacing the built-in ones, per metric signal.",
    )
    standby_warm_replicas: int = Field(
        default=1,
        ge=0,
        description="Replicas kept running in each standby region, so that a standby made Active serves "
        "without waiting for a model to load.",
    )
    failback: FailbackMode = Field(
        default=FailbackMode.MANUAL,
        description="Auto: return to the spec's Active region once it has been healthy for "
        "successThreshold checks and minActiveSeconds have passed. Manual: stay in the region failed over "
        "to until a person changes the spec: make that region Active in spec.regions (adopt it), or set "
        "failback to Auto (return once the Active region is healthy).",
    )
    min_active_seconds: int = Field(
        default=300,
        ge=0,
        le=86400,
        description="After a switch, no further switch (failover or failback) for this many seconds.",
    )
    max_switches_per_hour: int = Field(
        default=3,
        ge=1,
        le=60,
        description="Once this many switches happened within an hour, automatic switching stops "
        "(status.failover.phase WaitingForUser) until a person acknowledges them: kubectl annotate dsd "
        f"<name> {FAILOVER_ACKNOWLEDGED_ANNOTATION}=<status.failover.failoverCount> --overwrite.",
    )
    switch_timeout_seconds: int = Field(
        default=60,
        ge=0,
        le=3600,
        description="Make before break: the traffic moves once the target region has spec.replicas ready "
        "replicas, at once when the failing region has no replica left that can serve, and otherwise "
        "after this many seconds if the target has at least one ready replica.",
    )


# --------------------------------------------------------------------------------------------
# spec.spot
# --------------------------------------------------------------------------------------------


class SpotTaint(ApiModel):
    """The taint spot nodes carry; spot pods tolerate it."""

    key: str = Field(min_length=1, max_length=316, pattern=LABEL_KEY_PATTERN, description="Taint key.")
    value: str | None = Field(
        default=None,
        max_length=63,
        pattern=LABEL_VALUE_PATTERN,
        description="Taint value; when unset, any value is tolerated.",
    )
    effect: TaintEffect = Field(default=TaintEffect.NO_SCHEDULE, description="Taint effect.")


class CustomCapacityLabels(ApiModel):
    """Node labels (and taint) that tell spot nodes from on-demand nodes, for provider custom."""

    label_key: str = Field(
        min_length=1, max_length=316, pattern=LABEL_KEY_PATTERN, description="Node label key."
    )
    spot_value: LabelValue = Field(description="Label value on spot nodes.")
    on_demand_value: LabelValue | None = Field(
        default=None,
        description="Label value on on-demand nodes. Unset: on-demand nodes do not carry the label.",
    )
    spot_taint: SpotTaint | None = Field(default=None, description="Taint on spot nodes, if any.")


class SpotCooldown(ApiModel):
    """Flap damping: a region whose spot nodes are interrupted again and again stops using spot."""

    interruptions: int = Field(
        default=3,
        ge=1,
        le=100,
        description="Interruptions of the region's spot replicas within windowSeconds that stop the use "
        "of spot there (a node that goes away counts once).",
    )
    window_seconds: int = Field(
        default=3600, ge=60, le=86400, description="The window in which interruptions are counted."
    )
    seconds: int = Field(
        default=600,
        ge=10,
        le=86400,
        description="How long the first stop lasts: the region's spot replicas run on on-demand nodes "
        "meanwhile. Each further stop before the region was steady for windowSeconds doubles it.",
    )
    max_seconds: int = Field(
        default=7200, ge=10, le=604800, description="The longest a stop may last, however often it doubles."
    )
    group_seconds: int = Field(
        default=60,
        ge=0,
        le=3600,
        description="Notices less than this many seconds apart count as one interruption: a provider "
        "reclaims a zone's or an instance type's spot capacity together, and one zone going at once is "
        "not spot flapping.",
    )


class SpotFallback(ApiModel):
    """On-demand fallback: on-demand replicas run in place of spot replicas that cannot run, and move back
    to spot, one by one, once spot has been ready again for a quiet period."""

    enabled: bool = Field(
        default=True,
        description="Run on-demand replicas in place of spot replicas that are interrupted (at once, on "
        "the provider's notice) or stay Pending for capacity (after pendingTimeoutSeconds). The spot "
        "Deployment keeps its replicas: its Pending pods cost nothing and show when spot capacity returns.",
    )
    pending_timeout_seconds: int = Field(
        default=300,
        # At least kube-scheduler's longest pod back-off (podMaxBackoffSeconds, 10 s by default): a
        # Pending pod gets another scheduling attempt after capacity frees up before it counts as short.
        ge=10,
        le=3600,
        description="How long a pod may stay Pending for capacity (PodScheduled=False, Unschedulable) "
        "before its replica falls back to the other capacity type. At least 10 s, kube-scheduler's "
        "longest retry back-off; allow for your node autoscaler to bring up a node (minutes for GPUs).",
    )
    max_replicas: int | None = Field(
        default=None,
        ge=0,
        description="At most this many replicas per region run on the other capacity type (on-demand in "
        "place of spot, or spot in place of on-demand). Unset: every replica that is missing.",
    )
    quiet_period_seconds: int = Field(
        default=600,
        ge=0,
        le=86400,
        description="Move back only after the replicas on their own capacity type have been ready at "
        "their target, without an interruption, for this long.",
    )
    step_seconds: int = Field(
        default=120,
        ge=1,
        le=3600,
        description="Then remove one replica from the other capacity type per this many seconds.",
    )
    spill_to_spot: bool = Field(
        default=False,
        description="The reverse, opt-in: when on-demand pods stay Pending for capacity, run the missing "
        "on-demand replicas on spot until on-demand capacity returns (they can then be interrupted).",
    )
    cooldown: SpotCooldown = Field(
        default_factory=SpotCooldown, description="Stop using spot in a region that is interrupted often."
    )


class SpotSpec(ApiModel):
    """Running part of each region's replicas on spot (preemptible) capacity."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel("self.provider != 'custom' || has(self.custom)", MSG_CUSTOM_CAPACITY_REQUIRED),
            cel("self.provider == 'custom' || !has(self.custom)", MSG_CUSTOM_CAPACITY_FORBIDDEN),
        )
    )

    enabled: bool = Field(default=False, description="Split each region into on-demand and spot pools.")
    on_demand_base: int = Field(
        default=1, ge=0, description="Replicas per region that always run on on-demand capacity."
    )
    spot_percentage: int = Field(
        default=50,
        ge=0,
        le=100,
        description="Percentage of the replicas above onDemandBase that run on spot "
        "(the on-demand share is rounded up).",
    )
    provider: CapacityProvider = Field(
        default=CapacityProvider.KARPENTER,
        description="Which node labels mark spot capacity and which taints announce an interruption: "
        "karpenter, gke, eks, aks presets, or custom.",
    )
    custom: CustomCapacityLabels | None = Field(
        default=None, description="Spot and on-demand node labels, for provider custom only."
    )
    spot_taints: tuple[SpotTaint, ...] | None = Field(
        default=None,
        max_length=8,
        description="Taints your spot nodes carry, which spot pods tolerate. Unset: the provider's "
        "(karpenter: karpenter.sh/capacity-type=spot:NoSchedule, a common convention that Karpenter "
        "itself does not apply, so set the taint of your NodePool here; gke and aks: the taint they put "
        "on spot nodes; eks: none; custom: custom.spotTaint). An empty list tolerates none.",
    )
    termination_grace_period_seconds: int | None = Field(
        default=None,
        ge=3,
        le=3600,
        description="Grace period of spot pods (preStop sleep, drain and exit margin fit in it). Unset: "
        "what the provider's interruption notice leaves (karpenter and eks: 90 s of AWS's 2 minutes; "
        "gke: 15 s, what GKE's graceful node shutdown gives ordinary pods; aks: 25 s of about 30 s), "
        "or the on-demand pods' when that is shorter.",
    )
    fallback: SpotFallback = Field(
        default_factory=SpotFallback,
        description="On-demand fallback for spot replicas that are interrupted or cannot be scheduled, "
        "and the opt-in spill of on-demand replicas to spot.",
    )

    @model_validator(mode="after")
    def _custom_iff_custom_provider(self) -> Self:
        if self.provider is CapacityProvider.CUSTOM and self.custom is None:
            raise ValueError(MSG_CUSTOM_CAPACITY_REQUIRED)
        if self.provider is not CapacityProvider.CUSTOM and self.custom is not None:
            raise ValueError(MSG_CUSTOM_CAPACITY_FORBIDDEN)
        return self


# --------------------------------------------------------------------------------------------
# spec.service, spec.monitoring, spec.rollout
# --------------------------------------------------------------------------------------------


class ServiceSpec(ApiModel):
    """The Services in front of the pods."""

    port: int = Field(default=8080, ge=1, le=65535, description="Service port (the pods listen on 8080).")
    type: ServiceType = Field(
        default=ServiceType.CLUSTER_IP,
        description="Type of the front Service (region Services are always ClusterIP).",
    )


class ServiceMonitorSpec(ApiModel):
    """A prometheus-operator ServiceMonitor scraping the pods' /metrics."""

    enabled: bool = Field(default=False, description="Create a ServiceMonitor.")
    interval: str = Field(
        default="15s", pattern=PROMETHEUS_DURATION_PATTERN, description="Scrape interval, e.g. 15s."
    )


class PrometheusRuleSpec(ApiModel):
    """A prometheus-operator PrometheusRule with alerts for this deployment."""

    enabled: bool = Field(default=False, description="Create a PrometheusRule.")


class MonitoringSpec(ApiModel):
    """Metrics and alerts."""

    prometheus_url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=HTTP_URL_PATTERN,
        description="Prometheus base URL (http or https) that the KEDA ScaledObject queries "
        "(autoscaling.provider keda), the failover controller queries for its ErrorRate, Latency and "
        "TimeToFirstToken signals, and the operator reads the request-rate history from "
        "(autoscaling.predictive).",
    )
    service_monitor: ServiceMonitorSpec = Field(
        default_factory=ServiceMonitorSpec, description="ServiceMonitor settings."
    )
    prometheus_rule: PrometheusRuleSpec = Field(
        default_factory=PrometheusRuleSpec, description="PrometheusRule settings."
    )


class RolloutSpec(ApiModel):
    """How pods are replaced and drained."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "(type(self.maxSurge) == int ? self.maxSurge > 0 : self.maxSurge != '0%')"
                " || (type(self.maxUnavailable) == int ? self.maxUnavailable > 0"
                " : self.maxUnavailable != '0%')",
                MSG_ROLLOUT_STUCK,
            )
        )
    )

    max_surge: IntOrPercent = Field(
        default="25%", description="Extra pods allowed during a rolling update (number or percentage)."
    )
    max_unavailable: IntOrPercent = Field(
        default=0,
        description="Pods that may be unavailable during a rolling update (number or percentage). "
        "0 keeps serving capacity while new pods load the model.",
    )
    drain_seconds: int = Field(
        default=120,
        ge=0,
        le=3600,
        description="On shutdown, how long running requests may take to finish.",
    )

    @model_validator(mode="after")
    def _can_make_progress(self) -> Self:
        if self.max_surge in (0, "0%") and self.max_unavailable in (0, "0%"):
            raise ValueError(MSG_ROLLOUT_STUCK)
        return self


# --------------------------------------------------------------------------------------------
# spec
# --------------------------------------------------------------------------------------------


class DeepSeekDeploymentSpec(ApiModel):
    """Desired state of a DeepSeek model deployment across regions."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.resources.gpusPerReplica % self.engine.tensorParallelSize == 0",
                MSG_GPUS_NOT_MULTIPLE_OF_TP,
                "'spec.resources.gpusPerReplica (%d) must be a multiple of "
                "spec.engine.tensorParallelSize (%d)'"
                ".format([self.resources.gpusPerReplica, self.engine.tensorParallelSize])",
            ),
            cel(
                "!self.failover.signals.exists(s, s in ['ErrorRate', 'Latency', 'TimeToFirstToken'])"
                " || has(self.monitoring.prometheusUrl)",
                MSG_METRIC_SIGNALS_NEED_PROMETHEUS,
            ),
            cel(
                "!self.autoscaling.enabled || self.autoscaling.provider != 'keda'"
                " || has(self.monitoring.prometheusUrl)",
                MSG_KEDA_NEEDS_PROMETHEUS,
            ),
            cel(
                "!has(self.autoscaling.predictive) || !self.autoscaling.predictive.enabled"
                " || has(self.monitoring.prometheusUrl)",
                MSG_PREDICTIVE_NEEDS_PROMETHEUS,
            ),
            cel(
                "!has(self.autoscaling.predictive) || !self.autoscaling.predictive.enabled"
                " || self.autoscaling.enabled",
                MSG_PREDICTIVE_NEEDS_AUTOSCALING,
            ),
        )
    )

    model: ModelSpec = Field(description="The model to serve.")
    engine: EngineSpec = Field(default_factory=EngineSpec, description="Inference engine settings.")
    image: ImageSpec = Field(default_factory=ImageSpec, description="Inference container image.")
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec, description="Resources of each replica.")
    regions: tuple[RegionSpec, ...] = Field(
        min_length=1,
        max_length=MAX_REGIONS,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            **validations(
                cel(
                    "self.filter(r, r.role == 'Active').size() == 1",
                    MSG_ONE_ACTIVE_REGION,
                    f"'{MSG_ONE_ACTIVE_REGION}; found %d'"
                    ".format([self.filter(r, r.role == 'Active').size()])",
                )
            ),
        },
        description="Regions, exactly one of them Active. Names are unique.",
    )
    replicas: int = Field(
        default=1,
        ge=0,
        description="Replicas in the active region. The /scale subresource (and so an autoscaler) sets it.",
    )
    autoscaling: AutoscalingSpec = Field(default_factory=AutoscalingSpec, description="Autoscaling.")
    failover: FailoverSpec = Field(
        default_factory=FailoverSpec,
        description="Region failover: health checks, when to move the traffic to a standby region and "
        "back, and the standby regions' warm replicas.",
    )
    spot: SpotSpec = Field(default_factory=SpotSpec, description="Spot and on-demand capacity.")
    service: ServiceSpec = Field(default_factory=ServiceSpec, description="Services.")
    monitoring: MonitoringSpec = Field(default_factory=MonitoringSpec, description="Metrics and alerts.")
    priority_tier: PriorityTier = Field(
        default=PriorityTier.P2,
        description="Scheduling priority: P0 (highest) to P3, the PriorityClasses deepseek-p0..deepseek-p3.",
    )
    rollout: RolloutSpec = Field(default_factory=RolloutSpec, description="Rolling updates and draining.")

    @model_validator(mode="after")
    def _cross_field_rules(self) -> Self:
        active = _count_active(self.regions)
        if active != 1:
            raise ValueError(f"{MSG_ONE_ACTIVE_REGION}; found {active}")
        names = [region.name for region in self.regions]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"spec.regions names must be unique; duplicated: {', '.join(duplicates)}")
        if self.resources.gpus_per_replica % self.engine.tensor_parallel_size != 0:
            raise ValueError(
                f"spec.resources.gpusPerReplica ({self.resources.gpus_per_replica}) must be a multiple of "
                f"spec.engine.tensorParallelSize ({self.engine.tensor_parallel_size})"
            )
        if (
            any(signal in METRIC_SIGNALS for signal in self.failover.signals)
            and self.monitoring.prometheus_url is None
        ):
            raise ValueError(MSG_METRIC_SIGNALS_NEED_PROMETHEUS)
        if (
            self.autoscaling.enabled
            and self.autoscaling.provider is AutoscalingProvider.KEDA
            and self.monitoring.prometheus_url is None
        ):
            raise ValueError(MSG_KEDA_NEEDS_PROMETHEUS)
        if self.autoscaling.predictive.enabled and self.monitoring.prometheus_url is None:
            raise ValueError(MSG_PREDICTIVE_NEEDS_PROMETHEUS)
        if self.autoscaling.predictive.enabled and not self.autoscaling.enabled:
            raise ValueError(MSG_PREDICTIVE_NEEDS_AUTOSCALING)
        return self

    @property
    def active_region_name(self) -> str:
        """The region the spec marks Active (home): the one taking traffic unless a failover moved it."""
        return next(region.name for region in self.regions if region.role is RegionRole.ACTIVE)

    @property
    def served_model_name(self) -> str:
        """The name clients and metrics use: model.servedModelName, else model.name."""
        return self.model.served_model_name or self.model.name


# --------------------------------------------------------------------------------------------
# status
# --------------------------------------------------------------------------------------------


class Condition(ApiModel):
    """A condition, shaped like metav1.Condition."""

    type: str = Field(
        min_length=1,
        max_length=316,
        description="Condition type: Ready, Progressing, Degraded (the reconcile), FailoverReady or "
        "SignalsAvailable (the failover controller), SpotAvailable or FallbackActive (the spot controller, "
        "with spot enabled).",
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str | None = Field(
        default=None, max_length=1024, description="One CamelCase word saying why (for machines)."
    )
    message: str | None = Field(default=None, max_length=32768, description="Details for people.")
    last_transition_time: datetime | None = Field(default=None, description="When status last changed.")
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation the condition was computed from."
    )


class PoolStatus(ApiModel):
    """Replica counts of one capacity pool (one Deployment) of a region."""

    name: CapacityPool = Field(description="on-demand or spot.")
    desired_replicas: int | None = Field(
        default=None,
        ge=0,
        description="Replicas the operator asks for: the spec's split, plus on-demand fallback or spot spill.",
    )
    ready_replicas: int | None = Field(
        default=None, ge=0, description="Available replicas of the current spec (not old pods of a rollout)."
    )


class RegionStatus(ApiModel):
    """Observed state of one region."""

    name: str = Field(max_length=MAX_REGION_NAME_LENGTH, description="Region name.")
    role: RegionRole | None = Field(default=None, description="Role the region currently plays.")
    desired_replicas: int | None = Field(
        default=None,
        ge=0,
        description="Replicas that should serve (the spec's split; fallback and spill replicas stand in "
        "for some of them, they do not add to them).",
    )
    ready_replicas: int | None = Field(
        default=None, ge=0, description="Available replicas of the current spec (not old pods of a rollout)."
    )
    pools: tuple[PoolStatus, ...] = Field(
        default=(),
        max_length=2,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
        description="Per capacity pool counts.",
    )


class RegionHealth(ApiModel):
    """One region's health as the failover controller judges it."""

    name: str = Field(max_length=MAX_REGION_NAME_LENGTH, description="Region name.")
    state: RegionHealthState = Field(
        description="Healthy after successThreshold passed checks in a row, Unhealthy after "
        "failureThreshold failed checks in a row once it was healthy, Unknown before it was ever healthy. "
        "A check whose signals all could not be evaluated changes nothing but interrupts both streaks."
    )
    consecutive_failures: int = Field(
        default=0, ge=0, description="Failed checks in a row (counted up to failureThreshold)."
    )
    consecutive_successes: int = Field(
        default=0, ge=0, description="Passed checks in a row (counted up to successThreshold)."
    )
    failing_signals: tuple[FailoverSignal, ...] = Field(
        default=(), max_length=6, description="Signals that failed the last check."
    )
    unknown_signals: tuple[FailoverSignal, ...] = Field(
        default=(), max_length=6, description="Signals the last check could not evaluate."
    )
    message: str | None = Field(default=None, max_length=4096, description="What the last check found.")
    last_probe_time: datetime | None = Field(
        default=None,
        description="When the region was last checked, as written: status is written when a region's "
        "health changes, else every 5 minutes (a write per check would keep the object busy).",
    )
    last_transition_time: datetime | None = Field(default=None, description="When state last changed.")


class FailoverRecord(ApiModel):
    """One switch of the traffic from a region to another."""

    from_region: str = Field(max_length=MAX_REGION_NAME_LENGTH, description="Region the traffic left.")
    to_region: str = Field(max_length=MAX_REGION_NAME_LENGTH, description="Region the traffic moved to.")
    reason: str = Field(
        max_length=64,
        description="The failing signal that decided it (e.g. EngineUnhealthy), or Failback.",
    )
    signals: tuple[FailoverSignal, ...] = Field(
        default=(), max_length=6, description="Every signal the region left was failing."
    )
    message: str | None = Field(default=None, max_length=4096, description="What was decided and why.")
    detected_at: datetime | None = Field(
        default=None, description="First failed check of the region left (for a failback: when decided)."
    )
    decided_at: datetime | None = Field(default=None, description="When the switch was decided.")
    switched_at: datetime | None = Field(
        default=None, description="When the front Service was changed to select the new region."
    )
    duration_milliseconds: int | None = Field(
        default=None, ge=0, description="From detectedAt to switchedAt."
    )


class FailoverStatus(ApiModel):
    """The failover controller's state: where the traffic is, every region's health, the switch in
    flight and the last one. Any operator replica continues from it after a restart."""

    phase: FailoverPhase = Field(
        description="Disabled (failover off, or one region: nowhere to fail over to), Pending (the region "
        "taking the traffic was never healthy yet), Healthy, Degraded (it fails checks, below the threshold "
        "or blocked by minActiveSeconds), FailingOver / FailingBack (the target is being raised; the "
        "traffic moves next), FailedOver (the traffic is in a standby region), NoHealthyTarget (it is "
        "unhealthy and no standby is healthy: it stays), WaitingForUser (maxSwitchesPerHour reached)."
    )
    message: str | None = Field(default=None, max_length=4096, description="Details for people.")
    home_region: str = Field(
        max_length=MAX_REGION_NAME_LENGTH,
        description="The spec's Active region this state refers to; a person changing it resets the routing.",
    )
    active_region: str = Field(
        max_length=MAX_REGION_NAME_LENGTH, description="The region the front Service selects."
    )
    target_region: str | None = Field(
        default=None,
        max_length=MAX_REGION_NAME_LENGTH,
        description="During FailingOver and FailingBack: the region raised to spec.replicas to take over.",
    )
    pending_switch: FailoverRecord | None = Field(
        default=None,
        description="During FailingOver and FailingBack: the switch decided and not done yet.",
    )
    failing_since: datetime | None = Field(
        default=None, description="First failed check of the active region's current failing streak."
    )
    active_since: datetime | None = Field(
        default=None,
        description="When the traffic last moved (for minActiveSeconds); unset before any switch.",
    )
    failover_count: int = Field(default=0, ge=0, description="Switches so far (failovers and failbacks).")
    recent_switches: tuple[datetime, ...] = Field(
        default=(),
        max_length=60,
        description="Times of the switches that count towards maxSwitchesPerHour.",
    )
    waiting_for_user_since: datetime | None = Field(
        default=None,
        description="Set when maxSwitchesPerHour stopped automatic switching, until acknowledged.",
    )
    regions: tuple[RegionHealth, ...] = Field(
        default=(),
        max_length=MAX_REGIONS,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
        description="Health of every region.",
    )
    last_failover: FailoverRecord | None = Field(
        default=None,
        description="The last switch; switchedAt is set once the front Service selects the new region.",
    )


class SpotPoolStatus(ApiModel):
    """What the spot controller saw of one capacity pool of a region."""

    name: CapacityPool = Field(description="on-demand or spot.")
    target_replicas: int = Field(ge=0, description="Replicas the spec's split puts in this pool.")
    ready_replicas: int = Field(
        ge=0, description="Ready replicas of the pool, not counting those with an interruption notice."
    )
    pending_replicas: int = Field(
        default=0, ge=0, description="Pods Pending for capacity (PodScheduled=False, reason Unschedulable)."
    )
    interrupted_replicas: int = Field(
        default=0,
        ge=0,
        description="Pods on nodes with an interruption notice (taint, deletion, NotReady, gone) or with "
        "a DisruptionTarget condition.",
    )
    shortage_since: datetime | None = Field(
        default=None, description="Creation of the oldest pod Pending for capacity (unset: none)."
    )
    last_shortage_time: datetime | None = Field(
        default=None, description="When the latest shortage of this pool began."
    )
    last_interruption_time: datetime | None = Field(
        default=None, description="When an interruption notice was last seen under this pool's pods."
    )
    ready_at_target_since: datetime | None = Field(
        default=None,
        description="Since when the pool has been ready at its target without interruption (the quiet "
        "period before replicas move back to it).",
    )


class SpotInterruption(ApiModel):
    """One interruption counted for flap damping."""

    node: str = Field(max_length=253, description="The node (or pod) that was interrupted.")
    signal: str = Field(max_length=316, description="What announced it: a taint key, NodeDeleting, ...")
    time: datetime = Field(description="When the operator saw it.")
    ongoing: bool = Field(
        default=False,
        description="The notice still stands under the region's pods (a node of the same name that comes "
        "back and is interrupted again is a new interruption once this is false).",
    )


class SpotRegionStatus(ApiModel):
    """The spot controller's decision for one region, and the timers it runs on (they survive restarts)."""

    name: str = Field(max_length=MAX_REGION_NAME_LENGTH, description="Region name.")
    phase: SpotPhase = Field(description="Steady, Shortage, FallenBack, Recovering, Suppressed, ...")
    reason: str = Field(max_length=64, description="One CamelCase word saying why.")
    message: str = Field(max_length=4096, description="Why, for people.")
    fallback_replicas: int = Field(
        default=0, ge=0, description="On-demand replicas added in place of spot replicas."
    )
    spill_replicas: int = Field(
        default=0, ge=0, description="Spot replicas added in place of on-demand replicas."
    )
    withheld_replicas: int = Field(
        default=0,
        ge=0,
        description="Spot replicas not run while spot is suppressed (their on-demand fallback is ready).",
    )
    pools: tuple[SpotPoolStatus, ...] = Field(
        default=(),
        max_length=2,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
        description="Per capacity pool observations and timers.",
    )
    last_step_time: datetime | None = Field(
        default=None, description="When a replica last moved back to its own capacity type."
    )
    interruptions: tuple[SpotInterruption, ...] = Field(
        default=(), max_length=64, description="Interruptions within the cooldown window."
    )
    suppressed_since: datetime | None = Field(
        default=None,
        description="When the latest stop began (interruptions before it no longer count towards the next).",
    )
    suppressed_until: datetime | None = Field(
        default=None, description="Spot is not used in this region until then."
    )
    suppressions: int = Field(
        default=0, ge=0, description="Stops in a row (each doubles the cooldown); 0 once steady again."
    )
    replacement_since: datetime | None = Field(
        default=None,
        description="A notice or shortage whose replacement is not ready yet: when it began.",
    )
    replacement_cause: str | None = Field(
        default=None, max_length=32, description="Interruption or Shortage (for the replacement metric)."
    )


class SpotStatus(ApiModel):
    """Spot capacity, on-demand fallback and spill: written by the spot controller."""

    fallback_replicas: int = Field(
        default=0, ge=0, description="On-demand replicas in place of spot replicas, every region together."
    )
    spill_replicas: int = Field(
        default=0, ge=0, description="Spot replicas in place of on-demand replicas, every region together."
    )
    regions: tuple[SpotRegionStatus, ...] = Field(
        default=(),
        max_length=MAX_REGIONS,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
        description="Per region decisions.",
    )


class PredictiveStatus(ApiModel):
    """What the predictive pre-scaler forecast and did (written under its own field manager)."""

    mode: PredictiveMode | None = Field(default=None, description="The mode the forecast was made in.")
    method: str | None = Field(
        default=None,
        max_length=64,
        description="The forecast's seasonal lag: SeasonalNaiveWeekly or SeasonalNaiveDaily.",
    )
    forecast_requests_per_second: str | None = Field(
        default=None,
        max_length=32,
        description="The highest forecast request rate between the fit and the horizon, e.g. 12.5.",
    )
    horizon_end: datetime | None = Field(default=None, description="The end of the forecast horizon.")
    requests_per_second_per_replica: str | None = Field(
        default=None, max_length=32, description="Requests per second one replica serves at the queue target."
    )
    capacity_source: str | None = Field(
        default=None, max_length=16, description="Spec (given) or History (learned)."
    )
    wanted_replicas: int | None = Field(
        default=None, ge=0, description="Replicas the forecast needs, within the autoscaler's bounds."
    )
    floor_replicas: int | None = Field(
        default=None,
        ge=0,
        description="The floor applied to the autoscaler (ForecastAndScale); unset: no floor.",
    )
    floor_changed_at: datetime | None = Field(default=None, description="When the floor last changed.")
    lower_since: datetime | None = Field(
        default=None,
        description="Since when the forecast wants a lower floor (it falls after the scale-down "
        "stabilization window, by at most the scale-down policy's pods per period).",
    )
    last_fit_time: datetime | None = Field(default=None, description="When the forecast was last made.")
    forecast_error_percent: int | None = Field(
        default=None,
        ge=0,
        description="Mean absolute percentage error of the horizon-ahead forecasts over the most recent day.",
    )


class DeepSeekDeploymentStatus(ApiModel):
    """Observed state, written by the operator."""

    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation last acted upon."
    )
    conditions: tuple[Condition, ...] = Field(
        default=(),
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
        description="Ready, Progressing and Degraded conditions.",
    )
    active_region: str | None = Field(
        default=None, max_length=MAX_REGION_NAME_LENGTH, description="Region currently taking traffic."
    )
    regions: tuple[RegionStatus, ...] = Field(
        default=(),
        max_length=MAX_REGIONS,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
        description="Per region counts.",
    )
    replicas: int | None = Field(
        default=None, ge=0, description="Current replicas of the active region (for the /scale subresource)."
    )
    ready_replicas: int | None = Field(
        default=None,
        ge=0,
        description="Available replicas of the current spec in the active region (old pods that still "
        "serve during a rollout do not count).",
    )
    desired_replicas: int | None = Field(
        default=None, ge=0, description="Desired replicas of the active region."
    )
    ready: str | None = Field(
        default=None,
        max_length=32,
        description="readyReplicas/desiredReplicas of the active region, e.g. 3/4.",
    )
    spot_share: str | None = Field(
        default=None,
        max_length=8,
        description="Share of the active region's replicas on spot in the spec's split, e.g. 50% (on-demand "
        "fallback shows in status.spot).",
    )
    selector: str | None = Field(
        default=None,
        max_length=1024,
        description="Label selector of the active region's pods (for the /scale subresource).",
    )
    spot: SpotStatus | None = Field(
        default=None,
        description="On-demand fallback and spot spill per region (the spot controller writes it, with its "
        "own field manager).",
    )
    failover: FailoverStatus | None = Field(
        default=None,
        description="The failover controller's state (written under its own field manager).",
    )
    predictive: PredictiveStatus | None = Field(
        default=None, description="Predictive pre-scaling: the forecast and the floor."
    )
