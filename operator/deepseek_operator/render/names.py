"""Names of the child objects.

The CRD caps metadata.name at 40 characters and region names at 20, so that the longest
DNS-1035-limited name, the region Service ``<name>-<region>``, stays within 63 characters.
Deployment names may be longer (up to 253): ``<name>-<region>-on-demand`` is at most 71.
"""

from __future__ import annotations

from deepseek_operator.api import CapacityPool


def deployment_name(name: str, region: str, pool: CapacityPool) -> str:
    """Deployment of one capacity pool of one region: ``<dsd>-<region>-<pool>``."""
    return f"{name}-{region}-{pool.value}"


def region_service_name(name: str, region: str) -> str:
    """Service of one region's pods: ``<dsd>-<region>``."""
    return f"{name}-{region}"


def front_service_name(name: str) -> str:
    """Service clients use; it follows the active region: ``<dsd>``."""
    return name


def autoscaler_name(name: str) -> str:
    """HorizontalPodAutoscaler or KEDA ScaledObject: ``<dsd>``."""
    return name


def disruption_budget_name(name: str, region: str) -> str:
    """PodDisruptionBudget of one region: ``<dsd>-<region>``."""
    return f"{name}-{region}"


def monitoring_name(name: str) -> str:
    """ServiceMonitor and PrometheusRule: ``<dsd>``."""
    return name
