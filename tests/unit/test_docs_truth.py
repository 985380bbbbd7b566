"""What the docs promise is what the code does: `kubectl explain`, the READMEs, the dashboard, the alerts
and the declared dependencies."""

from __future__ import annotations

import ast
import json
import re
import tomllib
from collections.abc import Iterator
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Any

import pytest
import yaml
from deepseek_operator import metrics
from deepseek_operator.crd import build_crd
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from prometheus_client import Counter, Gauge, Histogram

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "deepseek-operator"
NOT_YET = "not implemented yet"
# Settings the failover and spot controllers act on: their `kubectl explain` text must not say otherwise.
FAILOVER_SETTINGS = [
    ".spec.failover",
    ".spec.failover.enabled",
    ".spec.failover.probeIntervalSeconds",
    ".spec.failover.failureThreshold",
    ".spec.failover.successThreshold",
    ".spec.failover.signals",
    ".spec.failover.failback",
    ".spec.failover.minActiveSeconds",
    ".spec.failover.maxSwitchesPerHour",
    ".spec.failover.switchTimeoutSeconds",
    ".spec.regions[].role",
    ".spec.monitoring.prometheusUrl",
]
SPOT_CONTROLLER_SETTINGS = [
    ".spec.spot.fallback",
    ".spec.spot.fallback.enabled",
    ".spec.spot.fallback.pendingTimeoutSeconds",
    ".spec.spot.fallback.maxReplicas",
    ".spec.spot.fallback.quietPeriodSeconds",
    ".spec.spot.fallback.stepSeconds",
    ".spec.spot.fallback.spillToSpot",
    ".spec.spot.fallback.cooldown",
]


def schema_at(path: str) -> dict[str, Any]:
    node: dict[str, Any] = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for part in path.strip(".").split("."):
        name, _, array = part.partition("[]")
        node = node["properties"][name]
        if array == "" and part.endswith("[]"):
            node = node["items"]
    return node


@pytest.mark.parametrize("path", FAILOVER_SETTINGS + SPOT_CONTROLLER_SETTINGS)
def test_kubectl_explain_does_not_call_a_controllers_settings_unimplemented(path: str) -> None:
    description = schema_at(path)["description"]
    assert NOT_YET not in description.lower(), f"{path}: {description!r}"
    assert "nothing acts on it" not in description.lower(), f"{path}: {description!r}"


def test_no_field_of_the_api_is_unimplemented() -> None:
    """Every field `kubectl explain` shows is acted on: no description hedges."""

    def descriptions(node: dict[str, Any], path: str) -> Iterator[tuple[str, str]]:
        if "description" in node:
            yield path, str(node["description"])
        for name, child in (node.get("properties") or {}).items():
            yield from descriptions(child, f"{path}.{name}")
        if isinstance(node.get("items"), dict):
            yield from descriptions(node["items"], f"{path}[]")

    schema = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    hedged = [path for path, text in descriptions(schema, "") if NOT_YET in text.lower()]
    assert not hedged


# --- metrics the operator exports, and what the chart's dashboard and alerts read ---------------------


def exported_metric_names() -> set[str]:
    """Every series name the operator's metrics module can serve."""
    names: set[str] = set()
    for value in vars(metrics).values():
        if isinstance(value, Counter):
            names |= {f"{family.name}_total" for family in value.describe()}
        elif isinstance(value, Histogram):
            names |= {
                f"{family.name}_{suffix}"
                for family in value.describe()
                for suffix in ("bucket", "sum", "count")
            }
        elif isinstance(value, Gauge):
            names |= {family.name for family in value.describe()}
    return names


def operator_metrics_in(expression: str) -> set[str]:
    return set(re.findall(r"(?<![a-z_])deepseek_operator_[a-z_]+", expression))


def test_the_exported_metric_names_are_read_from_the_code() -> None:
    assert {"deepseek_operator_replicas", "deepseek_operator_reconciles_total"} <= exported_metric_names()


def dashboard_panels() -> Iterator[dict[str, Any]]:
    yield from json.loads((CHART / "dashboards" / "deepseek-operator.json").read_text())["panels"]


def test_a_dashboard_panel_on_a_metric_nothing_exports_says_so() -> None:
    exported = exported_metric_names()
    for panel in dashboard_panels():
        used = set().union(*(operator_metrics_in(t["expr"]) for t in panel.get("targets", [])))
        if used - exported:
            assert NOT_YET in panel["description"].lower(), (panel["title"], sorted(used - exported))
        else:
            assert NOT_YET not in panel["description"].lower(), panel["title"]


def chart_alerts() -> list[dict[str, Any]]:
    from chart_support import render

    (rule,) = [
        doc for doc in render(set_values=["prometheusRule.enabled=true"]) if doc["kind"] == "PrometheusRule"
    ]
    return [alert for group in rule["spec"]["groups"] for alert in group["rules"]]


def test_an_alert_on_a_metric_nothing_exports_says_so() -> None:
    exported = exported_metric_names()
    for alert in chart_alerts():
        missing = operator_metrics_in(alert["expr"]) - exported
        if missing:
            assert NOT_YET in alert["annotations"]["description"].lower(), (alert["alert"], sorted(missing))
        else:
            assert NOT_YET not in alert["annotations"]["description"].lower(), alert["alert"]


def test_the_failover_alert_and_panel_read_a_counter_the_operator_exports() -> None:
    assert "deepseek_operator_failovers_total" in exported_metric_names()


# --- prose: READMEs and the chart's metadata -------------------------------------------------------

# Words about the two controllers: prose that mentions them must not hedge them any more.
CONTROLLERS = re.compile(
    r"fail(s|ed|ing)?[ -]?over|spot[ -]fallback|fall(s|ing)?[ -]?back to on-demand|on-demand fallback",
    re.IGNORECASE,
)


def paragraphs(markdown: str) -> Iterator[str]:
    """What a reader takes in at once: a paragraph or a list with its lead-in, or one row of a table.
    Code blocks and `code spans` (commands, field names such as `spot.fallback`) are left out."""
    prose = re.sub(r"`[^`\n]*`", "", re.sub(r"```.*?```", "", markdown, flags=re.DOTALL))
    for block in re.split(r"\n\s*\n", prose):
        if block.lstrip().startswith("|"):
            yield from block.splitlines()
        else:
            yield block


@pytest.mark.parametrize(
    "document",
    [
        "README.md",
        "charts/deepseek-operator/README.md",
        "images/inference/README.md",
        "docs/inference-contract.md",
    ],
)
def test_prose_about_failover_and_spot_fallback_does_not_call_them_missing(document: str) -> None:
    text = (REPO_ROOT / document).read_text()
    hedged = [p for p in paragraphs(text) if CONTROLLERS.search(p) and NOT_YET in " ".join(p.split()).lower()]
    assert not hedged, f"{document}: " + "\n---\n".join(hedged)


def test_the_readme_opening_promises_failover_and_spot_fallback_without_hedging() -> None:
    """The first thing a reader sees: both controllers are there."""
    opening = (REPO_ROOT / "README.md").read_text().split("\n## ", 1)[0].split("```", 1)[0]
    flat = " ".join(opening.split()).lower()
    assert NOT_YET not in flat
    assert "fails over" in flat
    assert "spot capacity and on-demand fallback" in flat


def test_package_and_chart_descriptions_promise_nothing_missing() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    for description in (project["description"], chart["description"]):
        assert NOT_YET not in " ".join(description.split()).lower(), description


# --- dependencies ---------------------------------------------------------------------------------------


def imported_top_level_modules(package: Path) -> set[str]:
    modules: set[str] = set()
    for source in package.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return modules


def test_every_declared_dependency_is_imported_by_the_operator() -> None:
    """A dependency the code does not import is installed into every operator image for nothing (and
    hints at a feature that is not there)."""
    declared = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    providers = packages_distributions()
    imported = {
        canonicalize_name(distribution)
        for module in imported_top_level_modules(REPO_ROOT / "operator" / "deepseek_operator")
        for distribution in providers.get(module, [])
    }
    unused = sorted(
        requirement
        for requirement in declared
        if canonicalize_name(Requirement(requirement).name) not in imported
    )
    assert not unused, f"declared in pyproject.toml but imported nowhere in the operator: {unused}"
