"""Every sample in manifests/samples/ is accepted by the API server and reconciled to Ready=True."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest
import yaml
from localcluster.cluster import LocalCluster
from localcluster.operator import OperatorProcess
from localcluster.tools import ensure_tools
from localcluster.waiting import WaitTimeoutError, wait_until
from operator_fixtures import Dsd
from sample_support import REPO_ROOT, SAMPLES_DIR, Sample, ready_sample, reconcile_sample_to_ready, samples

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


def readme_output(command: str) -> list[str]:
    """The lines the README shows under `$ <command>` in a console block."""
    readme = (REPO_ROOT / "README.md").read_text()
    for block in re.findall(r"```console\n(.*?)```", readme, flags=re.DOTALL):
        lines = block.splitlines()
        if f"$ {command}" in lines:
            after = lines[lines.index(f"$ {command}") + 1 :]
            end = next((i for i, line in enumerate(after) if line.startswith("$ ")), len(after))
            return after[:end]
    raise AssertionError(f"the README shows no `$ {command}`")


def test_the_readme_kubectl_get_examples_are_real_output(
    api_client: Any, namespace: str, operator: OperatorProcess, local_cluster: LocalCluster
) -> None:
    """`kubectl get dsd` and `kubectl get dsd -o wide` on the production sample print what the README
    shows, column for column; only AGE may differ."""
    kubectl = str(ensure_tools(["kubectl"])["kubectl"].path)
    production = next(sample for sample in samples() if sample.path.name == "production.yaml")
    with ready_sample(api_client, namespace, production):
        # The Fallback columns come from the spot controller's status, written beside the reconcile's.
        dsd = Dsd(api_client, namespace, production.name)
        wait_until(
            lambda: dsd.condition("FallbackActive"), 30, "the spot controller's FallbackActive condition"
        )
        for command in ("kubectl get dsd", "kubectl get dsd -o wide"):
            expected = readme_output(command)
            printed = subprocess.run(
                [
                    kubectl,
                    f"--kubeconfig={local_cluster.kubeconfig}",
                    f"--namespace={namespace}",
                    *command.split()[1:],
                ],
                capture_output=True,
                text=True,
                check=True,
                timeout=30,
            ).stdout.splitlines()
            assert len(printed) == len(expected) == 2, (command, printed, expected)
            assert printed[0] == expected[0], f"{command}: the header differs\n{printed[0]}\n{expected[0]}"
            age = printed[0].index("AGE")  # the last column: everything before it is the same
            assert printed[1][:age] == expected[1][:age], (
                f"{command}: the row differs\n{printed[1]}\n{expected[1]}"
            )
