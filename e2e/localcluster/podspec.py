"""What the pod runtime reads from a pod and writes back to it (pure functions, no I/O).

The pod runtime (`localcluster.podruntime`) plays the kubelet for the pods whose container image is the
simulator; this module holds the rules it follows, so they are table-tested without a cluster: which pods
it runs, the container's environment, its probes, its preStop hook, and the pod status it reports.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

# The repository's last path component names the simulator, whatever the registry, tag or digest:
# `deepseek-simulator:e2e`, `ghcr.io/deepseek-operator/deepseek-simulator:0.1.0`,
# `localhost:5000/deepseek-simulator@sha256:...`. Pods of any other image stay kwok's.
SIMULATOR_IMAGE_PATTERN: Final = r"(^|/)deepseek-simulator(:[^/@]*)?(@sha256:[0-9a-f]+)?$"
_SIMULATOR_IMAGE = re.compile(SIMULATOR_IMAGE_PATTERN)

# kubelet's defaults for probe fields a pod leaves out.
DEFAULT_PERIOD_SECONDS: Final = 10
DEFAULT_TIMEOUT_SECONDS: Final = 1
DEFAULT_FAILURE_THRESHOLD: Final = 3
DEFAULT_GRACE_SECONDS: Final = 30


def runs_simulator(pod: Mapping[str, Any]) -> bool:
    """Whether the pod runtime runs this pod: its first container's image is the simulator."""
    containers = (pod.get("spec") or {}).get("containers") or []
    return bool(containers) and bool(_SIMULATOR_IMAGE.search(str(containers[0].get("image", ""))))


def kwok_exclusion() -> dict[str, Any]:
    """A kwok Stage matchExpression that leaves the pods `runs_simulator` picks to the pod runtime.

    Same pattern, evaluated by kwok's jq (gojq, RE2 syntax, which this pattern stays within).
    """
    return {
        "key": f'.spec.containers[0].image | test("{SIMULATOR_IMAGE_PATTERN}")',
        "operator": "NotIn",
        "values": ["true"],
    }


class ContainerConfigError(ValueError):
    """The container cannot start with this configuration (kubelet's CreateContainerConfigError)."""


@dataclass(frozen=True)
class Probe:
    """An httpGet probe, with kubelet's defaults for what the pod leaves out."""

    path: str
    port: int
    period_seconds: float
    timeout_seconds: float
    failure_threshold: int
    success_threshold: int
    initial_delay_seconds: float

    @classmethod
    def from_spec(cls, probe: Mapping[str, Any] | None, container: Mapping[str, Any]) -> Probe | None:
        """None when the container has no such probe; only httpGet probes are supported."""
        if not probe:
            return None
        http_get = probe.get("httpGet")
        if http_get is None:
            raise ContainerConfigError(
                f"container {container.get('name')!r}: only httpGet probes run on the local cluster, "
                f"not {sorted(set(probe) & {'exec', 'tcpSocket', 'grpc'})}"
            )
        return cls(
            path=str(http_get.get("path") or "/"),
            port=resolve_port(http_get["port"], container),
            period_seconds=float(probe.get("periodSeconds") or DEFAULT_PERIOD_SECONDS),
            timeout_seconds=float(probe.get("timeoutSeconds") or DEFAULT_TIMEOUT_SECONDS),
            failure_threshold=int(probe.get("failureThreshold") or DEFAULT_FAILURE_THRESHOLD),
            success_threshold=int(probe.get("successThreshold") or 1),
            initial_delay_seconds=float(probe.get("initialDelaySeconds") or 0),
        )


def resolve_port(port: int | str, container: Mapping[str, Any]) -> int:
    """A probe's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    if port.isdigit():
        return int(port)
    for declared in container.get("ports") or []:
        if declared.get("name") == port:
            return int(declared["containerPort"])
    raise ContainerConfigError(f"container {container.get('name')!r} has no port named {port!r}")


@dataclass(frozen=True)
class ContainerPlan:
    """How to run a pod's container: environment, probes, listening port, shutdown timings."""

    name: str
    image: str
    env: dict[str, str]
    port: int
    startup: Probe | None
    readiness: Probe | None
    liveness: Probe | None
    pre_stop_sleep_seconds: float
    grace_seconds: float


SecretReader = Callable[[str, str], Mapping[str, str] | None]


def container_environment(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    read_secret: SecretReader,
    read_config_map: SecretReader,
) -> dict[str, str]:
    """The container's environment as the kubelet builds it: literal values, downward-API fields,
    Secret and ConfigMap keys (`read_*` take namespace and name and return the decoded data or None).

    `$(VAR)` references to earlier variables are expanded, as Kubernetes does.
    """
    namespace = pod["metadata"]["namespace"]
    env: dict[str, str] = {}
    for item in container.get("env") or []:
        name = item["name"]
        if "value" in item or "valueFrom" not in item:
            env[name] = _expand(str(item.get("value", "")), env)
            continue
        source = item["valueFrom"]
        if "fieldRef" in source:
            env[name] = _field(pod, source["fieldRef"]["fieldPath"])
        elif "secretKeyRef" in source or "configMapKeyRef" in source:
            kind, ref = (
                ("Secret", source["secretKeyRef"])
                if "secretKeyRef" in source
                else ("ConfigMap", source["configMapKeyRef"])
            )
            reader = read_secret if kind == "Secret" else read_config_map
            data = reader(namespace, ref["name"])
            if data is None or ref["key"] not in data:
                if ref.get("optional"):
                    continue
                missing = (
                    f"{kind} {ref['name']!r}"
                    if data is None
                    else f"key {ref['key']!r} in {kind} {ref['name']!r}"
                )
                raise ContainerConfigError(f"couldn't find {missing} for variable {name}")
            env[name] = data[ref["key"]]
        else:
            raise ContainerConfigError(f"variable {name}: unsupported valueFrom {sorted(source)}")
    return env


def _expand(value: str, env: Mapping[str, str]) -> str:
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), value)


def _field(pod: Mapping[str, Any], path: str) -> str:
    metadata = pod["metadata"]
    fields = {
        "metadata.name": metadata.get("name"),
        "metadata.namespace": metadata.get("namespace"),
        "metadata.uid": metadata.get("uid"),
        "spec.nodeName": pod["spec"].get("nodeName"),
        "spec.serviceAccountName": pod["spec"].get("serviceAccountName"),
    }
    label = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if label:
        return str((metadata.get(label.group(1)) or {}).get(label.group(2), ""))
    if path not in fields:
        raise ContainerConfigError(f"unsupported fieldRef {path!r} on the local cluster")
    return str(fields[path] or "")


def container_plan(
    pod: Mapping[str, Any], read_secret: SecretReader, read_config_map: SecretReader
) -> ContainerPlan:
    """Everything needed to run the pod's (single) container; ContainerConfigError when it cannot run."""
    spec = pod["spec"]
    containers: Sequence[Mapping[str, Any]] = spec.get("containers") or []
    if len(containers) != 1 or spec.get("initContainers"):
        raise ContainerConfigError(
            "the local cluster runs simulator pods with exactly one container and no init containers"
        )
    container = containers[0]
    ports = container.get("ports") or []
    if not ports:
        raise ContainerConfigError(f"container {container.get('name')!r} declares no containerPort")
    pre_stop = ((container.get("lifecycle") or {}).get("preStop") or {}).get("sleep") or {}
    grace = spec.get("terminationGracePeriodSeconds")
    return ContainerPlan(
        name=str(container["name"]),
        image=str(container["image"]),
        env=container_environment(pod, container, read_secret, read_config_map),
        port=int(ports[0]["containerPort"]),
        startup=Probe.from_spec(container.get("startupProbe"), container),
        readiness=Probe.from_spec(container.get("readinessProbe"), container),
        liveness=Probe.from_spec(container.get("livenessProbe"), container),
        pre_stop_sleep_seconds=float(pre_stop.get("seconds") or 0),
        grace_seconds=float(DEFAULT_GRACE_SECONDS if grace is None else grace),
    )


# ------------------------------------------------------------------------------------------ status


@dataclass(frozen=True)
class ContainerState:
    """What the runtime knows about the container, from which the pod status is made."""

    name: str
    image: str
    # waiting (not started, or backing off), running, or terminated
    phase: str
    reason: str | None = None
    message: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    exit_code: int | None = None
    started: bool = False  # the startup probe passed (or there is none)
    ready: bool = False
    restart_count: int = 0
    last_terminated: Mapping[str, Any] | None = None
    container_id: str | None = None


def _condition(
    kind: str, status: bool, now: str, previous: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    value = "True" if status else "False"
    before = previous.get(kind)
    since = before.get("lastTransitionTime") if before and before.get("status") == value else now
    return {"type": kind, "status": value, "lastProbeTime": None, "lastTransitionTime": since or now}


def pod_status(
    container: ContainerState,
    pod_phase: str,
    pod_ip: str | None,
    host_ip: str | None,
    start_time: str,
    previous_conditions: Sequence[Mapping[str, Any]],
    now: str,
) -> dict[str, Any]:
    """The `status` the kubelet would report (PodScheduled is the scheduler's and is left alone)."""
    previous = {str(c.get("type")): c for c in previous_conditions}
    if container.phase == "running":
        state: dict[str, Any] = {"running": {"startedAt": container.started_at}}
    elif container.phase == "terminated":
        state = {
            "terminated": {
                "exitCode": container.exit_code if container.exit_code is not None else 137,
                "reason": container.reason or "Error",
                "startedAt": container.started_at,
                "finishedAt": container.finished_at,
            }
        }
    else:
        state = {"waiting": {"reason": container.reason or "ContainerCreating"}}
        if container.message:
            state["waiting"]["message"] = container.message
    container_status: dict[str, Any] = {
        "name": container.name,
        "image": container.image,
        "imageID": f"localcluster://{container.image}",
        "ready": container.ready,
        "started": container.started,
        "restartCount": container.restart_count,
        "state": state,
        "lastState": {"terminated": dict(container.last_terminated)} if container.last_terminated else {},
    }
    if container.container_id:
        container_status["containerID"] = container.container_id
    status: dict[str, Any] = {
        "phase": pod_phase,
        "startTime": start_time,
        "conditions": [
            _condition("PodReadyToStartContainers", pod_ip is not None, now, previous),
            _condition("Initialized", True, now, previous),
            _condition("ContainersReady", container.ready, now, previous),
            _condition("Ready", container.ready, now, previous),
        ],
        "containerStatuses": [container_status],
    }
    if pod_ip is not None:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    if host_ip is not None:
        status["hostIP"] = host_ip
        status["hostIPs"] = [{"ip": host_ip}]
    return status


def restart_backoff_seconds(restarts: int, initial: float = 10.0, cap: float = 300.0) -> float:
    """kubelet's crash-loop back-off: 10 s, doubling, at most 5 minutes."""
    return float(min(cap, initial * (2 ** max(0, restarts - 1)))) if restarts > 0 else 0.0
