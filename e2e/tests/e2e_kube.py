"""What the e2e tests do to a cluster: kubectl as a user runs it, a DeepSeekDeployment and its
children, and how traffic reaches its Services and pods (client Pods on kind, the Service proxy on the local cluster)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from deepseek_operator.status import is_ready_for_its_generation
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from localcluster.addresses import LOOPBACK_ADDRESS_ANNOTATION, require_loopback
from localcluster.waiting import WaitTimeoutError, wait_until

GROUP = "serving.deepseek-operator.io"
VERSION = "v1alpha1"
PLURAL = "deepseekdeployments"
CRD_NAME = f"{PLURAL}.{GROUP}"
DEPLOYMENT_LABEL = f"{GROUP}/deployment"
REGION_LABEL = f"{GROUP}/region"
POOL_LABEL = f"{GROUP}/pool"
CONFIG_HASH_ANNOTATION = f"{GROUP}/config-hash"

NODE_REGION_LABEL = "topology.kubernetes.io/region"
NODE_CAPACITY_TYPE_LABEL = "karpenter.sh/capacity-type"
NODE_GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"

INFERENCE_PORT = 8080
TRAFFIC_CLIENT_SOURCE = Path(__file__).with_name("traffic_client.py")
TRAFFIC_CLIENT_CONFIG_MAP = "e2e-traffic-client"
# The collector deletes a resolvable orphan within a second; a probe not gone after this is retried.
GARBAGE_COLLECTOR_PROBE_SECONDS = 3.0


# ------------------------------------------------------------------------------------------ kubectl


@dataclass(frozen=True)
class Kubectl:
    """The pinned kubectl against the suite's kubeconfig; a failed command fails the test with its stderr."""

    binary: Path
    kubeconfig: Path

    def __call__(self, *arguments: str) -> str:
        result = self.run(*arguments)
        if result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(arguments)} exited {result.returncode}: {result.stderr.strip()}"
            )
        return result.stdout

    def run(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        """kubectl, whatever its exit status."""
        return subprocess.run(
            [str(self.binary), f"--kubeconfig={self.kubeconfig}", *arguments],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def parse_table(text: str) -> list[dict[str, str]]:
    """Rows of kubectl's table output, keyed by column header.

    Cells are cut at the header's column offsets rather than split on blanks, so an empty cell
    (a status field not written yet) cannot shift the cells after it.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    columns = [(match.group(), match.start()) for match in re.finditer(r"\S+", lines[0])]
    rows = []
    for line in lines[1:]:
        row = {}
        for index, (header, start) in enumerate(columns):
            end = columns[index + 1][1] if index + 1 < len(columns) else len(line)
            row[header] = line[start:end].strip()
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------------------ the CR


def crd_established(api_client: Any) -> bool:
    extensions: Any = client.ApiextensionsV1Api(api_client)
    try:
        crd = extensions.read_custom_resource_definition(CRD_NAME)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or [])


def wait_for_garbage_collector(api_client: Any, namespace: str, timeout: float) -> None:
    """Return once the garbage collector deletes what a deleted DeepSeekDeployment owned.

    The controller-manager's garbage collector finds new resource types by polling discovery every
    30 s; until then a deleted DeepSeekDeployment's children stay. A real cluster had its CRD long
    before; a test cluster that just installed it waits here once, so that no test pays for it.
    Each probe is a throwaway owner and a ConfigMap it owns. A probe the collector could not resolve
    is retried with exponential back-off (up to minutes), so an unanswered probe is dropped after a
    few seconds and a fresh one made.
    """
    custom: Any = client.CustomObjectsApi(api_client)
    core: Any = client.CoreV1Api(api_client)
    deadline = time.monotonic() + timeout
    while True:
        name = f"gc-probe-{uuid.uuid4().hex[:8]}"
        owner = custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "DeepSeekDeployment",
                "metadata": {"name": name},
                # Nothing to run: one region, no replicas.
                "spec": {
                    "model": {"name": "gc-probe"},
                    "regions": [{"name": "gc-probe", "role": "Active"}],
                    "replicas": 0,
                    "failover": {"enabled": False},
                },
            },
        )
        reference = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "DeepSeekDeployment",
            "name": name,
            "uid": owner["metadata"]["uid"],
        }
        core.create_namespaced_config_map(
            namespace, {"metadata": {"name": name, "ownerReferences": [reference]}}
        )
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)

        def owned_config_map_deleted(config_map: str = name) -> bool:
            try:
                core.read_namespaced_config_map(config_map, namespace)
            except ApiException as error:
                if error.status == 404:
                    return True
                raise
            return False

        try:
            wait_until(
                owned_config_map_deleted, GARBAGE_COLLECTOR_PROBE_SECONDS, "the probe ConfigMap deleted"
            )
            return
        except WaitTimeoutError:
            try:
                core.delete_namespaced_config_map(name, namespace)
            except ApiException as error:
                if error.status != 404:  # the collector got to it meanwhile
                    raise
            if time.monotonic() > deadline:
                raise WaitTimeoutError(
                    f"timed out after {timeout:.0f}s waiting for the garbage collector to delete what a "
                    "deleted DeepSeekDeployment owns"
                ) from None


def wait_for_state(
    observe: Callable[[], dict[str, Any]], expected: dict[str, Any], timeout: float, what: str
) -> None:
    """Poll `observe` until it returns `expected`; on timeout fail showing both."""
    seen: dict[str, Any] = {}

    def matches() -> bool:
        seen.clear()
        seen.update(observe())
        return seen == expected

    try:
        wait_until(matches, timeout, what)
    except WaitTimeoutError as error:
        raise AssertionError(f"{error}\n  expected:  {expected}\n  last seen: {seen}") from error


def pod_is_ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


class DeepSeekDeploymentHandle:
    """One DeepSeekDeployment and what it owns, read through the Kubernetes API."""

    def __init__(self, api_client: Any, namespace: str, name: str, timeout: float, operator: str) -> None:
        self.api_client = api_client
        self.custom: Any = client.CustomObjectsApi(api_client)
        self.apps: Any = client.AppsV1Api(api_client)
        self.core: Any = client.CoreV1Api(api_client)
        self.namespace = namespace
        self.name = name
        self.timeout = timeout
        # Named in every timeout message: what the operator logged is the first thing to read.
        self.operator = operator

    @property
    def selector(self) -> str:
        return f"{DEPLOYMENT_LABEL}={self.name}"

    def get(self) -> dict[str, Any]:
        found: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, self.name
        )
        return found

    def exists(self) -> bool:
        try:
            self.get()
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return True

    def ready_for_generation(self) -> dict[str, Any] | None:
        """The object when Ready=True for its current generation, else None."""
        current = self.get()
        return current if is_ready_for_its_generation(current) else None

    def wait_ready(self) -> dict[str, Any]:
        return wait_until(
            self.ready_for_generation,
            self.timeout,
            self.waiting_for(f"{self.namespace}/{self.name} Ready for its latest generation"),
        )

    def waiting_for(self, what: str) -> str:
        return f"{what} ({self.operator})"

    def deployments(self) -> dict[str, Any]:
        items = self.apps.list_namespaced_deployment(self.namespace, label_selector=self.selector).items
        return {deployment.metadata.name: deployment for deployment in items}

    def deployment_replicas(self) -> dict[str, int]:
        return {name: deployment.spec.replicas for name, deployment in self.deployments().items()}

    def pods(self) -> list[Any]:
        """Pods that are not being deleted."""
        items = self.core.list_namespaced_pod(self.namespace, label_selector=self.selector).items
        return [pod for pod in items if pod.metadata.deletion_timestamp is None]

    def ready_pods(self) -> list[Any]:
        return [pod for pod in self.pods() if pod_is_ready(pod)]

    def ready_pods_per_region_and_pool(self) -> Counter[tuple[str, str]]:
        return Counter(
            (pod.metadata.labels[REGION_LABEL], pod.metadata.labels[POOL_LABEL]) for pod in self.ready_pods()
        )

    def children(self) -> dict[str, list[str]]:
        """Names of every object kind the operator makes (and what those make), labelled as this
        deployment's; pods being deleted count too."""
        selector = self.selector
        namespace = self.namespace
        policy: Any = client.PolicyV1Api(self.api_client)
        autoscaling: Any = client.AutoscalingV2Api(self.api_client)
        listings = {
            "deployments": self.apps.list_namespaced_deployment,
            "replicasets": self.apps.list_namespaced_replica_set,
            "pods": self.core.list_namespaced_pod,
            "services": self.core.list_namespaced_service,
            "poddisruptionbudgets": policy.list_namespaced_pod_disruption_budget,
            "horizontalpodautoscalers": autoscaling.list_namespaced_horizontal_pod_autoscaler,
        }
        return {
            kind: sorted(item.metadata.name for item in listing(namespace, label_selector=selector).items)
            for kind, listing in listings.items()
        }


def node_labels(core: Any, node_name: str) -> dict[str, str]:
    labels: dict[str, str] = core.read_node(node_name).metadata.labels
    return labels


# ------------------------------------------------------------------------------------------ reaching pods and Services


def pod_metrics_text(core: Any, namespace: str, pod_name: str) -> str:
    """GET /metrics of a pod through the API server's pod proxy (no port-forward needed)."""
    response = core.connect_get_namespaced_pod_proxy_with_path(
        f"{pod_name}:{INFERENCE_PORT}", namespace, "metrics", _preload_content=False
    )
    text: str = response.data.decode()
    return text


class TrafficClients(Protocol):
    """Runs traffic_client.py where it can reach the cluster's Services; one run per name."""

    def start(self, name: str, arguments: list[str]) -> None: ...

    def wait_output(self, name: str) -> str: ...

    def delete(self, name: str) -> None: ...

    def close(self) -> None:
        """Stop every client still running (at the end of a test, whatever its outcome)."""


class ClusterAccess(Protocol):
    """How the suite reaches what runs in the cluster: Services, pods' /metrics, traffic clients."""

    def service_url(self, namespace: str, service: str) -> str: ...

    def pod_metrics_text(self, core: Any, namespace: str, pod_name: str) -> str: ...

    def traffic_clients(self, core: Any, namespace: str, image: str, timeout: float) -> TrafficClients: ...


class InClusterAccess:
    """A cluster whose pods really run (kind): Service DNS names from client Pods, /metrics through the
    API server's pod proxy."""

    def service_url(self, namespace: str, service: str) -> str:
        return f"http://{service}:{INFERENCE_PORT}"

    def pod_metrics_text(self, core: Any, namespace: str, pod_name: str) -> str:
        return pod_metrics_text(core, namespace, pod_name)

    def traffic_clients(self, core: Any, namespace: str, image: str, timeout: float) -> TrafficClients:
        return TrafficClientPods(core, namespace, image, timeout)


@dataclass(frozen=True)
class LocalAccess:
    """The local cluster: Services through the data plane's Service proxy, a pod's /metrics at the
    loopback address its process listens on, traffic clients as processes on this machine. Never the
    pod IPs, which belong to nobody (nor the API server's pod proxy, which would dial them)."""

    service_url_of: Callable[[str, str], str]

    def service_url(self, namespace: str, service: str) -> str:
        return self.service_url_of(namespace, service)

    def pod_metrics_text(self, core: Any, namespace: str, pod_name: str) -> str:
        address = pod_loopback_address(core.read_namespaced_pod(pod_name, namespace))
        with urllib.request.urlopen(f"http://{address}:{INFERENCE_PORT}/metrics", timeout=10) as response:
            text: str = response.read().decode()
        return text

    def traffic_clients(self, core: Any, namespace: str, image: str, timeout: float) -> TrafficClients:
        return TrafficClientProcesses(timeout)


def pod_loopback_address(pod: Any) -> str:
    """The loopback address a pod's process listens on (set by the local cluster's pod runtime)."""
    address = (pod.metadata.annotations or {}).get(LOOPBACK_ADDRESS_ANNOTATION)
    if address is None:
        raise AssertionError(
            f"pod {pod.metadata.name} has no {LOOPBACK_ADDRESS_ANNOTATION} annotation: no process runs "
            "behind it (only pods of the deepseek-simulator image run on the local cluster)"
        )
    return require_loopback(str(address))


@dataclass
class TrafficClientProcesses:
    """traffic_client.py as processes on this machine, sending to Service proxy addresses (loopback)."""

    timeout: float
    processes: dict[str, subprocess.Popen[str]] = field(default_factory=dict)

    def start(self, name: str, arguments: list[str]) -> None:
        mode, url, *rest = arguments
        require_loopback(urllib.parse.urlsplit(url).hostname or "")
        self.processes[name] = subprocess.Popen(
            [sys.executable, str(TRAFFIC_CLIENT_SOURCE), mode, url, *rest],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_output(self, name: str) -> str:
        process = self.processes[name]
        try:
            output, errors = process.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            raise AssertionError(f"traffic client {name} did not finish in {self.timeout:.0f}s") from None
        assert process.returncode == 0, f"traffic client {name} failed:\n{output}{errors}"
        return output

    def delete(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is not None and process.poll() is None:
            process.kill()
            process.communicate(timeout=10)

    def close(self) -> None:
        for name in list(self.processes):
            self.delete(name)


@dataclass(frozen=True)
class TrafficClientPods:
    """Pods that run traffic_client.py (mounted from a ConfigMap) in the image of the simulator."""

    core: Any
    namespace: str
    image: str
    timeout: float

    def _ensure_script(self) -> None:
        config_map = {
            "metadata": {"name": TRAFFIC_CLIENT_CONFIG_MAP},
            "data": {TRAFFIC_CLIENT_SOURCE.name: TRAFFIC_CLIENT_SOURCE.read_text()},
        }
        try:
            self.core.create_namespaced_config_map(self.namespace, config_map)
        except ApiException as error:
            if error.status != 409:
                raise

    def start(self, name: str, arguments: list[str]) -> None:
        self._ensure_script()
        pod = {
            "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "e2e-traffic-client"}},
            "spec": {
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                # No toleration: it stays off the GPU nodes and so never takes a GPU pod's place.
                "containers": [
                    {
                        "name": "client",
                        "image": self.image,
                        "imagePullPolicy": "Never",
                        "command": ["python3", f"/client/{TRAFFIC_CLIENT_SOURCE.name}", *arguments],
                        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
                        "volumeMounts": [{"name": "client", "mountPath": "/client", "readOnly": True}],
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]},
                        },
                    }
                ],
                "volumes": [{"name": "client", "configMap": {"name": TRAFFIC_CLIENT_CONFIG_MAP}}],
            },
        }
        self.core.create_namespaced_pod(self.namespace, pod)

    def wait_output(self, name: str) -> str:
        """The pod's output once it has exited 0; fails with its output when it exited otherwise."""

        def finished_phase() -> str | None:
            phase: str | None = self.core.read_namespaced_pod(name, self.namespace).status.phase
            return phase if phase in {"Succeeded", "Failed"} else None

        phase = wait_until(finished_phase, self.timeout, f"traffic client pod {name} to finish")
        output: str = self.core.read_namespaced_pod_log(name, self.namespace)
        assert phase == "Succeeded", f"traffic client pod {name} failed:\n{output}"
        return output

    def delete(self, name: str) -> None:
        self.core.delete_namespaced_pod(name, self.namespace, grace_period_seconds=0)

    def close(self) -> None:
        """Nothing to do: the test's namespace, and the client pods in it, are deleted after it."""
