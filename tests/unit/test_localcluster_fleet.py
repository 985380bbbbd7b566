"""The fleet file becomes the Node objects the issue asks for (pure, no cluster)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml
from localcluster.fleet import (
    DEFAULT_FLEET,
    GPU_PRODUCT_LABEL,
    GPU_RESOURCE,
    REGION_LABEL,
    ZONE_LABEL,
    Fleet,
    fleet_nodes,
    load_fleet,
)
from pydantic import ValidationError


def test_default_fleet_has_two_regions_two_zones_each_and_spot_and_on_demand_pools_per_region() -> None:
    nodes = fleet_nodes(load_fleet())
    gpu_nodes = [n for n in nodes if GPU_RESOURCE in n["status"]["capacity"]]
    regions = {n["metadata"]["labels"][REGION_LABEL] for n in gpu_nodes}
    assert regions == {"us-east", "eu-west"}
    for region in regions:
        in_region = [
            n["metadata"]["labels"] for n in gpu_nodes if n["metadata"]["labels"][REGION_LABEL] == region
        ]
        assert len({labels[ZONE_LABEL] for labels in in_region}) == 2
        assert {labels["karpenter.sh/capacity-type"] for labels in in_region} == {"spot", "on-demand"}
        assert {labels[GPU_PRODUCT_LABEL] for labels in in_region} == {
            "NVIDIA-H100-80GB-HBM3",
            "NVIDIA-A100-SXM4-80GB",
        }
    assert Counter(n["status"]["capacity"][GPU_RESOURCE] for n in gpu_nodes) == {"8": len(gpu_nodes)}
    cpu_nodes = [n for n in nodes if GPU_RESOURCE not in n["status"]["capacity"]]
    assert len(cpu_nodes) == 2
    assert all(n["spec"]["taints"] == [] for n in cpu_nodes)


def test_every_gpu_node_carries_the_gpu_taint_and_spot_nodes_the_spot_taint() -> None:
    for node in fleet_nodes(load_fleet()):
        labels = node["metadata"]["labels"]
        taints = {(t["key"], t["value"], t["effect"]) for t in node["spec"]["taints"]}
        if GPU_RESOURCE in node["status"]["capacity"]:
            assert ("nvidia.com/gpu", "present", "NoSchedule") in taints
        spot_taint = ("karpenter.sh/capacity-type", "spot", "NoSchedule")
        assert (spot_taint in taints) == (labels["karpenter.sh/capacity-type"] == "spot")


def test_node_names_are_unique_and_valid_dns_labels() -> None:
    names = [n["metadata"]["name"] for n in fleet_nodes(load_fleet())]
    assert len(names) == len(set(names)) == 14
    assert all(len(name) <= 63 and name == name.lower() for name in names)


def test_the_fleet_shape_is_data_tests_can_vary(tmp_path: Path) -> None:
    document = yaml.safe_load(DEFAULT_FLEET.read_text())
    document["regions"].append({"name": "ap-south", "zones": ["ap-south-1a"]})
    document["gpuPools"][0]["nodesPerZone"] = 3
    document["gpuPools"][1]["regions"] = ["us-east"]
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(document))
    nodes = fleet_nodes(load_fleet(path))
    by_pool = Counter(n["metadata"]["labels"]["localcluster.deepseek-operator.io/pool"] for n in nodes)
    assert by_pool["h100-on-demand"] == 3 * 5  # five zones in three regions
    assert by_pool["h100-spot"] == 2  # limited to us-east
    assert "ap-south" in {n["metadata"]["labels"][REGION_LABEL] for n in nodes}


def test_a_mistyped_fleet_key_is_rejected_with_its_name() -> None:
    document = yaml.safe_load(DEFAULT_FLEET.read_text())
    document["gpuPools"][0]["gpusPerNod"] = 8
    with pytest.raises(ValidationError, match="gpusPerNod"):
        Fleet.model_validate(document)


# --- a fleet per spot provider preset (issue 11) ---------------------------------------------------------

PRESET_FLEETS = DEFAULT_FLEET.parent


@pytest.mark.parametrize(
    ("preset", "spot_labels", "on_demand_labels", "spot_taint"),
    [
        # Karpenter applies no capacity taint; reserved capacity is not spot.
        (
            "karpenter",
            {"karpenter.sh/capacity-type": "spot"},
            [{"karpenter.sh/capacity-type": "on-demand"}, {"karpenter.sh/capacity-type": "reserved"}],
            None,
        ),
        # GKE: on-demand nodes carry no gke-spot label at all.
        (
            "gke",
            {"cloud.google.com/gke-spot": "true"},
            [{}],
            ("cloud.google.com/gke-spot", "true", "NoSchedule"),
        ),
        (
            "eks",
            {"eks.amazonaws.com/capacityType": "SPOT"},
            [
                {"eks.amazonaws.com/capacityType": "ON_DEMAND"},
                {"eks.amazonaws.com/capacityType": "CAPACITY_BLOCK"},
            ],
            None,
        ),
        (
            "aks",
            {"kubernetes.azure.com/scalesetpriority": "spot"},
            [{}],
            ("kubernetes.azure.com/scalesetpriority", "spot", "NoSchedule"),
        ),
    ],
)
def test_each_preset_fleet_labels_and_taints_nodes_as_its_provider_does(
    preset: str,
    spot_labels: dict[str, str],
    on_demand_labels: list[dict[str, str]],
    spot_taint: tuple[str, str, str] | None,
) -> None:
    provider_keys = {
        "karpenter.sh/capacity-type",
        "cloud.google.com/gke-spot",
        "eks.amazonaws.com/capacityType",
        "kubernetes.azure.com/scalesetpriority",
    }
    nodes = fleet_nodes(load_fleet(PRESET_FLEETS / f"{preset}.yaml"), preset)
    seen_on_demand = []
    for node in nodes:
        labels = node["metadata"]["labels"]
        provider = {key: value for key, value in labels.items() if key in provider_keys}
        taints = {(t["key"], t["value"], t["effect"]) for t in node["spec"]["taints"]}
        if labels["localcluster.deepseek-operator.io/capacity-type"] == "spot":
            assert provider == spot_labels
            assert (
                (spot_taint in taints)
                if spot_taint
                else taints == {("nvidia.com/gpu", "present", "NoSchedule")}
            )
        else:
            seen_on_demand.append(provider)
            assert taints == {("nvidia.com/gpu", "present", "NoSchedule")}
    assert sorted(map(str, seen_on_demand)) == sorted(
        map(str, [d for d in on_demand_labels for _ in range(2)])
    )
    # its own region: it can join a cluster of another fleet
    assert {n["metadata"]["labels"][REGION_LABEL] for n in nodes}.isdisjoint({"us-east", "eu-west"})


def test_the_faults_select_pools_by_name_region_zone_and_capacity_type() -> None:
    from localcluster.faults import pool_selector

    assert pool_selector() == "localcluster.deepseek-operator.io/fleet"
    assert pool_selector(pool="h100-spot", region="us-east", zone="us-east-1a") == (
        "localcluster.deepseek-operator.io/fleet,localcluster.deepseek-operator.io/pool=h100-spot,"
        "topology.kubernetes.io/region=us-east,topology.kubernetes.io/zone=us-east-1a"
    )
    assert pool_selector(capacity_type="spot").endswith(
        "localcluster.deepseek-operator.io/capacity-type=spot"
    )
