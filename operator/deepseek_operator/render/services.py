"""Services: one per region, and the front Service that follows the active region."""

from __future__ import annotations

from typing import Any

from deepseek_operator.api import DeepSeekDeploymentSpec, ServiceType
from deepseek_operator.render.labels import common_labels, region_labels, region_selector
from deepseek_operator.render.names import front_service_name, region_service_name
from deepseek_operator.render.pods import PORT_NAME


def _ports(spec: DeepSeekDeploymentSpec) -> list[dict[str, Any]]:
    # Named "http" on the Service too: the ServiceMonitor selects the endpoint port by this name.
    return [{"name": PORT_NAME, "port": spec.service.port, "targetPort": PORT_NAME, "protocol": "TCP"}]


def render_region_service(
    name: str, namespace: str, spec: DeepSeekDeploymentSpec, region: str
) -> dict[str, Any]:
    """``<dsd>-<region>``: ClusterIP Service of one region's pods, both pools.

    Always rendered, standby regions included: it is how Prometheus reaches a region's pods (the
    ServiceMonitor scrapes through it), and how clients reach one region directly.
    """
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": region_service_name(name, region),
            "namespace": namespace,
            "labels": region_labels(name, region),
        },
        "spec": {
            "type": ServiceType.CLUSTER_IP.value,
            "selector": region_selector(name, region),
            "ports": _ports(spec),
        },
    }


def render_front_service(
    name: str, namespace: str, spec: DeepSeekDeploymentSpec, active_region: str
) -> dict[str, Any]:
    """``<dsd>``: the Service clients use (type ``spec.service.type``).

    It selects the pods of the region taking the traffic (the spec's Active region, or where the failover
    controller moved it); a new region re-renders it, which moves the traffic without clients changing
    address. It carries no region label, so the ServiceMonitor (which selects region Services) does not
    scrape the active pods twice.
    """
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": front_service_name(name),
            "namespace": namespace,
            "labels": common_labels(name),
        },
        "spec": {
            "type": spec.service.type.value,
            "selector": region_selector(name, active_region),
            "ports": _ports(spec),
        },
    }
