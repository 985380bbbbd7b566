"""The data plane's pure rules: which pods run a process, their environment, probes and status, the
Service proxy's endpoint choice, and the loopback guard (no cluster needed)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from deepseek_operator.api import CapacityPool, DeepSeekDeploymentSpec
from deepseek_operator.render.deployments import render_deployment
from localcluster.addresses import AddressAllocator, NotLoopbackError, is_loopback, require_loopback
from localcluster.cluster import kwok_stages
from localcluster.podspec import (
    ContainerConfigError,
    ContainerState,
    Probe,
    container_environment,
    container_plan,
    kwok_exclusion,
    pod_status,
    restart_backoff_seconds,
    runs_simulator,
)
from localcluster.serviceproxy import Endpoint, choose_endpoints, endpoints_for_port


def _pod(image: str = "deepseek-simulator:e2e", **container: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "p-1", "namespace": "ns", "uid": "u-1", "labels": {"app": "x"}},
        "spec": {
            "nodeName": "node-a",
            "containers": [
                {
                    "name": "inference",
                    "image": image,
                    "ports": [{"name": "http", "containerPort": 8080}],
                    **container,
                }
            ],
        },
    }


def _no_data(_namespace: str, _name: str) -> Mapping[str, str] | None:
    return None


@pytest.mark.parametrize(
    ("image", "runs"),
    [
        ("deepseek-simulator:e2e", True),
        ("deepseek-simulator", True),
        ("ghcr.io/deepseek-operator/deepseek-simulator:0.1.0", True),
        ("localhost:5000/deepseek-simulator@sha256:" + "a" * 64, True),
        ("ghcr.io/deepseek-operator/inference:0.1.0", False),
        ("deepseek-simulator-extra:1", False),
        ("registry/not-deepseek-simulator:1", False),
    ],
)
def test_pods_run_by_the_data_plane_are_those_of_the_simulator_image(image: str, runs: bool) -> None:
    assert runs_simulator(_pod(image)) is runs


def test_every_kwok_pod_stage_leaves_simulator_pods_alone() -> None:
    pod_stages = [s for s in kwok_stages() if s["spec"]["resourceRef"]["kind"] == "Pod"]
    assert pod_stages
    for stage in pod_stages:
        assert kwok_exclusion() in stage["spec"]["selector"]["matchExpressions"], stage["metadata"]["name"]
    node_stages = [s for s in kwok_stages() if s["spec"]["resourceRef"]["kind"] == "Node"]
    assert all(kwok_exclusion() not in s["spec"]["selector"].get("matchExpressions", []) for s in node_stages)


def test_the_environment_resolves_values_fields_secrets_and_references() -> None:
    pod = _pod(
        env=[
            {"name": "DSD_ENGINE", "value": "vllm"},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hub", "key": "token"}}},
            {"name": "GREETING", "value": "$(POD) says hi"},
            {
                "name": "OPTIONAL",
                "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k", "optional": True}},
            },
        ]
    )

    def secrets(namespace: str, name: str) -> Mapping[str, str] | None:
        return {"token": "hf_x"} if (namespace, name) == ("ns", "hub") else None

    env = container_environment(pod, pod["spec"]["containers"][0], secrets, _no_data)
    assert env == {
        "DSD_ENGINE": "vllm",
        "POD": "p-1",
        "APP": "x",
        "HF_TOKEN": "hf_x",
        "GREETING": "p-1 says hi",
    }


def test_a_missing_secret_is_a_container_config_error_naming_it() -> None:
    pod = _pod(env=[{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hub", "key": "token"}}}])
    with pytest.raises(ContainerConfigError, match="Secret 'hub' for variable HF_TOKEN"):
        container_environment(pod, pod["spec"]["containers"][0], _no_data, _no_data)


def test_the_operators_rendered_pod_runs_with_its_probes_prestop_and_grace() -> None:
    """The plan of a pod exactly as the operator renders it (the contract is exercised, not bypassed)."""
    spec = DeepSeekDeploymentSpec.model_validate(
        {
            "model": {"name": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "servedModelName": "r1"},
            "image": {"repository": "deepseek-simulator", "tag": "e2e"},
            "regions": [{"name": "us-east", "role": "Active"}],
            "failover": {"enabled": False},
            "engine": {"maxBatchSize": 2},
            "rollout": {"drainSeconds": 5},
        }
    )
    deployment = render_deployment("d", "ns", spec, spec.regions[0], CapacityPool.ON_DEMAND, 1)
    template = deployment["spec"]["template"]
    pod = {
        "metadata": {"name": "d-x", "namespace": "ns", "uid": "u", **template["metadata"]},
        "spec": template["spec"],
    }
    assert runs_simulator(pod)
    plan = container_plan(pod, _no_data, _no_data)
    assert plan.env["DSD_MAX_NUM_SEQS"] == "2"
    assert plan.env["DSD_SERVED_MODEL_NAME"] == "r1"
    assert plan.env["DSD_DRAIN_SECONDS"] == "5"
    assert plan.port == 8080
    assert plan.readiness == Probe("/health", 8080, 5, 1, 3, 1, 0)
    assert plan.startup is not None
    assert plan.startup.failure_threshold == 180
    assert plan.liveness is not None
    assert plan.liveness.timeout_seconds == 5
    assert plan.pre_stop_sleep_seconds == 10
    assert plan.grace_seconds == 10 + 5 + 10


def test_probes_need_http_get_and_a_known_port() -> None:
    with pytest.raises(ContainerConfigError, match="only httpGet"):
        container_plan(_pod(readinessProbe={"exec": {"command": ["true"]}}), _no_data, _no_data)
    with pytest.raises(ContainerConfigError, match="no port named 'metrics'"):
        container_plan(_pod(readinessProbe={"httpGet": {"path": "/", "port": "metrics"}}), _no_data, _no_data)


def test_status_reports_ready_running_and_keeps_transition_times() -> None:
    running = ContainerState(
        name="inference", image="i", phase="running", started_at="t0", started=True, ready=True
    )
    first = pod_status(running, "Running", "10.246.0.1", "10.0.0.1", "t0", [], "t1")
    conditions = {c["type"]: c for c in first["conditions"]}
    assert conditions["Ready"]["status"] == "True"
    assert conditions["Ready"]["lastTransitionTime"] == "t1"
    assert first["podIP"] == "10.246.0.1"
    assert first["containerStatuses"][0]["state"] == {"running": {"startedAt": "t0"}}
    again = pod_status(running, "Running", "10.246.0.1", "10.0.0.1", "t0", first["conditions"], "t2")
    assert {c["type"]: c["lastTransitionTime"] for c in again["conditions"]}["Ready"] == "t1"
    not_ready = pod_status(
        ContainerState(name="inference", image="i", phase="running", started_at="t0"),
        "Running",
        "10.246.0.1",
        None,
        "t0",
        again["conditions"],
        "t3",
    )
    assert {c["type"]: (c["status"], c["lastTransitionTime"]) for c in not_ready["conditions"]}["Ready"] == (
        "False",
        "t3",
    )


def test_restart_back_off_doubles_from_ten_seconds_up_to_five_minutes() -> None:
    assert [restart_backoff_seconds(n) for n in range(7)] == [0, 10, 20, 40, 80, 160, 300]


def _slice(endpoints: list[dict[str, Any]], port_name: str = "http", port: int = 8080) -> dict[str, Any]:
    return {
        "metadata": {"name": "s", "namespace": "ns"},
        "ports": [{"name": port_name, "port": port}],
        "endpoints": endpoints,
    }


def _endpoint(pod: str, **conditions: bool) -> dict[str, Any]:
    return {
        "addresses": ["10.246.0.9"],
        "targetRef": {"kind": "Pod", "name": pod, "namespace": "ns"},
        "conditions": conditions,
    }


def test_the_proxy_prefers_ready_endpoints_then_serving_terminating_ones() -> None:
    slices = [
        _slice(
            [
                _endpoint("ready", ready=True, serving=True, terminating=False),
                _endpoint("draining", ready=False, serving=True, terminating=True),
                _endpoint("starting", ready=False, serving=False, terminating=False),
            ]
        )
    ]
    endpoints = endpoints_for_port(slices, "http")
    assert [e.pod_name for e in choose_endpoints(endpoints)] == ["ready"]
    without_ready = [e for e in endpoints if e.pod_name != "ready"]
    assert [e.pod_name for e in choose_endpoints(without_ready)] == ["draining"]
    assert choose_endpoints([e for e in endpoints if e.pod_name == "starting"]) == []
    assert endpoints_for_port(slices, "metrics") == []


def test_a_nil_ready_condition_counts_as_ready() -> None:
    (endpoint,) = endpoints_for_port([_slice([_endpoint("p")])], "http")
    assert endpoint == Endpoint("ns", "p", 8080, ready=True, serving=True, terminating=False)


def test_traffic_goes_to_loopback_only() -> None:
    assert require_loopback("127.16.1.1") == "127.16.1.1"
    for address in ("10.246.0.1", "10.244.3.4", "0.0.0.0", "::1", "localhost", ""):
        assert not is_loopback(address)
        with pytest.raises(NotLoopbackError):
            require_loopback(address)


def test_addresses_are_never_handed_out_twice() -> None:
    allocator = AddressAllocator(block=42)
    pods = [allocator.pod_address() for _ in range(600)]
    assert len(set(pods)) == 600
    assert all(a.startswith("127.42.") and is_loopback(a) for a in pods)
    assert (
        allocator.service_address("ns/a")
        == allocator.service_address("ns/a")
        != allocator.service_address("ns/b")
    )
    assert not set(pods) & {allocator.service_address("ns/a"), allocator.service_address("ns/b")}
    assert not is_loopback(allocator.pod_ip())
