"""Proof that the local cluster is real: the scheduler, controllers and API server decide, not the test."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from localcluster import faults
from localcluster.cluster import LocalCluster
from localcluster.fleet import GPU_RESOURCE, REGION_LABEL
from localcluster.kube import api_client_for
from localcluster.waiting import wait_until

pytestmark = pytest.mark.cluster

GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
REPO_ROOT = Path(__file__).resolve().parents[2]


def gpu_deployment(name: str, replicas: int, gpus: int, node_selector: dict[str, str]) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeSelector": node_selector,
                    "tolerations": [GPU_TOLERATION],
                    "containers": [
                        {
                            "name": "inference",
                            "image": "inference:test",
                            "resources": {"limits": {GPU_RESOURCE: str(gpus)}},
                        }
                    ],
                },
            },
        },
    }


def pods_of(core: Any, namespace: str, app: str) -> list[Any]:
    return [
        pod
        for pod in core.list_namespaced_pod(namespace, label_selector=f"app={app}").items
        if pod.metadata.deletion_timestamp is None
    ]


def is_ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def node_region(core: Any, node_name: str) -> str:
    labels: dict[str, str] = core.read_node(node_name).metadata.labels
    return labels[REGION_LABEL]


def test_gpu_pods_land_on_gpu_nodes_of_the_selected_region_and_become_ready(
    api_client: Any, core_api: Any, namespace: str
) -> None:
    apps = client.AppsV1Api(api_client)
    apps.create_namespaced_deployment(namespace, gpu_deployment("r1", 6, 1, {REGION_LABEL: "eu-west"}))

    def all_ready() -> list[Any] | None:
        pods = pods_of(core_api, namespace, "r1")
        return pods if len(pods) == 6 and all(is_ready(pod) for pod in pods) else None

    pods = wait_until(all_ready, 60, "6 ready GPU pods")
    for pod in pods:
        node = core_api.read_node(pod.spec.node_name)
        assert node.metadata.labels[REGION_LABEL] == "eu-west"
        assert node.status.allocatable[GPU_RESOURCE] == "8"


def test_pod_asking_for_more_gpus_than_any_node_has_stays_pending_with_the_schedulers_reason(
    api_client: Any, core_api: Any, namespace: str
) -> None:
    apps = client.AppsV1Api(api_client)
    apps.create_namespaced_deployment(namespace, gpu_deployment("huge", 1, 9, {}))

    def unschedulable_condition() -> Any:
        for pod in pods_of(core_api, namespace, "huge"):
            for condition in pod.status.conditions or []:
                if condition.type == "PodScheduled" and condition.reason == "Unschedulable":
                    return condition
        return None

    condition = wait_until(unschedulable_condition, 30, "the scheduler to mark the pod Unschedulable")
    assert condition.status == "False"
    assert f"Insufficient {GPU_RESOURCE}" in condition.message
    assert pods_of(core_api, namespace, "huge")[0].status.phase == "Pending"


def test_failing_a_region_moves_its_pods_away_through_the_real_controllers(
    local_cluster: LocalCluster, api_client: Any, core_api: Any, namespace: str
) -> None:
    apps = client.AppsV1Api(api_client)
    # No region constraint: the scheduler may use both regions, and must leave us-east once it fails.
    apps.create_namespaced_deployment(namespace, gpu_deployment("mover", 6, 2, {}))
    wait_until(
        lambda: len([p for p in pods_of(core_api, namespace, "mover") if is_ready(p)]) == 6,
        60,
        "6 ready pods",
    )
    try:
        failed = faults.fail_nodes(core_api, faults.region_selector("us-east"))
        assert failed, "the default fleet has GPU nodes in us-east"

        def all_moved() -> list[str] | None:
            pods = pods_of(core_api, namespace, "mover")
            regions = [node_region(core_api, p.spec.node_name) for p in pods if p.spec.node_name]
            done = len(pods) == 6 and all(is_ready(p) for p in pods) and set(regions) == {"eu-west"}
            return regions if done else None

        wait_until(all_moved, 90, "every pod to be evicted from us-east and rescheduled in eu-west")
        failed_node = core_api.read_node(failed[0])
        taint_keys = {taint.key for taint in failed_node.spec.taints or []}
        assert "node.kubernetes.io/not-ready" in taint_keys, "the node lifecycle controller taints the node"
    finally:
        local_cluster.restore_fleet()


def test_removing_a_region_deletes_its_pods_through_pod_garbage_collection(
    local_cluster: LocalCluster, api_client: Any, core_api: Any, namespace: str
) -> None:
    apps = client.AppsV1Api(api_client)
    apps.create_namespaced_deployment(namespace, gpu_deployment("gone", 2, 1, {REGION_LABEL: "us-east"}))
    wait_until(
        lambda: len([p for p in pods_of(core_api, namespace, "gone") if is_ready(p)]) == 2, 60, "2 pods"
    )
    try:
        removed = set(faults.remove_nodes(core_api, faults.region_selector("us-east")))
        assert removed

        def orphans_gone_and_replacements_pending() -> bool:
            pods = pods_of(core_api, namespace, "gone")
            on_removed = [p for p in pods if p.spec.node_name in removed]
            return not on_removed and len(pods) == 2 and all(p.status.phase == "Pending" for p in pods)

        # Pod GC waits 40 s before deleting pods of a vanished node (controller-manager default).
        wait_until(orphans_gone_and_replacements_pending, 120, "pods of removed nodes to be deleted")
    finally:
        local_cluster.restore_fleet()
    wait_until(
        lambda: len([p for p in pods_of(core_api, namespace, "gone") if is_ready(p)]) == 2, 60, "recovery"
    )


def test_pods_can_be_made_not_ready_without_being_killed(
    api_client: Any, core_api: Any, namespace: str
) -> None:
    apps = client.AppsV1Api(api_client)
    apps.create_namespaced_deployment(namespace, gpu_deployment("hang", 1, 1, {}))
    pod = wait_until(
        lambda: next(iter(p for p in pods_of(core_api, namespace, "hang") if is_ready(p)), None), 60, "pod"
    )
    faults.fail_pods(core_api, namespace, "app=hang")
    wait_until(
        lambda: not is_ready(core_api.read_namespaced_pod(pod.metadata.name, namespace)), 30, "NotReady"
    )
    hung = core_api.read_namespaced_pod(pod.metadata.name, namespace)
    assert hung.metadata.uid == pod.metadata.uid
    assert hung.status.phase == "Running"
    faults.restore_pods(core_api, namespace, "app=hang")
    wait_until(
        lambda: is_ready(core_api.read_namespaced_pod(pod.metadata.name, namespace)), 30, "Ready again"
    )


def test_api_server_rejects_an_invalid_object_with_its_own_validation_error(
    api_client: Any, namespace: str
) -> None:
    apps = client.AppsV1Api(api_client)
    invalid = gpu_deployment("bad", -1, 1, {})
    with pytest.raises(ApiException) as raised:
        apps.create_namespaced_deployment(namespace, invalid)
    assert raised.value.status == 422
    body = json.loads(raised.value.body)
    assert body["reason"] == "Invalid"
    assert "spec.replicas" in body["message"]
    assert "must be greater than or equal to 0" in body["message"]


def test_api_server_reports_its_pinned_version(api_client: Any) -> None:
    version = client.VersionApi(api_client).get_code()
    assert version.git_version == "v1.36.3"


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.slow
def test_cli_up_and_down_leave_no_process_or_port_behind(tmp_path: Path) -> None:
    workdir = tmp_path / "cli-cluster"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "e2e")}
    command = [sys.executable, "-m", "localcluster", "--dir", str(workdir)]
    up = subprocess.run([*command, "up"], env=env, capture_output=True, text=True, timeout=180, check=False)
    try:
        assert up.returncode == 0, up.stderr
        assert f"export KUBECONFIG={workdir / 'kubeconfig'}" in up.stdout
        state = json.loads((workdir / "state.json").read_text())
        core = client.CoreV1Api(api_client_for(workdir / "kubeconfig"))
        assert len(core.list_node().items) == 14
    finally:
        down = subprocess.run(
            [*command, "down"], env=env, capture_output=True, text=True, timeout=60, check=False
        )
    assert down.returncode == 0, down.stderr
    for name, pid in state["pids"].items():
        assert not _process_exists(pid), f"{name} (pid {pid}) still runs after `down`"
    for name, port in state["ports"].items():
        assert _port_is_free(port), f"port {port} of {name} is still bound after `down`"
    assert not (workdir / "state.json").exists()


@pytest.mark.slow
def test_cluster_processes_die_when_the_test_process_is_killed(tmp_path: Path) -> None:
    """An interrupted test session (even SIGKILL) leaves no control-plane process behind."""
    script = (
        "import json, sys, time\n"
        "from pathlib import Path\n"
        "from localcluster.cluster import LocalCluster\n"
        f"cluster = LocalCluster(workdir=Path({str(tmp_path / 'doomed')!r}))\n"
        "cluster.start()\n"
        "print(json.dumps({n: p.pid for n, p in cluster.processes.items()}), flush=True)\n"
        "time.sleep(600)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "e2e")}
    runner = subprocess.Popen(
        [sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert runner.stdout is not None
        pids: dict[str, int] = json.loads(runner.stdout.readline())
    finally:
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=10)
    for name, pid in pids.items():
        wait_until(
            lambda pid=pid: not _process_exists(pid), 15, f"{name} (pid {pid}) to exit with its parent"
        )
