"""The DeepSeekDeployments the kind path applies are accepted by the CRD (OpenAPI schema and CEL rules),
checked with a server-side dry run: on the local cluster in `make test`, before any kind cluster exists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from e2e_env import KIND_SIMULATOR_SAMPLE, Environment, load_manifest, production_sample
from e2e_kube import GROUP, PLURAL, VERSION
from kubernetes import client
from kubernetes.client.exceptions import ApiException

pytestmark = pytest.mark.cluster

# What the suite applies on kind: the simulator sample as is, and the production sample with the
# simulator overlay (production_sample() of an environment that runs containers).
KIND_ENVIRONMENT = Environment(given_kubeconfig=Path("kind-kubeconfig"), operator_in_cluster=True)
KIND_SAMPLES = {
    "sample-simulator": lambda: load_manifest(KIND_SIMULATOR_SAMPLE),
    "production-on-kind": lambda: production_sample(KIND_ENVIRONMENT),
}


@pytest.mark.parametrize("sample", list(KIND_SAMPLES))
def test_kind_sample_is_accepted_by_the_crd(
    api_client: Any, namespace: str, deepseek_crd: None, sample: str
) -> None:
    manifest = KIND_SAMPLES[sample]()
    custom: Any = client.CustomObjectsApi(api_client)

    accepted = custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, manifest, dry_run="All"
    )

    # What the API server would store: the simulator image, never pulled (kind has no registry).
    image = accepted["spec"]["image"]
    assert (image["repository"], image["tag"], image["pullPolicy"]) == ("deepseek-simulator", "e2e", "Never")
    assert accepted["spec"]["resources"]["gpuProducts"] == ["NVIDIA-H100-80GB-HBM3"]
    # Schema defaults were applied, so the object went through the CRD's structural schema.
    assert accepted["spec"]["engine"]["tensorParallelSize"] == 1
    # A dry run stores nothing.
    with pytest.raises(ApiException) as missing:
        custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, manifest["metadata"]["name"])
    assert missing.value.status == 404
