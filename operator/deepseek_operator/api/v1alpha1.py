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

# Settings whose controllers are not in this release (region failover, spot fallback): the API accepts,
# validates and stores them, and their descriptions (what `kubectl explain` shows) say so. When a
# controller lands, drop the sentence from the fields it acts on.
NO_FAILOVER_CONTROLLER = (
    "Not implemented yet: this release has no failover controller, so this setting is validated and "
    "stored but nothing acts on it."
)
NO_SPOT_FALLBACK_CONTROLLER = (
    "Not implemented yet: this release has no spot-fallback controller, so this setting is validated "
    "and stored but nothing acts on it."
)
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
MSG_FAILOVER_NEEDS_STANDBY = (
    "spec.failover.enabled needs at least one region with role Standby in spec.regions "
    "(add one, or set spec.failover.enabled to false)"
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
    NODES_NOT_READY = "NodesNotReady"
    PODS_NOT_READY = "PodsNotReady"
    ERROR_RATE = "ErrorRate"
    LATENCY = "Latency"


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


class ConditionType(StrEnum):
    """Condition types the operator sets (``Condition.type`` stays a free string, as upstream)."""

    READY = "Ready"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"


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
        description="Active: takes the traffic (the front Service selects its pods) and runs spec.replicas "
        "replicas. Standby: keeps failover.standbyWarmReplicas warm replicas. Taking over when the active "
        "region fails is not implemented yet: to move the traffic, make another region Active."
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


class FailoverSpec(ApiModel):
    """Standby regions: warm replicas now; moving the traffic when the active region fails, later."""

    enabled: bool = Field(
        default=True,
        description="Keep failover.standbyWarmReplicas warm in each standby region (false: standby regions "
        "run none). Watching the active region and failing over to a standby is not implemented yet: to "
        "move the traffic, make another region Active.",
    )
    probe_interval_seconds: int = Field(
        default=10,
        ge=1,
        le=300,
        description=f"How often the active region's health is to be checked. {NO_FAILOVER_CONTROLLER}",
    )
    failure_threshold: int = Field(
        default=3,
        ge=1,
        le=20,
        description=f"Consecutive failed checks before failing over. {NO_FAILOVER_CONTROLLER}",
    )
    signals: tuple[FailoverSignal, ...] = Field(
        default=(FailoverSignal.NODES_NOT_READY, FailoverSignal.PODS_NOT_READY),
        min_length=1,
        max_length=4,
        json_schema_extra={"x-kubernetes-list-type": "set"},
        description="What is to count as a failed check. ErrorRate and Latency need "
        f"monitoring.prometheusUrl. {NO_FAILOVER_CONTROLLER}",
    )
    standby_warm_replicas: int = Field(
        default=1,
        ge=0,
        description="Replicas kept running in each standby region, so that a standby made Active serves "
        "without waiting for a model to load.",
    )
    failback: FailbackMode = Field(
        default=FailbackMode.MANUAL,
        description="Auto: return to the spec's Active region once it is healthy again; "
        f"Manual: stay until a person changes spec.regions. {NO_FAILOVER_CONTROLLER}",
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


class SpotFallback(ApiModel):
    """Falling back to on-demand capacity when spot capacity cannot be had (not implemented yet)."""

    enabled: bool = Field(
        default=True,
        description=f"Run spot replicas on on-demand nodes while spot pods stay Pending. {NO_SPOT_FALLBACK_CONTROLLER}",
    )
    pending_timeout_seconds: int = Field(
        default=300,
        ge=30,
        le=3600,
        description=f"How long a spot pod may stay Pending before falling back. {NO_SPOT_FALLBACK_CONTROLLER}",
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
        description="Which node labels mark spot capacity: karpenter, gke, eks, aks presets, or custom.",
    )
    custom: CustomCapacityLabels | None = Field(
        default=None, description="Spot and on-demand node labels, for provider custom only."
    )
    fallback: SpotFallback = Field(
        default_factory=SpotFallback,
        description=f"On-demand fallback for spot replicas that cannot be scheduled. {NO_SPOT_FALLBACK_CONTROLLER}",
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
        "(autoscaling.provider keda) and the operator reads the request-rate history from "
        "(autoscaling.predictive). The failover ErrorRate and Latency signals are to query it too; "
        "they are not implemented yet.",
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
                "!self.failover.enabled || self.regions.exists(r, r.role == 'Standby')",
                MSG_FAILOVER_NEEDS_STANDBY,
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
        description="Standby regions: their warm replicas. Automatic failover is not implemented yet: "
        "only standbyWarmReplicas and enabled act in this release.",
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
        if self.failover.enabled and not any(r.role is RegionRole.STANDBY for r in self.regions):
            raise ValueError(MSG_FAILOVER_NEEDS_STANDBY)
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
        """The region the spec marks Active: in this release, always the one taking traffic."""
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
        min_length=1, max_length=316, description="Condition type: Ready, Progressing or Degraded."
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
    desired_replicas: int | None = Field(default=None, ge=0, description="Replicas the operator asks for.")
    ready_replicas: int | None = Field(
        default=None, ge=0, description="Available replicas of the current spec (not old pods of a rollout)."
    )


class RegionStatus(ApiModel):
    """Observed state of one region."""

    name: str = Field(max_length=MAX_REGION_NAME_LENGTH, description="Region name.")
    role: RegionRole | None = Field(default=None, description="Role the region currently plays.")
    desired_replicas: int | None = Field(default=None, ge=0, description="Replicas the operator asks for.")
    ready_replicas: int | None = Field(
        default=None, ge=0, description="Available replicas of the current spec (not old pods of a rollout)."
    )
    pools: tuple[PoolStatus, ...] = Field(
        default=(),
        max_length=2,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
        description="Per capacity pool counts.",
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
        default=None, max_length=8, description="Share of the active region's replicas on spot, e.g. 50%."
    )
    selector: str | None = Field(
        default=None,
        max_length=1024,
        description="Label selector of the active region's pods (for the /scale subresource).",
    )
    predictive: PredictiveStatus | None = Field(
        default=None, description="Predictive pre-scaling: the forecast and the floor."
    )
