"""Rendering the Helm chart with the pinned helm, for the chart's unit tests (no cluster)."""

from __future__ import annotations

import functools
import importlib.util
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from localcluster.tools import ensure_tools

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "deepseek-operator"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
RELEASE = "dso"
NAMESPACE = "deepseek-system"


@functools.cache
def helm() -> str:
    return str(ensure_tools(["helm"])["helm"].path)


def run_helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm(), *args], capture_output=True, text=True, check=False, timeout=60)


def render(
    values_files: Sequence[Path] = (), set_values: Sequence[str] = (), include_crds: bool = False
) -> list[dict[str, Any]]:
    """`helm template` of the chart: every rendered object (the helm test Pod included)."""
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    for path in values_files:
        args += ["--values", str(path)]
    for assignment in set_values:
        args += ["--set", assignment]
    if include_crds:
        args.append("--include-crds")
    result = run_helm(*args)
    assert result.returncode == 0, result.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def find(objects: Sequence[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def only(objects: Sequence[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {[o['metadata']['name'] for o in found]}"
    return found[0]


def operator_container(objects: Sequence[dict[str, Any]]) -> dict[str, Any]:
    deployment = only(objects, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def hack_chart_module() -> ModuleType:
    """hack/chart.py (README values table, manifests/base), imported by path: hack/ is no package."""
    spec = importlib.util.spec_from_file_location("hack_chart", REPO_ROOT / "hack" / "chart.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
