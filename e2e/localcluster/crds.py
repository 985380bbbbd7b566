"""Install a CustomResourceDefinition and wait until the API server serves it."""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from localcluster.waiting import wait_until


def apply_crd(api_client: client.ApiClient, crd: dict[str, Any]) -> None:
    """Create the CRD, or replace the one of the same name; return once it is Established."""
    extensions: Any = client.ApiextensionsV1Api(api_client)  # Any: the typed API wants models, we have dicts
    name = crd["metadata"]["name"]
    try:
        extensions.create_custom_resource_definition(crd)
    except ApiException as error:
        if error.status != 409:
            raise
        current = extensions.read_custom_resource_definition(name)
        replacement = {
            **crd,
            "metadata": {**crd["metadata"], "resourceVersion": current.metadata.resource_version},
        }
        extensions.replace_custom_resource_definition(name, replacement)

    def established() -> bool:
        conditions = extensions.read_custom_resource_definition(name).status.conditions or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    wait_until(established, 30, f"CRD {name} to be Established")
