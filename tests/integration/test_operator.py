"""The operator, as a real process, against the real local control plane (issue 3's integration tests)."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from localcluster.cluster import LocalCluster
from localcluster.operator import OperatorProcess
from localcluster.waiting import wait_until
from operator_fixtures import (
    DEPLOYMENT_LABEL,
    GROUP,
    PLURAL,
    POOL_LABEL,
    REGION_LABEL,
    VERSION,
    Dsd,
    two_region_spot_spec,
)

pytestmark = pytest.mark.cluster

CONFIG_HASH = f"{GROUP}/config-hash"


@pytest.fixture
def dsd(api_client: Any, namespace: str, operator: OperatorProcess) -> Dsd:
    return Dsd(api_client, namespace, "r1")


def node_labels(core: Any, node_name: str) -> dict[str, str]:
    labels: dict[str, str] = core.read_node(node_name).metadata.labels
    return labels


def test_create_makes_every_child_and_pods_become_ready_on_the_right_nodes(dsd: Dsd) -> None:
    started = time.monotonic()
    created = dsd.create(two_region_spot_spec(replicas=4))
    current = dsd.wait_ready()
    converged = time.monotonic() - started
    print(f"converged in {converged:.2f}s")  # reported in the issue note

    # Children: a Deployment per region and pool, owned by the DeepSeekDeployment.
    deployments = {d.metadata.name: d for d in dsd.deployments()}
    assert set(deployments) == {
        "r1-us-east-on-demand",
        "r1-us-east-spot",
        "r1-eu-west-on-demand",
        "r1-eu-west-spot",
    }
    for deployment in deployments.values():
        (owner,) = deployment.metadata.owner_references
        assert (owner.kind, owner.name, owner.uid, owner.controller) == (
            "DeepSeekDeployment",
            "r1",
            created["metadata"]["uid"],
            True,
        )
        # Server-side apply under the operator's own field manager (the controller manager writes status).
        appliers = {f.manager for f in deployment.metadata.managed_fields if f.operation == "Apply"}
        assert appliers == {"deepseek-operator"}, deployment.metadata.managed_fields
    # on-demand = base 1 + ceil(3 * 50%) = 3, spot 1; the standby keeps 1 warm on-demand replica.
    replicas = {name: d.spec.replicas for name, d in deployments.items()}
    assert replicas == {
        "r1-us-east-on-demand": 3,
        "r1-us-east-spot": 1,
        "r1-eu-west-on-demand": 1,
        "r1-eu-west-spot": 0,
    }

    services = {s.metadata.name: s for s in dsd.core.list_namespaced_service(dsd.namespace).items}
    assert {"r1", "r1-us-east", "r1-eu-west"} <= set(services)
    assert services["r1"].spec.selector == {DEPLOYMENT_LABEL: "r1", REGION_LABEL: "us-east"}
    for name in ("r1", "r1-us-east", "r1-eu-west"):
        appliers = {f.manager for f in services[name].metadata.managed_fields if f.operation == "Apply"}
        assert appliers == {"deepseek-operator"}, services[name].metadata.managed_fields
    budgets = client.PolicyV1Api(dsd.api_client).list_namespaced_pod_disruption_budget(dsd.namespace).items
    assert {b.metadata.name for b in budgets} == {"r1-us-east", "r1-eu-west"}

    # Pods run where the pool says: region, GPU product and capacity type of the node.
    pods = dsd.ready_pods()
    assert len(pods) == 5
    for pod in pods:
        labels = node_labels(dsd.core, pod.spec.node_name)
        assert labels["topology.kubernetes.io/region"] == pod.metadata.labels[REGION_LABEL]
        assert labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
        assert labels["karpenter.sh/capacity-type"] == pod.metadata.labels[POOL_LABEL]
        assert pod.spec.containers[0].resources.limits["nvidia.com/gpu"] == "1"

    status = current["status"]
    assert status["activeRegion"] == "us-east"
    assert status["ready"] == "4/4"
    assert status["spotShare"] == "25%"
    assert status["replicas"] == 4
    assert status["selector"] == f"{DEPLOYMENT_LABEL}=r1,{REGION_LABEL}=us-east"
    assert status["observedGeneration"] == current["metadata"]["generation"]
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Ready"]["reason"] == "AllReplicasReady"
    assert conditions["Progressing"]["status"] == "False"
    assert conditions["Degraded"]["status"] == "False"
    regions = {r["name"]: r for r in status["regions"]}
    assert regions["eu-west"] == {
        "name": "eu-west",
        "role": "Standby",
        "desiredReplicas": 1,
        "readyReplicas": 1,
        "pools": [
            {"name": "on-demand", "desiredReplicas": 1, "readyReplicas": 1},
            {"name": "spot", "desiredReplicas": 0, "readyReplicas": 0},
        ],
    }


def test_spec_change_rolls_the_pods_and_reconverges(dsd: Dsd) -> None:
    dsd.create(two_region_spot_spec(replicas=2))
    dsd.wait_ready()
    before = {d.metadata.name: d.spec.template.metadata.annotations[CONFIG_HASH] for d in dsd.deployments()}
    old_pods = {p.metadata.name for p in dsd.pods()}

    dsd.patch_spec({"engine": {"maxBatchSize": 64}})

    def rolled() -> bool:
        deployments = dsd.deployments()
        hashes_changed = all(
            d.spec.template.metadata.annotations[CONFIG_HASH] != before[d.metadata.name] for d in deployments
        )
        env = {e.name: e.value for e in deployments[0].spec.template.spec.containers[0].env}
        new_pods = {p.metadata.name for p in dsd.ready_pods()}
        return (
            hashes_changed
            and env["DSD_MAX_NUM_SEQS"] == "64"
            and not (new_pods & old_pods)
            and len(new_pods) == 3
        )

    wait_until(rolled, 60, "every pod to be replaced by one with the new engine config")
    dsd.wait_ready()


def test_ready_stays_false_while_a_rollout_is_held_open(dsd: Dsd, local_cluster: LocalCluster) -> None:
    """maxUnavailable 0 (the default): the old pods keep serving while a new one cannot start, and
    Ready=True must not be written for the new generation until the new template serves."""
    from localcluster.tools import ensure_tools

    spec = two_region_spot_spec(replicas=2)
    spec["spot"] = {"enabled": False}
    dsd.create(spec)
    dsd.wait_ready()
    old_pods = {p.metadata.name for p in dsd.ready_pods()}
    assert len(old_pods) == 3

    # New pods ask for a GPU product no node of the fleet has: the surge pod stays Pending.
    patched = dsd.patch_spec({"resources": {"gpuProducts": ["NVIDIA-B200-NOT-IN-THE-FLEET"]}})
    generation = patched["metadata"]["generation"]

    def unschedulable_new_pod() -> Any:
        return next(
            (
                pod
                for pod in dsd.pods()
                if pod.metadata.labels[REGION_LABEL] == "us-east"
                and any(
                    c.type == "PodScheduled" and c.reason == "Unschedulable"
                    for c in pod.status.conditions or []
                )
            ),
            None,
        )

    wait_until(unschedulable_new_pod, 30, "the new us-east pod to be Pending (Unschedulable)")
    wait_until(
        lambda: (dsd.get().get("status") or {}).get("observedGeneration") == generation,
        30,
        f"the operator to act on generation {generation}",
    )
    # A few seconds of child events and reconciles: Ready never becomes True for this generation.
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        assert dsd.ready_for_generation() is None, dsd.get()["status"]
        time.sleep(0.1)
    kubectl = str(ensure_tools(["kubectl"])["kubectl"].path)
    waited = subprocess.run(
        [
            kubectl,
            f"--kubeconfig={local_cluster.kubeconfig}",
            f"--namespace={dsd.namespace}",
            "wait",
            "--for=condition=Ready",
            "dsd/r1",
            "--timeout=5s",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert waited.returncode != 0, f"kubectl wait returned at once: {waited.stdout}"

    status = dsd.get()["status"]
    conditions = {c["type"]: c for c in status["conditions"]}
    ready, progressing = conditions["Ready"], conditions["Progressing"]
    assert (ready["status"], ready["reason"], ready["observedGeneration"]) == (
        "False",
        "RollingOut",
        generation,
    )
    assert ready["message"].startswith("rolling out us-east/on-demand ("), ready["message"]
    assert "new replicas updated" in ready["message"], ready["message"]
    assert (progressing["status"], progressing["reason"]) == ("True", "RollingOut")
    assert "us-east/on-demand" in progressing["message"]
    assert old_pods <= {p.metadata.name for p in dsd.ready_pods()}, "the old pods keep serving"

    # A product the fleet has: the rollout finishes, and Ready follows.
    dsd.patch_spec({"resources": {"gpuProducts": ["NVIDIA-H100-80GB-HBM3"]}})
    dsd.wait_ready()


def operator_series(operator: OperatorProcess, namespace: str, name: str) -> list[str]:
    """The lines of the operator's /metrics about DeepSeekDeployment namespace/name."""
    with urllib.request.urlopen(f"http://{operator.metrics_address}/metrics", timeout=5) as response:
        text = response.read().decode()
    return [
        line
        for line in text.splitlines()
        if line.startswith("deepseek_operator_")
        and f'namespace="{namespace}"' in line
        and f'name="{name}"' in line
    ]


def test_metric_series_follow_the_spec_and_go_with_the_object(dsd: Dsd, operator: OperatorProcess) -> None:
    dsd.create(two_region_spot_spec(replicas=2))
    dsd.wait_ready()

    def replicas_series(**labels: str) -> list[str]:
        return [
            line
            for line in operator_series(operator, dsd.namespace, "r1")
            if line.startswith("deepseek_operator_replicas{")
            and all(f'{key}="{value}"' in line for key, value in labels.items())
        ]

    wait_until(lambda: replicas_series(pool="spot", region="us-east"), 30, "the spot gauges")

    dsd.patch_spec({"spot": {"enabled": False}})
    wait_until(lambda: not replicas_series(pool="spot"), 30, "the spot gauges to go with the spot pool")
    assert replicas_series(pool="on-demand", region="us-east")

    dsd.patch_spec({"regions": [{"name": "us-east", "role": "Active"}], "failover": {"enabled": False}})

    def eu_west_gone() -> bool:
        return not [
            line for line in operator_series(operator, dsd.namespace, "r1") if 'region="eu-west"' in line
        ]

    wait_until(eu_west_gone, 30, "the eu-west series to go with the region")
    assert replicas_series(region="us-east")

    dsd.custom.delete_namespaced_custom_object(GROUP, VERSION, dsd.namespace, PLURAL, "r1")
    wait_until(
        lambda: not operator_series(operator, dsd.namespace, "r1"),
        30,
        "every series of the deleted DeepSeekDeployment to go",
    )


def test_scale_subresource_resizes_the_active_region(dsd: Dsd) -> None:
    dsd.create(two_region_spot_spec(replicas=2))
    dsd.wait_ready()
    scale = dsd.custom.get_namespaced_custom_object_scale(GROUP, VERSION, dsd.namespace, PLURAL, "r1")
    assert scale["status"]["selector"] == f"{DEPLOYMENT_LABEL}=r1,{REGION_LABEL}=us-east"
    assert scale["spec"]["replicas"] == 2

    dsd.custom.patch_namespaced_custom_object_scale(
        GROUP, VERSION, dsd.namespace, PLURAL, "r1", {"spec": {"replicas": 6}}
    )

    current = dsd.wait_ready()
    replicas = {d.metadata.name: d.spec.replicas for d in dsd.deployments()}
    # 6 = base 1 + 5 above it: ceil(2.5) = 3 more on-demand, 2 spot.
    assert replicas["r1-us-east-on-demand"] == 4
    assert replicas["r1-us-east-spot"] == 2
    assert current["status"]["replicas"] == 6
    assert current["status"]["ready"] == "6/6"
    scale = dsd.custom.get_namespaced_custom_object_scale(GROUP, VERSION, dsd.namespace, PLURAL, "r1")
    assert scale["status"]["replicas"] == 6


def test_drift_on_owned_fields_is_reverted_and_foreign_fields_are_kept(dsd: Dsd) -> None:
    dsd.create(two_region_spot_spec(replicas=2))
    dsd.wait_ready()
    name = "r1-us-east-on-demand"
    # Another manager changes a field the operator owns, and adds fields the operator does not own.
    dsd.apps.patch_namespaced_deployment(
        name,
        dsd.namespace,
        {
            "spec": {"replicas": 7},
            "metadata": {"labels": {"team": "search"}, "annotations": {"owner/ticket": "OPS-42"}},
        },
    )

    def reverted() -> Any:
        deployment = dsd.apps.read_namespaced_deployment(name, dsd.namespace)
        return deployment if deployment.spec.replicas == 2 else None

    # 2 replicas = base 1 + ceil(1 * 50%) on-demand.
    deployment = wait_until(reverted, 30, "the operator to put replicas back to 2")
    assert deployment.metadata.labels["team"] == "search"
    assert deployment.metadata.annotations["owner/ticket"] == "OPS-42"

    # A deleted child comes back.
    dsd.core.delete_namespaced_service("r1-us-east", dsd.namespace)
    wait_until(
        lambda: any(
            s.metadata.name == "r1-us-east" for s in dsd.core.list_namespaced_service(dsd.namespace).items
        ),
        30,
        "the region Service to be recreated",
    )


def test_a_resync_without_change_writes_nothing(dsd: Dsd, operator: OperatorProcess) -> None:
    import logging

    from deepseek_operator.kube import Kube
    from deepseek_operator.reconcile import reconcile

    dsd.create(two_region_spot_spec(replicas=2))
    dsd.wait_ready()
    wait_until(
        lambda: (dsd.condition("Progressing") or {}).get("status") == "False", 30, "the rollout to finish"
    )
    # The spot controller writes its own status fields until it has seen every pod ready: wait for it,
    # so that only the reconcile below could change the object.
    wait_until(
        lambda: all(
            r.get("phase") == "Steady"
            for r in ((dsd.get()["status"].get("spot") or {}).get("regions") or [{}])
        ),
        30,
        "the spot controller steady",
    )

    def versions() -> dict[str, str]:
        children = {f"Deployment/{d.metadata.name}": d.metadata.resource_version for d in dsd.deployments()}
        for service in dsd.core.list_namespaced_service(dsd.namespace).items:
            children[f"Service/{service.metadata.name}"] = service.metadata.resource_version
        # The DeepSeekDeployment itself: what the reconcile's field manager owns, when it last wrote, and
        # the status it writes. (The failover controller writes status.failover and its conditions under
        # its own manager, on its own schedule: left out.)
        current = dsd.get()
        owned = [
            entry for entry in current["metadata"]["managedFields"] if entry["manager"] == "deepseek-operator"
        ]
        status = {key: value for key, value in current["status"].items() if key != "failover"}
        status["conditions"] = [
            c for c in status["conditions"] if c["type"] not in ("FailoverReady", "SignalsAvailable")
        ]
        children["DeepSeekDeployment/r1"] = json.dumps([owned, status], sort_keys=True)
        return children

    before = versions()
    result = reconcile(Kube(dsd.api_client), dsd.namespace, dsd.name, logging.getLogger("test"))
    assert len(result.applied) == 9
    assert not result.pruned
    assert not result.problems
    assert versions() == before


def test_turning_spot_and_autoscaling_off_prunes_their_children(dsd: Dsd) -> None:
    spec = two_region_spot_spec(replicas=2)
    spec["autoscaling"] = {"enabled": True, "minReplicas": 1, "maxReplicas": 4}
    dsd.create(spec)
    dsd.wait_ready()
    autoscaling = client.AutoscalingV2Api(dsd.api_client)
    (hpa,) = autoscaling.list_namespaced_horizontal_pod_autoscaler(dsd.namespace).items
    assert hpa.spec.scale_target_ref.kind == "DeepSeekDeployment"
    assert {m.pods.metric.name for m in hpa.spec.metrics} == {"vllm_num_requests_waiting"}

    dsd.patch_spec({"spot": {"enabled": False}, "autoscaling": {"enabled": False}})
    wait_until(
        lambda: (
            {d.metadata.name for d in dsd.deployments()} == {"r1-us-east-on-demand", "r1-eu-west-on-demand"}
        ),
        30,
        "the spot Deployments to be deleted",
    )
    wait_until(
        lambda: not autoscaling.list_namespaced_horizontal_pod_autoscaler(dsd.namespace).items, 30, "HPA gone"
    )
    current = dsd.wait_ready()
    assert current["status"]["spotShare"] == "0%"
    wait_until(lambda: len(dsd.ready_pods()) == 3 and len(dsd.pods()) == 3, 30, "only on-demand pods")


def test_a_missing_add_on_is_reported_in_status_and_events_not_a_crash_loop(dsd: Dsd) -> None:
    spec = two_region_spot_spec(replicas=1)
    spec["autoscaling"] = {"enabled": True, "provider": "keda", "minReplicas": 1, "maxReplicas": 4}
    spec["monitoring"] = {"prometheusUrl": "http://prometheus.monitoring:9090"}
    dsd.create(spec)

    def degraded() -> dict[str, Any] | None:
        condition = dsd.condition("Degraded")
        return condition if condition and condition["status"] == "True" else None

    condition = wait_until(degraded, 30, "Degraded=True")
    assert condition["reason"] == "ScaledObjectApiMissing"
    assert "install KEDA" in condition["message"]
    # Everything else is still applied and serving.
    wait_until(lambda: len(dsd.ready_pods()) == 2, 30, "the pods of both regions")

    def warning_event() -> Any:
        events = dsd.core.list_namespaced_event(dsd.namespace, field_selector="involvedObject.name=r1").items
        return next((e for e in events if e.reason == "ScaledObjectApiMissing" and e.type == "Warning"), None)

    event = wait_until(warning_event, 30, "a Warning event")
    assert "install KEDA" in event.message


def test_delete_removes_every_child(dsd: Dsd) -> None:
    dsd.create(two_region_spot_spec(replicas=2))
    dsd.wait_ready()
    dsd.custom.delete_namespaced_custom_object(GROUP, VERSION, dsd.namespace, PLURAL, "r1")

    def all_gone() -> bool:
        services = [
            s
            for s in dsd.core.list_namespaced_service(dsd.namespace).items
            if s.metadata.name.startswith("r1")
        ]
        return not dsd.deployments() and not services and not dsd.pods()

    # Quick because the CRD existed before the garbage collector started (see LocalCluster.crds).
    wait_until(all_gone, 20, "garbage collection of every child")


def _invalid_cases() -> list[Any]:
    import invalid_specs as table

    return [pytest.param(case, id=case["id"]) for case in table.INVALID_SPECS]


@pytest.mark.parametrize("case", _invalid_cases())
def test_the_api_server_rejects_an_invalid_deepseek_deployment(
    case: Any, api_client: Any, namespace: str, operator: OperatorProcess
) -> None:
    custom = client.CustomObjectsApi(api_client)
    with pytest.raises(ApiException) as raised:
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, case["object"])
    assert raised.value.status == 422, raised.value.body
    message = json.loads(raised.value.body)["message"]
    assert case["error"] in message


def test_valid_objects_of_the_table_are_accepted(
    api_client: Any, namespace: str, operator: OperatorProcess
) -> None:
    import invalid_specs as table

    custom = client.CustomObjectsApi(api_client)
    for obj in table.VALID_OBJECTS:
        created = custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, obj)
        assert created["metadata"]["name"] == obj["metadata"]["name"]


def test_kubectl_explain_describes_the_fields(local_cluster: LocalCluster, operator: OperatorProcess) -> None:
    import subprocess

    from localcluster.tools import ensure_tools

    kubectl = str(ensure_tools(["kubectl"])["kubectl"].path)
    result = subprocess.run(
        [kubectl, f"--kubeconfig={local_cluster.kubeconfig}", "explain", "dsd.spec.spot.spotPercentage"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "KIND:       DeepSeekDeployment" in result.stdout
    assert "FIELD: spotPercentage <integer>" in result.stdout
    description = result.stdout.split("DESCRIPTION:", 1)[1]
    assert "spot" in description.lower()
    assert len(description.split()) >= 8, f"a useful description, not a stub: {description!r}"


def test_status_never_goes_back_to_an_older_generation(dsd: Dsd) -> None:
    """Status written from a stale read would show the old spec after the new one (seen before the fix)."""
    dsd.create(two_region_spot_spec(replicas=2))
    dsd.wait_ready()
    samples: list[tuple[int, int]] = []
    for replicas in (6, 3, 5):
        dsd.custom.patch_namespaced_custom_object_scale(
            GROUP, VERSION, dsd.namespace, PLURAL, "r1", {"spec": {"replicas": replicas}}
        )
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            status = dsd.get().get("status") or {}
            samples.append((status.get("observedGeneration", 0), status.get("desiredReplicas", -1)))
            time.sleep(0.02)
    generations = [generation for generation, _ in samples]
    assert generations == sorted(generations), f"observedGeneration went backwards: {generations}"
    # Generation 1 asked for 2 replicas, then 6, 3, 5. A status stamped with generation g may already
    # show a newer spec (a single-child repair ran first), never an older one.
    desired_of_generation = {1: 2, 2: 6, 3: 3, 4: 5}
    for generation, desired in samples:
        newer_or_same = {value for g, value in desired_of_generation.items() if g >= generation}
        assert desired in newer_or_same, f"generation {generation} shows {desired}: an older spec"
    assert samples[-1][1] == 5


def test_switching_the_active_region_moves_traffic_and_replicas(dsd: Dsd) -> None:
    dsd.create(two_region_spot_spec(replicas=3))
    dsd.wait_ready()
    dsd.patch_spec(
        {"regions": [{"name": "us-east", "role": "Standby"}, {"name": "eu-west", "role": "Active"}]}
    )

    def switched() -> dict[str, Any] | None:
        current = dsd.ready_for_generation()
        return current if current and current["status"]["activeRegion"] == "eu-west" else None

    current = wait_until(switched, 30, "eu-west to become the active region")
    front = dsd.core.read_namespaced_service("r1", dsd.namespace)
    assert front.spec.selector == {DEPLOYMENT_LABEL: "r1", REGION_LABEL: "eu-west"}
    replicas = {d.metadata.name: d.spec.replicas for d in dsd.deployments()}
    # The new active region runs spec.replicas (3: base 1 + ceil(2 * 50%) = 2 on-demand, 1 spot); the old
    # one keeps the warm standby replica.
    assert replicas == {
        "r1-eu-west-on-demand": 2,
        "r1-eu-west-spot": 1,
        "r1-us-east-on-demand": 1,
        "r1-us-east-spot": 0,
    }
    assert current["status"]["selector"] == f"{DEPLOYMENT_LABEL}=r1,{REGION_LABEL}=eu-west"
    wait_until(
        lambda: (
            sorted(p.metadata.labels[REGION_LABEL] for p in dsd.ready_pods()) == ["eu-west"] * 3 + ["us-east"]
        ),
        30,
        "3 ready pods in eu-west and 1 in us-east",
    )
