"""The simulated GPU fleet: a YAML description turned into kwok-managed Node objects (pure functions)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

DEFAULT_FLEET = Path(__file__).parent / "fleets" / "default.yaml"
REGION_LABEL = "topology.kubernetes.io/region"
ZONE_LABEL = "topology.kubernetes.io/zone"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
# Marks nodes created by this harness, so `down` and tests can find them and nothing else.
FLEET_LABEL = "localcluster.deepseek-operator.io/fleet"
POOL_LABEL = "localcluster.deepseek-operator.io/pool"
# The harness's own name for a pool's capacity type (spot or on-demand), whatever the provider's labels
# say: faults select spot pools by it.
CAPACITY_LABEL = "localcluster.deepseek-operator.io/capacity-type"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Taint(_Model):
    key: str
    value: str = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class Region(_Model):
    name: str
    zones: list[str] = Field(min_length=1)


class GpuPool(_Model):
    name: str
    capacity_type: Literal["on-demand", "spot"] = Field(alias="capacityType")
    gpu_product: str = Field(alias="gpuProduct")
    gpus_per_node: int = Field(alias="gpusPerNode", ge=1)
    nodes_per_zone: int = Field(alias="nodesPerZone", ge=0)
    instance_type: str = Field(alias="instanceType")
    taints: list[Taint] = []
    labels: dict[str, str] = Field(
        default_factory=dict, description="the provider's node labels (override capacityTypeLabel's)"
    )
    regions: list[str] | None = Field(default=None, description="limit the pool to these regions")


class CpuNodes(_Model):
    count: int = Field(ge=0)
    region: str
    zone: str
    resources: dict[str, str]


class Fleet(_Model):
    # The node label set to the pool's capacityType (spot, on-demand); unset for providers whose labels
    # are spelled out per pool (GKE's and AKS's on-demand nodes carry none).
    capacity_type_label: str | None = Field(default=None, alias="capacityTypeLabel")
    regions: list[Region] = Field(min_length=1)
    gpu_pools: list[GpuPool] = Field(alias="gpuPools")
    gpu_taint: Taint = Field(alias="gpuTaint")
    gpu_node_resources: dict[str, str] = Field(alias="gpuNodeResources")
    cpu_nodes: CpuNodes = Field(alias="cpuNodes")


def load_fleet(path: Path = DEFAULT_FLEET) -> Fleet:
    return Fleet.model_validate(yaml.safe_load(path.read_text()))


def _node(
    name: str, labels: dict[str, str], taints: list[Taint], resources: dict[str, str]
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
                **labels,
            },
            # kwok manages nodes with this annotation; kept for clusters whose kwok uses the selector.
            "annotations": {"kwok.x-k8s.io/node": "fake"},
        },
        "spec": {"taints": [taint.model_dump(exclude_defaults=False) for taint in taints]},
        "status": {"capacity": dict(resources), "allocatable": dict(resources)},
    }


def fleet_nodes(fleet: Fleet, fleet_name: str = "default") -> list[dict[str, Any]]:
    """Every Node of the fleet, in a stable order."""
    nodes: list[dict[str, Any]] = []
    for region in fleet.regions:
        for pool in fleet.gpu_pools:
            if pool.regions is not None and region.name not in pool.regions:
                continue
            for zone in region.zones:
                for index in range(pool.nodes_per_zone):
                    labels = {
                        FLEET_LABEL: fleet_name,
                        POOL_LABEL: pool.name,
                        CAPACITY_LABEL: pool.capacity_type,
                        REGION_LABEL: region.name,
                        ZONE_LABEL: zone,
                        "node.kubernetes.io/instance-type": pool.instance_type,
                        **(
                            {fleet.capacity_type_label: pool.capacity_type}
                            if fleet.capacity_type_label
                            else {}
                        ),
                        GPU_PRODUCT_LABEL: pool.gpu_product,
                        "nvidia.com/gpu.count": str(pool.gpus_per_node),
                        "nvidia.com/gpu.present": "true",
                        **pool.labels,
                    }
                    resources = {**fleet.gpu_node_resources, GPU_RESOURCE: str(pool.gpus_per_node)}
                    nodes.append(
                        _node(
                            f"gpu-{zone}-{pool.name}-{index}",
                            labels,
                            [fleet.gpu_taint, *pool.taints],
                            resources,
                        )
                    )
    cpu = fleet.cpu_nodes
    for index in range(cpu.count):
        labels = {
            FLEET_LABEL: fleet_name,
            POOL_LABEL: "cpu",
            REGION_LABEL: cpu.region,
            ZONE_LABEL: cpu.zone,
            "node.kubernetes.io/instance-type": "m7i.8xlarge",
            CAPACITY_LABEL: "on-demand",
            **({fleet.capacity_type_label: "on-demand"} if fleet.capacity_type_label else {}),
        }
        nodes.append(_node(f"cpu-{cpu.zone}-{index}", labels, [], cpu.resources))
    return nodes
