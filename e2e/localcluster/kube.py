"""The one place the harness makes Kubernetes API clients."""

from __future__ import annotations

from pathlib import Path

from kubernetes import client, config


def api_client_for(kubeconfig: Path) -> client.ApiClient:
    # new_client_from_config is not annotated upstream; its return type is documented as ApiClient.
    api: client.ApiClient = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    return api
