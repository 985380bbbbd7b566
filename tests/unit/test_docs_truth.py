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
# Settings no controller of this release acts on (the failover issue adds it): their `kubectl explain`
# text must say so. Remove a path here when its controller lands.
WITHOUT_A_CONTROLLER = [
    ".spec.failover",
    ".spec.failover.enabled",
    ".spec.failover.probeIntervalSeconds",
    ".spec.failover.failureThreshold",
    ".spec.failover.signals",
    ".spec.failover.failback",
    ".spec.regions[].role",
    ".spec.monitoring.prometheusUrl",
]
# Settings the spot controller acts on: their text must not say otherwise.
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


@pytest.mark.parametrize("path", WITHOUT_A_CONTROLLER)
def test_kubectl_explain_says_which_settings_nothing_acts_on_yet(path: str) -> None:
    description = schema_at(path)["description"]
    assert NOT_YET in description.lower(), f"{path}: {description!r}"


@pytest.mark.parametrize("path", SPOT_CONTROLLER_SETTINGS)
def test_kubectl_explain_does_not_call_the_spot_controllers_settings_unimplemented(path: str) -> None:
    description = schema_at(path)["description"]
    assert NOT_YET not in description.lower(), f"{path}: {description!r}"


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
        missing = set().union(*(operator_metrics_in(t["expr"]) for t in panel.get("targets", []))) - exported
        if missing:
            assert NOT_YET in panel["description"].lower(), (panel["title"], sorted(missing))


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


# --- prose: READMEs and the chart's metadata -------------------------------------------------------

# Words that promise a failover (the spot fallback exists: its prose need not hedge).
PROMISE = re.compile(r"fail(s|ed|ing)?[ -]?over|when the active (one|region) fails", re.IGNORECASE)


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
def test_prose_about_failover_or_fallback_says_it_is_not_implemented_yet(document: str) -> None:
    text = (REPO_ROOT / document).read_text()
    promises = [
        p for p in paragraphs(text) if PROMISE.search(p) and NOT_YET not in " ".join(p.split()).lower()
    ]
    assert not promises, f"{document}: " + "\n---\n".join(promises)


def test_the_readme_opening_says_what_is_not_implemented_yet() -> None:
    """The first thing a reader sees names the missing controller, and not the spot one, which exists."""
    opening = (REPO_ROOT / "README.md").read_text().split("\n## ", 1)[0].split("```", 1)[0]
    flat = " ".join(opening.split()).lower()
    assert NOT_YET in flat
    after = flat.split(NOT_YET, 1)[1]
    assert "failover" in after
    assert "spot" not in after
    assert "spot capacity and on-demand fallback" in flat


def test_package_and_chart_descriptions_promise_nothing_missing() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    for description in (project["description"], chart["description"]):
        if PROMISE.search(description):
            assert NOT_YET in description.lower(), description


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
