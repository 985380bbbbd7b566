"""Labels of every child object, and the (deliberately small) selectors.

Selectors of Deployments are immutable, so they use only the three ``serving.deepseek-operator.io``
labels that can never change for a given object: deployment, region and pool.
"""

from __future__ import annotations

from deepseek_operator.api import GROUP, CapacityPool

APP_NAME = "deepseek-inference"
COMPONENT = "inference"
MANAGED_BY = "deepseek-operator"
PART_OF = "deepseek-operator"

DEPLOYMENT_LABEL = f"{GROUP}/deployment"
REGION_LABEL = f"{GROUP}/region"
POOL_LABEL = f"{GROUP}/pool"
CONFIG_HASH_ANNOTATION = f"{GROUP}/config-hash"

Labels = dict[str, str]


def common_labels(name: str) -> Labels:
    """Labels on every child of the DeepSeekDeployment ``name``."""
    return {
        "app.kubernetes.io/name": APP_NAME,
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/component": COMPONENT,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/part-of": PART_OF,
        DEPLOYMENT_LABEL: name,
    }


def region_labels(name: str, region: str) -> Labels:
    """Labels of the children that belong to one region (region Service, PDB)."""
    return {**common_labels(name), REGION_LABEL: region}


def pool_labels(name: str, region: str, pool: CapacityPool) -> Labels:
    """Labels of a Deployment and its pods."""
    return {**region_labels(name, region), POOL_LABEL: pool.value}


def deployment_selector(name: str) -> Labels:
    """Every pod of the DeepSeekDeployment, in all regions."""
    return {DEPLOYMENT_LABEL: name}


def region_selector(name: str, region: str) -> Labels:
    """The pods of one region, both pools (what a region Service selects)."""
    return {DEPLOYMENT_LABEL: name, REGION_LABEL: region}


def pool_selector(name: str, region: str, pool: CapacityPool) -> Labels:
    """The pods of one Deployment."""
    return {DEPLOYMENT_LABEL: name, REGION_LABEL: region, POOL_LABEL: pool.value}


def selector_string(selector: Labels) -> str:
    """A label selector in its string form, e.g. for ``status.selector`` (the /scale subresource)."""
    return ",".join(f"{key}={value}" for key, value in selector.items())
