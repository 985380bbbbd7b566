"""Every sample in manifests/samples/ is accepted by the API server and reconciled to Ready=True."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from localcluster.operator import OperatorProcess
from localcluster.waiting import WaitTimeoutError
from sample_support import SAMPLES_DIR, Sample, reconcile_sample_to_ready, samples

pytestmark = pytest.mark.cluster


def test_the_samples_are_the_three_documented_ones() -> None:
    """A sample added or renamed without this test noticing would silently go unreconciled."""
    assert sorted(sample.path.name for sample in samples()) == [
        "large.yaml",
        "minimal.yaml",
        "production.yaml",
    ]


def test_samples_kustomization_lists_every_sample() -> None:
    kustomization = yaml.safe_load((SAMPLES_DIR / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(sample.path.name for sample in samples())


@pytest.mark.parametrize("sample", samples(), ids=lambda sample: sample.path.stem)
def test_sample_is_accepted_and_reconciled_to_ready(
    api_client: Any, namespace: str, operator: OperatorProcess, sample: Sample
) -> None:
    try:
        ready = reconcile_sample_to_ready(api_client, namespace, sample)
    except WaitTimeoutError as error:
        pytest.fail(f"{error}\noperator log:\n{operator.log_tail(80)}")
    status = ready["status"]
    assert status["activeRegion"] == next(
        region["name"] for region in sample.body["spec"]["regions"] if region["role"] == "Active"
    )
    assert status["readyReplicas"] == status["desiredReplicas"] > 0
    conditions = {condition["type"]: condition["status"] for condition in status["conditions"]}
    # Progressing may still be True: Ready counts the active region, standbys may still be rolling out.
    assert (conditions["Ready"], conditions["Degraded"]) == ("True", "False"), operator.log_tail()
