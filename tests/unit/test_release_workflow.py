"""The release workflow (.github/workflows/release.yaml) cannot run here: lint it, and check that what it
publishes is what the chart, the CRD's defaults, `make images` and the test clusters refer to."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from deepseek_operator.api.v1alpha1 import DEFAULT_IMAGE_REPOSITORY

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = REPO_ROOT / ".github" / "workflows" / "release.yaml"
CHART = REPO_ROOT / "charts" / "deepseek-operator"
SAMPLES = REPO_ROOT / "manifests" / "samples"
# The last path component the local cluster and the kind path recognise simulator images by.
SIMULATOR_NAME = "deepseek-simulator"


def workflow() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return document


def image_steps() -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """The registry, the matrix entries of the images job, and its build-push step's inputs."""
    document = workflow()
    job = document["jobs"]["images"]
    (build,) = [
        step for step in job["steps"] if str(step.get("uses", "")).startswith("docker/build-push-action@")
    ]
    return document["env"]["REGISTRY"], job["strategy"]["matrix"]["include"], build["with"]


def published_repositories() -> set[str]:
    registry, matrix, build = image_steps()
    # The tag is built from exactly these parts; anything else would need this test to learn it.
    assert build["tags"] == (
        "${{ env.REGISTRY }}/${{ matrix.image }}:${{ needs.version.outputs.version }}${{ matrix.suffix }}"
    )
    assert build["push"] is True
    return {f"{registry}/{entry['image']}" for entry in matrix}


def test_actionlint_finds_nothing() -> None:
    """actionlint (pinned, built from the Go module proxy by localcluster.tools), with shellcheck for
    the `run:` scripts."""
    from localcluster.tools import ensure_tools

    actionlint = ensure_tools(["actionlint"])["actionlint"].path
    shellcheck = Path(sys.executable).with_name("shellcheck")
    result = subprocess.run(
        [str(actionlint), "-no-color", f"-shellcheck={shellcheck}", str(WORKFLOW.relative_to(REPO_ROOT))],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_it_publishes_exactly_the_images_the_chart_and_the_crd_default_to() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    published = published_repositories()
    simulators = {repository for repository in published if repository.rsplit("/", 1)[1] == SIMULATOR_NAME}
    assert values["image"]["repository"] in published, "the chart's default operator image"
    assert DEFAULT_IMAGE_REPOSITORY in published, "a DeepSeekDeployment's default spec.image"
    assert len(simulators) == 1, f"one simulator image, named .../{SIMULATOR_NAME}: {sorted(published)}"
    assert published == {values["image"]["repository"], DEFAULT_IMAGE_REPOSITORY, *simulators}


def test_every_image_a_sample_names_is_published_or_the_default() -> None:
    published = published_repositories()
    for path in sorted(SAMPLES.glob("*.yaml")):
        body = yaml.safe_load(path.read_text())
        if body.get("kind") != "DeepSeekDeployment":
            continue
        repository = ((body["spec"].get("image") or {}).get("repository")) or DEFAULT_IMAGE_REPOSITORY
        assert repository in published, f"{path.name} runs {repository}, which no release publishes"


def test_the_kind_path_runs_the_simulator_under_the_published_name() -> None:
    sample = yaml.safe_load((REPO_ROOT / "e2e" / "kind" / "sample-simulator.yaml").read_text())
    assert sample["spec"]["image"]["repository"].rsplit("/", 1)[-1] == SIMULATOR_NAME


def test_make_images_builds_the_same_names_from_the_same_dockerfiles() -> None:
    _registry, matrix, _build = image_steps()
    released = {entry["image"]: entry["dockerfile"] for entry in matrix}
    dry_run = subprocess.run(
        ["make", "--no-print-directory", "-n", "images", "REGISTRY=registry.test/team", "TAG=9.9.9"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    built = {
        name: dockerfile
        for dockerfile, name in re.findall(r"--file (\S+) --tag registry\.test/team/(\S+):9\.9\.9", dry_run)
    }
    assert built == released
    for dockerfile in built.values():
        assert (REPO_ROOT / dockerfile).is_file(), dockerfile


def test_the_release_is_cut_from_a_version_tag_that_matches_the_chart() -> None:
    document = workflow()
    triggers = document[True]  # PyYAML reads the key `on` as the boolean true
    assert triggers == {"push": {"tags": ["v[0-9]+.[0-9]+.[0-9]+"]}}
    version_script = document["jobs"]["version"]["steps"][-1]["run"]
    for checked in ("pyproject.toml", "charts/deepseek-operator/Chart.yaml"):
        assert checked in version_script
    chart_script = document["jobs"]["chart"]["steps"][-1]["run"]
    assert 'helm push "dist/deepseek-operator-${VERSION}.tgz" "oci://${REGISTRY}/charts"' in chart_script
    release_script = document["jobs"]["github-release"]["steps"][-1]["run"]
    for crd in sorted((CHART / "crds").glob("*.yaml")):
        assert (
            f"charts/deepseek-operator/crds/{crd.name}" in release_script
            or f"crds/{crd.name}" in release_script
        )


@pytest.mark.parametrize("image", ["operator", "deepseek-simulator"])
def test_the_python_images_are_multi_arch(image: str) -> None:
    _registry, matrix, _build = image_steps()
    (entry,) = [entry for entry in matrix if entry["image"] == image]
    assert set(entry["platforms"].split(",")) == {"linux/amd64", "linux/arm64"}


def test_the_readme_install_builds_and_pushes_the_images_before_it_installs_them() -> None:
    """Until a release exists the default images do not: the README's install path builds and pushes them
    to the reader's registry, and points the chart at that registry."""
    readme = (REPO_ROOT / "README.md").read_text()
    install = readme.split("\n## Install\n", 1)[1].split("\n## ", 1)[0]
    commands = " ".join(
        line.strip().removeprefix("$ ").rstrip("\\")
        for block in re.findall(r"```console\n(.*?)```", install, flags=re.DOTALL)
        for line in block.splitlines()
    )
    push = re.search(r"make push-images REGISTRY=(\S+)", commands)
    helm_install = re.search(
        r"helm install deepseek-operator charts/deepseek-operator .*?--set image\.repository=(\S+)", commands
    )
    assert push, "the README pushes the images with `make push-images REGISTRY=...`"
    assert helm_install, "the README installs the chart with --set image.repository=..."
    assert push.start() < helm_install.start()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    operator_name = values["image"]["repository"].rsplit("/", 1)[1]
    assert helm_install.group(1) == f"{push.group(1)}/{operator_name}"
    inference_name = DEFAULT_IMAGE_REPOSITORY.rsplit("/", 1)[1]
    assert f"spec.image.repository: {push.group(1)}/{inference_name}" in " ".join(install.split())
    assert "oci://ghcr.io/deepseek-operator/charts/deepseek-operator" in install
