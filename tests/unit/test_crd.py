"""The generated CustomResourceDefinition: up to date, structural, valid, and faithful to the models."""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from deepseek_operator.api import DeepSeekDeploymentSpec, EngineName, FailoverSignal, Quantization
from deepseek_operator.crd import CRD_FILE, build_crd, main, render_crd_yaml
from invalid_specs_table import load_invalid_specs

REPO_ROOT = Path(__file__).resolve().parents[2]

Schema = dict[str, Any]


@pytest.fixture(scope="module")
def crd() -> dict[str, Any]:
    return build_crd()


@pytest.fixture(scope="module")
def version(crd: dict[str, Any]) -> dict[str, Any]:
    versions: list[dict[str, Any]] = crd["spec"]["versions"]
    assert len(versions) == 1
    return versions[0]


@pytest.fixture(scope="module")
def root(version: dict[str, Any]) -> Schema:
    schema: Schema = version["schema"]["openAPIV3Schema"]
    return schema


def walk(schema: Schema, path: str = "") -> Iterator[tuple[str, Schema]]:
    """Every schema node with its path (``.spec.regions[].name``)."""
    yield path, schema
    for name, child in schema.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}")
    if "items" in schema:
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}{{}}")


def apply_defaults(value: Any, schema: Schema) -> None:
    """The API server's structural defaulting: set missing defaulted fields, then recurse."""
    if isinstance(value, dict):
        properties: dict[str, Schema] = schema.get("properties", {})
        for name, child in properties.items():
            if name not in value and "default" in child:
                value[name] = copy.deepcopy(child["default"])
        for name, item in value.items():
            if name in properties:
                apply_defaults(item, properties[name])
            elif isinstance(schema.get("additionalProperties"), dict):
                apply_defaults(item, schema["additionalProperties"])
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            apply_defaults(item, schema["items"])


# --- the file in crds/ -------------------------------------------------------------------------


def test_crd_file_is_up_to_date() -> None:
    committed = (REPO_ROOT / CRD_FILE).read_text(encoding="utf-8")
    assert committed == render_crd_yaml(), f"{CRD_FILE} is stale: run `make crds`"


def test_generation_is_deterministic_across_processes_and_hash_seeds() -> None:
    """Set and dict-of-set orders follow PYTHONHASHSEED: a render that depends on them differs between
    processes (as between a developer's `make crds` and CI's check), never within one."""
    renders = set()
    for seed in ("0", "1", "2", "12345"):
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from deepseek_operator.crd import render_crd_yaml; sys.stdout.write(render_crd_yaml())",
            ],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        renders.add(result.stdout)
    assert len(renders) == 1, "the CRD render depends on the hash seed"
    assert renders == {render_crd_yaml()}
    assert yaml.safe_load(render_crd_yaml()) == build_crd()


def test_main_writes_then_check_passes(tmp_path: Path) -> None:
    output = tmp_path / "crds" / "crd.yaml"
    assert main(["--output", str(output)]) == 0
    assert output.read_text(encoding="utf-8") == render_crd_yaml()
    assert main(["--check", "--output", str(output)]) == 0


def test_check_reports_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "crd.yaml"
    output.write_text(render_crd_yaml().replace("dsd", "ds"), encoding="utf-8")
    assert main(["--check", "--output", str(output)]) == 1
    assert f"{output} is stale: run `make crds`" in capsys.readouterr().err
    assert main(["--check", "--output", str(tmp_path / "missing.yaml")]) == 1


# --- the CRD object ----------------------------------------------------------------------------


def test_crd_validates_against_the_apiextensions_schema(crd: dict[str, Any]) -> None:
    kubernetes_validate.validate(crd, "1.33", strict=True)


def test_names_and_scope(crd: dict[str, Any]) -> None:
    assert crd["metadata"]["name"] == "deepseekdeployments.serving.deepseek-operator.io"
    assert crd["spec"]["group"] == "serving.deepseek-operator.io"
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"] == {
        "kind": "DeepSeekDeployment",
        "listKind": "DeepSeekDeploymentList",
        "plural": "deepseekdeployments",
        "singular": "deepseekdeployment",
        "shortNames": ["dsd"],
        "categories": ["deepseek"],
    }


def test_version_is_served_stored_with_subresources(version: dict[str, Any]) -> None:
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {
        "status": {},
        "scale": {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        },
    }


def test_printer_columns(version: dict[str, Any]) -> None:
    columns = {column["name"]: column for column in version["additionalPrinterColumns"]}
    assert list(columns) == [
        "Active",
        "Ready",
        "Spot",
        "Fallback",
        "Fallback-Reason",
        "Status",
        "Reason",
        "Model",
        "Age",
    ]
    assert columns["Active"]["jsonPath"] == ".status.activeRegion"
    assert columns["Ready"]["jsonPath"] == ".status.ready"
    assert columns["Spot"]["jsonPath"] == ".status.spotShare"
    # what `kubectl get dsd` says of the on-demand fallback, and why
    assert columns["Fallback"]["jsonPath"] == ".status.spot.fallbackReplicas"
    assert columns["Fallback-Reason"]["jsonPath"] == '.status.conditions[?(@.type=="FallbackActive")].reason'
    assert columns["Status"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'
    assert columns["Reason"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].reason'
    assert columns["Age"] == {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
    wide_only = {name for name, column in columns.items() if column.get("priority") == 1}
    assert wide_only == {"Reason", "Model"}


def test_every_printer_column_path_exists_in_the_schema(version: dict[str, Any], root: Schema) -> None:
    paths = {path for path, _ in walk(root)}
    for column in version["additionalPrinterColumns"]:
        json_path = re.sub(r"\[\?\(.*?\)\]", "[]", column["jsonPath"])
        if json_path != ".metadata.creationTimestamp":
            assert json_path in paths, column


# --- structural schema -------------------------------------------------------------------------


def test_schema_is_structural(root: Schema) -> None:
    for path, node in walk(root):
        for forbidden in ("$ref", "$defs", "title", "oneOf", "allOf", "not", "nullable", "const"):
            assert forbidden not in node, f"{path} has {forbidden}"
        if node.get("x-kubernetes-int-or-string"):
            assert "type" not in node, path
            assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}], path
        else:
            assert "anyOf" not in node, path
            assert node.get("type") in {"object", "array", "string", "integer", "boolean"}, path
        if node.get("type") == "object" and "additionalProperties" in node:
            assert "properties" not in node, f"{path}: properties and additionalProperties"


def test_every_spec_and_status_field_is_described(root: Schema) -> None:
    for section in ("spec", "status"):
        for path, node in walk(root["properties"][section], f".{section}"):
            if path.endswith(("[]", "{}")):
                continue  # list items and map values are described by their field
            assert node.get("description"), f"{path} has no description (kubectl explain shows it)"


def test_list_map_keys_are_required(root: Schema) -> None:
    found = []
    for path, node in walk(root):
        if node.get("x-kubernetes-list-type") == "map":
            keys = node["x-kubernetes-list-map-keys"]
            assert set(keys) <= set(node["items"].get("required", [])), path
            found.append((path, keys))
    assert found == [
        (".spec.regions", ["name"]),
        (".status.conditions", ["type"]),
        (".status.regions", ["name"]),
        (".status.regions[].pools", ["name"]),
        (".status.spot.regions", ["name"]),
        (".status.spot.regions[].pools", ["name"]),
        (".status.failover.regions", ["name"]),
    ]


def test_regions_schema(root: Schema) -> None:
    regions = root["properties"]["spec"]["properties"]["regions"]
    assert (regions["minItems"], regions["maxItems"]) == (1, 8)
    name = regions["items"]["properties"]["name"]
    assert name["maxLength"] == 20
    assert name["pattern"] == "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
    assert regions["items"]["properties"]["role"]["enum"] == ["Active", "Standby"]
    assert regions["items"]["required"] == ["name", "role"]


def test_enums_match_the_python_enums(root: Schema) -> None:
    spec = root["properties"]["spec"]["properties"]
    assert spec["engine"]["properties"]["name"]["enum"] == [engine.value for engine in EngineName]
    assert spec["engine"]["properties"]["quantization"]["enum"] == [q.value for q in Quantization]
    assert spec["failover"]["properties"]["signals"]["items"]["enum"] == [s.value for s in FailoverSignal]
    assert spec["priorityTier"]["enum"] == ["P0", "P1", "P2", "P3"]


def test_bounds_come_from_the_models(root: Schema) -> None:
    spec = root["properties"]["spec"]["properties"]
    engine = spec["engine"]["properties"]
    assert (engine["tensorParallelSize"]["minimum"], engine["tensorParallelSize"]["maximum"]) == (1, 64)
    utilization = engine["gpuMemoryUtilizationPercent"]
    assert (utilization["type"], utilization["minimum"], utilization["maximum"]) == ("integer", 10, 99)
    gpus = spec["resources"]["properties"]["gpusPerReplica"]
    assert (gpus["minimum"], gpus["maximum"]) == (1, 16)
    assert spec["replicas"]["minimum"] == 0
    fallback = spec["spot"]["properties"]["fallback"]["properties"]["pendingTimeoutSeconds"]
    assert (fallback["minimum"], fallback["maximum"]) == (10, 3600)


def test_int_or_string_fields(root: Schema) -> None:
    int_or_string = sorted(path for path, node in walk(root) if node.get("x-kubernetes-int-or-string"))
    assert int_or_string == [
        ".spec.autoscaling.predictive.requestsPerSecondPerReplica",
        ".spec.resources.cpu",
        ".spec.resources.memory",
        ".spec.resources.sharedMemorySize",
        ".spec.rollout.maxSurge",
        ".spec.rollout.maxUnavailable",
    ]


def test_status_has_no_defaults(root: Schema) -> None:
    defaulted = [path for path, node in walk(root["properties"]["status"], ".status") if "default" in node]
    assert defaulted == []


# --- defaults: the API server fills in what the models would ----------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        {
            "model": {"name": "m"},
            "regions": [{"name": "a", "role": "Active"}, {"name": "b", "role": "Standby"}],
        },
        {
            "model": {"name": "m", "source": {"type": "HuggingFace", "huggingFace": {"repoId": "org/m"}}},
            "regions": [{"name": "a", "role": "Active"}],
            "failover": {"enabled": False},
            "autoscaling": {"enabled": True, "scaleDown": {"periodSeconds": 60}, "scaleUp": {}},
            "spot": {
                "enabled": True,
                "provider": "custom",
                "custom": {"labelKey": "example.com/spot", "spotValue": "1", "spotTaint": {"key": "spot"}},
            },
            "monitoring": {"serviceMonitor": {}},
            "rollout": {"drainSeconds": 30},
        },
    ],
)
def test_schema_defaults_equal_model_defaults(root: Schema, spec: dict[str, Any]) -> None:
    defaulted = copy.deepcopy(spec)
    apply_defaults(defaulted, root["properties"]["spec"])
    from_models = DeepSeekDeploymentSpec.model_validate(spec).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    assert defaulted == from_models


def test_schema_defaults_are_themselves_valid_specs(root: Schema) -> None:
    spec_schema = root["properties"]["spec"]["properties"]
    for name, node in spec_schema.items():
        if node.get("type") == "object" and "default" in node:
            assert node["default"], f".spec.{name} default must be spelled out for the CEL rules"


# --- CEL rules ---------------------------------------------------------------------------------


def cel_rules(root: Schema) -> list[tuple[str, dict[str, str]]]:
    return [(path, rule) for path, node in walk(root) for rule in node.get("x-kubernetes-validations", [])]


def test_every_cel_rule_explains_itself(root: Schema) -> None:
    rules = cel_rules(root)
    assert len(rules) >= 17
    for path, rule in rules:
        assert set(rule) <= {"rule", "message", "messageExpression"}, path
        # A message names the field(s) it is about, so a person knows what to fix.
        assert rule["message"].startswith(("spec.", "metadata.name")), (path, rule)


def test_expected_cel_rules_are_attached_where_they_belong(root: Schema) -> None:
    attached = {(path, rule["rule"]) for path, rule in cel_rules(root)}
    assert ("", "self.metadata.name.size() <= 40") in attached
    assert (".spec", "self.resources.gpusPerReplica % self.engine.tensorParallelSize == 0") in attached
    assert (".spec.regions", "self.filter(r, r.role == 'Active').size() == 1") in attached
    assert (".spec.autoscaling", "self.minReplicas <= self.maxReplicas") in attached
    assert (".spec.spot", "self.provider != 'custom' || has(self.custom)") in attached
    assert (".spec.model.source", "self.type != 'PVC' || has(self.pvc)") in attached


def test_every_cel_rule_is_exercised_by_the_integration_table(root: Schema) -> None:
    """Each rule's message is expected by at least one invalid object of tests/integration."""
    table = load_invalid_specs().INVALID_SPECS
    # messageExpression inserts values such as " (5)" or "(it has 41)"; compare without them.
    expected = [re.sub(r" ?\((it has )?\d+\)", "", case["error"]) for case in table]
    for path, rule in cel_rules(root):
        message = rule["message"]
        assert any(error in message or message in error for error in expected), (path, message)
