"""Every spot provider preset through the real scheduler, on a fleet labelled and tainted as that provider
does (e2e/localcluster/fleets/<preset>.yaml, added to the session's cluster in its own region): spot pods
on spot nodes only, on-demand pods on every kind of node but spot, and the provider's interruption taint
acted on at once (issue 11)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from localcluster import faults
from localcluster.cluster import LocalCluster
from localcluster.fleet import CAPACITY_LABEL, DEFAULT_FLEET, POOL_LABEL
from localcluster.operator import OperatorProcess
from localcluster.waiting import wait_until
from spot_support import SpotDsd, spot_spec

pytestmark = pytest.mark.cluster

FLEETS = DEFAULT_FLEET.parent
# preset -> (region of its fleet, an on-demand pool of it to cordon so that on-demand pods must use the
# other kind of non-spot capacity, the node label those pods must then find)
PRESETS: dict[str, tuple[str, str | None, dict[str, str]]] = {
    "karpenter": ("karp-east", "karp-on-demand", {"karpenter.sh/capacity-type": "reserved"}),
    "gke": ("gke-central", None, {}),
    "eks": ("eks-west", "eks-on-demand", {"eks.amazonaws.com/capacityType": "CAPACITY_BLOCK"}),
    "aks": ("aks-north", None, {}),
}


@pytest.fixture(scope="module")
def preset_fleets(local_cluster: LocalCluster) -> Iterator[Any]:
    core: Any = client.CoreV1Api(local_cluster.api_client())
    for preset in PRESETS:
        local_cluster.add_fleet(FLEETS / f"{preset}.yaml", f"preset-{preset}")
    try:
        yield core
    finally:
        for preset in PRESETS:
            local_cluster.remove_fleet(f"preset-{preset}")


@pytest.mark.parametrize("preset", list(PRESETS))
def test_each_preset_places_pools_on_its_capacity_and_acts_on_its_interruption_taint(
    preset: str, preset_fleets: Any, api_client: Any, namespace: str, operator: OperatorProcess
) -> None:
    core = preset_fleets
    region, cordoned_pool, other_on_demand = PRESETS[preset]
    if cordoned_pool is not None:
        faults.cordon_nodes(core, faults.pool_selector(pool=cordoned_pool))
    try:
        dsd = SpotDsd(api_client, namespace, f"p-{preset}")
        dsd.create(spot_spec(replicas=4, on_demand_base=2, region=region, provider=preset))
        dsd.wait_ready(timeout=60)
        nodes = {node.metadata.name: node.metadata.labels for node in core.list_node().items}
        spot_pods = dsd.wait_pool_ready("spot", 2, region=region)
        on_demand_pods = dsd.wait_pool_ready("on-demand", 2, region=region)
        for pod in spot_pods:
            assert nodes[pod.spec.node_name][CAPACITY_LABEL] == "spot", pod.spec.node_name
        for pod in on_demand_pods:
            labels = nodes[pod.spec.node_name]
            assert labels[CAPACITY_LABEL] == "on-demand", pod.spec.node_name
            # With the plain on-demand pool cordoned, "not spot" still finds reserved capacity.
            assert other_on_demand.items() <= labels.items(), (pod.spec.node_name, labels[POOL_LABEL])

        # The provider's notice on one spot node: on-demand replicas in its place at once.
        node = spot_pods[0].spec.node_name
        on_node = sum(1 for pod in spot_pods if pod.spec.node_name == node)
        faults.taint_interruption(core, [node], preset)
        # (at least those on the node; more while the controller's view of another spot pod is not
        # Ready yet: only ready spot replicas count, as in SkyServe)
        wait_until(
            lambda: dsd.spot_region(region).get("fallbackReplicas", 0) >= on_node,
            5,
            f"{on_node} on-demand replicas in place of the spot ones on {node}",
        )
        interruption = dsd.spot_region(region)["interruptions"][0]
        assert (interruption["node"], interruption["signal"]) == (
            node,
            faults.INTERRUPTION_TAINTS[preset]["key"],
        )
        fallback = dsd.spot_region(region)["fallbackReplicas"]
        dsd.wait_pool_ready("on-demand", 2 + fallback, region=region, timeout=20)
    finally:
        faults.clear_interruptions(core, faults.pool_selector())
        faults.uncordon_nodes(core, faults.pool_selector())
