"""Region Services, the front Service, PodDisruptionBudgets, and the names they get."""

from __future__ import annotations

import re
from typing import Any

from deepseek_operator.api import (
    MAX_NAME_LENGTH,
    MAX_REGION_NAME_LENGTH,
    CapacityPool,
)
from deepseek_operator.render import deployment_name, region_service_name, render_children, selector_string
from deepseek_operator.render.disruption import render_disruption_budget
from deepseek_operator.render.labels import POOL_LABEL, region_selector
from deepseek_operator.render.services import render_front_service, render_region_service
from render_support import make_spec

DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def test_region_service() -> None:
    service = render_region_service(
        "r1", "ml", make_spec(service={"port": 80, "type": "LoadBalancer"}), "us-west-2"
    )
    assert (service["apiVersion"], service["kind"]) == ("v1", "Service")
    assert service["metadata"]["name"] == "r1-us-west-2"
    assert service["metadata"]["namespace"] == "ml"
    assert service["metadata"]["labels"]["serving.deepseek-operator.io/region"] == "us-west-2"
    assert service["metadata"]["labels"]["app.kubernetes.io/component"] == "inference"
    assert service["spec"] == {
        "type": "ClusterIP",  # region Services stay internal whatever the front Service is
        "selector": {
            "serving.deepseek-operator.io/deployment": "r1",
            "serving.deepseek-operator.io/region": "us-west-2",
        },
        "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
    }


def test_front_service_follows_the_active_region() -> None:
    spec = make_spec(service={"port": 443, "type": "NodePort"})
    service = render_front_service("r1", "ml", spec, "us-west-2")
    assert service["metadata"]["name"] == "r1"
    assert "serving.deepseek-operator.io/region" not in service["metadata"]["labels"]
    assert service["metadata"]["labels"]["app.kubernetes.io/component"] == "inference"
    assert service["spec"]["type"] == "NodePort"
    assert service["spec"]["selector"] == region_selector("r1", "us-west-2")
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 443, "targetPort": "http", "protocol": "TCP"}
    ]


def test_front_service_in_render_children_uses_the_override() -> None:
    spec = make_spec()

    def front(active_region: str | None) -> dict[str, Any]:
        return next(
            child
            for child in render_children("r1", "ml", spec, active_region)
            if child["kind"] == "Service" and child["metadata"]["name"] == "r1"
        )

    assert front(None)["spec"]["selector"]["serving.deepseek-operator.io/region"] == "us-east-1"
    assert front("us-west-2")["spec"]["selector"]["serving.deepseek-operator.io/region"] == "us-west-2"
    assert front(None)["spec"]["type"] == "ClusterIP"


def test_disruption_budget_per_region_covers_its_on_demand_pods_only() -> None:
    """Spot pods have no budget: it would hold up the drain of an interrupted spot node."""
    budget = render_disruption_budget("r1", "ml", "us-east-1")
    assert (budget["apiVersion"], budget["kind"]) == ("policy/v1", "PodDisruptionBudget")
    assert budget["metadata"]["name"] == "r1-us-east-1"
    assert budget["spec"] == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": {**region_selector("r1", "us-east-1"), POOL_LABEL: "on-demand"}},
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
    }
    names = [
        c["metadata"]["name"]
        for c in render_children("r1", "ml", make_spec())
        if c["kind"] == "PodDisruptionBudget"
    ]
    assert names == ["r1-us-east-1", "r1-us-west-2"]


def test_longest_names_stay_within_kubernetes_limits() -> None:
    name = "d" * MAX_NAME_LENGTH
    region = "r" * MAX_REGION_NAME_LENGTH
    service = region_service_name(name, region)
    assert len(service) <= 63
    assert DNS_1035_LABEL.match(service)
    assert len(deployment_name(name, region, CapacityPool.ON_DEMAND)) <= 253


def test_selector_string_for_the_scale_subresource() -> None:
    assert selector_string(region_selector("r1", "us-east-1")) == (
        "serving.deepseek-operator.io/deployment=r1,serving.deepseek-operator.io/region=us-east-1"
    )
