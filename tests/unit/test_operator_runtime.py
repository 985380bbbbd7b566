"""Small pure pieces of the operator runtime: command line, spec parsing, owner references, metrics."""

from __future__ import annotations

import pytest
from deepseek_operator.__main__ import kopf_arguments
from deepseek_operator.kube import ChildRef, MissingApiError, adopt
from deepseek_operator.metrics import parse_address
from deepseek_operator.reconcile import InvalidSpecError, parse_spec


def test_default_command_line_runs_the_handlers_standalone_cluster_wide_with_json_logs() -> None:
    assert kopf_arguments([]) == [
        "run",
        "-m",
        "deepseek_operator.handlers",
        "--log-format=json",
        "--standalone",
        "--all-namespaces",
    ]


def test_given_options_replace_the_defaults() -> None:
    arguments = kopf_arguments(["--namespace=serving", "--peering=prod", "--log-format=plain"])
    assert "--standalone" not in arguments
    assert "--all-namespaces" not in arguments
    assert "--log-format=json" not in arguments
    assert arguments[-3:] == ["--namespace=serving", "--peering=prod", "--log-format=plain"]


def test_parse_spec_names_each_bad_field() -> None:
    with pytest.raises(InvalidSpecError) as raised:
        parse_spec({"spec": {"model": {"name": "m"}, "replicas": -1, "regions": []}})
    message = str(raised.value)
    assert "spec.replicas: Input should be greater than or equal to 0" in message
    assert "spec.regions: " in message


def test_adopt_sets_one_controller_reference_and_leaves_the_input_alone() -> None:
    owner = {
        "apiVersion": "serving.deepseek-operator.io/v1alpha1",
        "kind": "DeepSeekDeployment",
        "metadata": {"name": "r1", "uid": "u-1", "labels": {"a": "b"}},
    }
    child = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "r1", "labels": {"x": "y"}}}
    adopted = adopt(child, owner)
    assert adopted["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "serving.deepseek-operator.io/v1alpha1",
            "kind": "DeepSeekDeployment",
            "name": "r1",
            "uid": "u-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert adopted["metadata"]["labels"] == {"x": "y"}, "the owner's labels are not copied"
    assert "ownerReferences" not in child["metadata"]
    assert ChildRef.of(adopted) == ChildRef("v1", "Service", "r1")


def test_missing_api_error_says_what_to_install() -> None:
    assert "install KEDA (keda.sh)" in str(MissingApiError("keda.sh/v1alpha1", "ScaledObject"))


@pytest.mark.parametrize(
    ("address", "expected"),
    [("0.0.0.0:9090", ("0.0.0.0", 9090)), (":9100", ("0.0.0.0", 9100)), ("127.0.0.1:1", ("127.0.0.1", 1))],
)
def test_metrics_address_parses(address: str, expected: tuple[str, int]) -> None:
    assert parse_address(address) == expected


def test_a_bad_metrics_address_names_the_variable() -> None:
    with pytest.raises(ValueError, match="DEEPSEEK_OPERATOR_METRICS_ADDRESS='9090' is not host:port"):
        parse_address("9090")
