"""Provide pinned control-plane binaries: given ones, an official download, or a build from Go modules.

Order of preference for every tool (first that works wins, and the source is printed):
1. a binary the user points at (``DSO_<TOOL>_BINARY``, or ``KUBEBUILDER_ASSETS`` / ``TEST_ASSET_*`` as
   envtest defines them), accepted only at the pinned version;
2. the cache (``$XDG_CACHE_HOME/deepseek-operator/tools/<tool>-<version>/``), shared by every clone;
3. the official release download, when the network allows it (fails fast when it does not) and a sha256
   for it is pinned in `localcluster.checksums` (a mismatch is an error);
4. a build from the Go module proxy with the local Go toolchain.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from localcluster.checksums import PINNED_SHA256

KUBERNETES_VERSION = "v1.36.3"
ETCD_VERSION = "v3.6.16"
KWOK_VERSION = "v0.8.0"
HELM_VERSION = "v3.21.4"
# Prometheus 3.x is published on the Go module proxy as github.com/prometheus/prometheus v0.3MM.P
# (v0.316.0 is release v3.16.0: its VERSION file says so).
PROMETHEUS_VERSION = "v3.16.0"


def prometheus_module_version(release: str) -> str:
    """The Go module version of a Prometheus 3.x release: v3.16.0 -> v0.316.0, v3.5.1 -> v0.305.1."""
    major, minor, patch = (int(part) for part in release.lstrip("v").split("."))
    return f"v0.{major}{minor:02d}.{patch}"


PROMETHEUS_MODULE_VERSION = prometheus_module_version(PROMETHEUS_VERSION)
PROMETHEUS_ADAPTER_VERSION = "v0.12.0"
KEDA_VERSION = "v2.21.0"
ACTIONLINT_VERSION = "v1.7.12"
# Only for its CRDs (ServiceMonitor, PrometheusRule): the operator itself is not run.
PROMETHEUS_OPERATOR_VERSION = "v0.85.0"

# Every tool the project needs, in the order `tools` provides them.
ALL_TOOLS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kwok",
    "helm",
    "prometheus",
    "promtool",
    "prometheus-adapter",
    "keda",
    "keda-adapter",
    "actionlint",
)
# What the local cluster (and so every cluster test) needs: the control plane, and its monitoring
# stack (Prometheus and prometheus-adapter, which serve the HorizontalPodAutoscalers' custom metrics;
# promtool checks PrometheusRules, helm renders the adapter's rules from the chart).
CONTROL_PLANE_TOOLS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kwok",
)
MONITORING_TOOLS = ("prometheus", "promtool", "prometheus-adapter", "helm")
CLUSTER_TOOLS = CONTROL_PLANE_TOOLS + MONITORING_TOOLS
# KEDA (operator and metrics apiserver): started only by clusters that ask for it (LocalCluster(keda=True)).
KEDA_TOOLS = ("keda", "keda-adapter")
# Staging modules that k8s.io/kubernetes replaces with ./staging: all are published as v0.<minor>.<patch>.
_K8S_STAGING_REPLACE = re.compile(r"^\s*(k8s\.io/[\w.-]+)\s+=>\s+\./staging/", re.MULTILINE)
_DOWNLOAD_TIMEOUT_SECONDS = 5.0


class ToolError(RuntimeError):
    """A tool could not be provided; the message says what to do."""


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(os.environ.get("DSO_TOOLS_DIR", str(Path(base) / "deepseek-operator" / "tools")))


def log(message: str) -> None:
    print(f"[tools] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Tool:
    name: str
    version: str
    # Command that prints the version, and the text that must appear in its output.
    version_args: tuple[str, ...]
    expected_version_text: str
    # envtest-compatible environment variable for a single binary, if envtest defines one.
    envtest_var: str | None = None
    envtest_in_assets_dir: bool = False
    release_url: str | None = None
    release_member: str | None = None  # path inside a release tarball
    group: str = field(default="")  # tools built together share one Go wrapper module
    # For a binary without a version flag: the Go module whose version its build info must record
    # (read with `go version -m`); version_args are then unused.
    build_info_module: str | None = None

    @property
    def env_var(self) -> str:
        return "DSO_" + self.name.upper().replace("-", "_") + "_BINARY"

    @property
    def cached_path(self) -> Path:
        return cache_root() / f"{self.name}-{self.version}" / self.name


def _k8s_tool(name: str, envtest_var: str | None, in_assets: bool) -> Tool:
    base = f"https://dl.k8s.io/release/{KUBERNETES_VERSION}/bin/linux/{_go_arch()}/{name}"
    version_args = ("version", "--client", "-o", "json") if name == "kubectl" else ("--version",)
    return Tool(
        name=name,
        version=KUBERNETES_VERSION,
        version_args=version_args,
        expected_version_text=KUBERNETES_VERSION,
        envtest_var=envtest_var,
        envtest_in_assets_dir=in_assets,
        release_url=base,
        group="kubernetes",
    )


def _go_arch() -> str:
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)


def _prometheus_tool(name: str, arch: str) -> Tool:
    release = f"prometheus-{PROMETHEUS_VERSION.lstrip('v')}.linux-{arch}"
    return Tool(
        name=name,
        version=PROMETHEUS_VERSION,
        version_args=("--version",),
        expected_version_text=f"{name}, version {PROMETHEUS_VERSION.lstrip('v')}",
        release_url=f"https://github.com/prometheus/prometheus/releases/download/{PROMETHEUS_VERSION}/{release}.tar.gz",
        release_member=f"{release}/{name}",
        group="prometheus",
    )


def tool_table() -> dict[str, Tool]:
    arch = _go_arch()
    etcd_dir = f"etcd-{ETCD_VERSION}-linux-{arch}"
    helm_dir = f"linux-{arch}"
    tools = [
        Tool(
            name="etcd",
            version=ETCD_VERSION,
            version_args=("--version",),
            expected_version_text=f"etcd Version: {ETCD_VERSION.lstrip('v')}",
            envtest_var="TEST_ASSET_ETCD",
            envtest_in_assets_dir=True,
            release_url=f"https://github.com/etcd-io/etcd/releases/download/{ETCD_VERSION}/{etcd_dir}.tar.gz",
            release_member=f"{etcd_dir}/etcd",
            group="etcd",
        ),
        _k8s_tool("kube-apiserver", "TEST_ASSET_KUBE_APISERVER", True),
        _k8s_tool("kube-controller-manager", None, False),
        _k8s_tool("kube-scheduler", None, False),
        _k8s_tool("kubectl", "TEST_ASSET_KUBECTL", True),
        Tool(
            name="kwok",
            version=KWOK_VERSION,
            version_args=("--version",),
            expected_version_text=KWOK_VERSION.lstrip("v"),
            release_url=f"https://github.com/kubernetes-sigs/kwok/releases/download/{KWOK_VERSION}/kwok-linux-{arch}",
            group="kwok",
        ),
        Tool(
            name="helm",
            version=HELM_VERSION,
            version_args=("version", "--short"),
            expected_version_text=HELM_VERSION,
            release_url=f"https://get.helm.sh/helm-{HELM_VERSION}-linux-{arch}.tar.gz",
            release_member=f"{helm_dir}/helm",
            group="helm",
        ),
        *(_prometheus_tool(name, arch) for name in ("prometheus", "promtool")),
        Tool(
            # Published as container images only: no binary to download.
            name="prometheus-adapter",
            version=PROMETHEUS_ADAPTER_VERSION,
            version_args=(),
            expected_version_text=PROMETHEUS_ADAPTER_VERSION,
            build_info_module="sigs.k8s.io/prometheus-adapter",
            group="prometheus-adapter",
        ),
        *(
            Tool(
                # Published as container images only: no binary to download.
                name=name,
                version=KEDA_VERSION,
                version_args=(),
                expected_version_text=KEDA_VERSION,
                build_info_module="github.com/kedacore/keda/v2",
                group="keda",
            )
            for name in KEDA_TOOLS
        ),
        Tool(
            name="actionlint",
            version=ACTIONLINT_VERSION,
            version_args=("-version",),
            expected_version_text=ACTIONLINT_VERSION.lstrip("v"),
            release_url=(
                f"https://github.com/rhysd/actionlint/releases/download/{ACTIONLINT_VERSION}/"
                f"actionlint_{ACTIONLINT_VERSION.lstrip('v')}_linux_{arch}.tar.gz"
            ),
            release_member="actionlint",
            group="actionlint",
        ),
    ]
    return {tool.name: tool for tool in tools}


def _reported_version(binary: Path, tool: Tool) -> str:
    if tool.build_info_module:
        return _build_info_version(binary, tool.build_info_module)
    try:
        result = subprocess.run(
            [str(binary), *tool.version_args], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError as error:
        return f"<cannot run: {error}>"
    return (result.stdout + result.stderr).strip()


def _build_info_version(binary: Path, module: str) -> str:
    """The build-info lines (`go version -m`) that name `module`, e.g. "dep <module> v0.12.0 h1:..."."""
    go = shutil.which("go")
    if go is None:
        return f"<cannot read the build info of {binary}: Go is not installed>"
    result = subprocess.run(
        [go, "version", "-m", str(binary)], capture_output=True, text=True, timeout=30, check=False
    )
    if result.returncode != 0:
        return f"<not a Go binary with build info: {(result.stderr or result.stdout).strip()[:200]}>"
    lines = [" ".join(line.split()) for line in result.stdout.splitlines()]
    return "\n".join(line for line in lines if line.split()[1:2] == [module]) or f"<no module {module}>"


def _has_pinned_version(binary: Path, tool: Tool) -> bool:
    return tool.expected_version_text in _reported_version(binary, tool)


def _given_binary(tool: Tool) -> tuple[Path, str] | None:
    """A binary the user supplied through the environment, or None."""
    candidates: list[tuple[str, str]] = []
    if value := os.environ.get(tool.env_var):
        candidates.append((value, tool.env_var))
    if tool.envtest_var and (value := os.environ.get(tool.envtest_var)):
        candidates.append((value, tool.envtest_var))
    if tool.envtest_in_assets_dir and (assets := os.environ.get("KUBEBUILDER_ASSETS")):
        candidates.append((str(Path(assets) / tool.name), "KUBEBUILDER_ASSETS"))
    for raw_path, source in candidates:
        path = Path(raw_path)
        if not path.is_file():
            if source == "KUBEBUILDER_ASSETS":
                continue  # a partial assets directory is normal: fall through to the next source
            raise ToolError(
                f"{source}={raw_path} does not exist: point it at a {tool.name} binary or unset it"
            )
        if not _has_pinned_version(path, tool):
            raise ToolError(
                f"{source}={raw_path} is not {tool.name} {tool.version} "
                f"(it reports: {_reported_version(path, tool)[:200]!r}); "
                f"point it at {tool.version} or unset it to let the project provide one"
            )
        return path, source
    return None


def _download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_SECONDS) as response:  # noqa: S310 (https only)
        data: bytes = response.read()
    return data


def _try_release_download(tool: Tool) -> Path | None:
    """Download the official release and check it against the sha256 pinned in `checksums`; None when the
    network does not allow it, or when no checksum is pinned for it (then it is built instead)."""
    if os.environ.get("DSO_TOOLS_NO_DOWNLOAD") == "1" or not tool.release_url:
        return None
    expected = PINNED_SHA256.get((tool.name, _go_arch()))
    if expected is None:
        log(f"{tool.name}: no checksum is pinned for {tool.release_url}; building from Go modules instead")
        return None
    try:
        log(f"{tool.name}: downloading {tool.release_url}")
        payload = _download(tool.release_url)
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        log(f"{tool.name}: download not possible here ({error}); building from Go modules instead")
        return None
    actual = hashlib.sha256(payload).hexdigest()
    if actual != expected:
        raise ToolError(
            f"{tool.name}: checksum mismatch for {tool.release_url}: got sha256 {actual}, "
            f"pinned {expected} (localcluster/checksums.py); not installing it"
        )
    if tool.release_member:
        with tarfile.open(fileobj=io.BytesIO(payload)) as archive:
            member = archive.extractfile(tool.release_member)
            if member is None:
                raise ToolError(f"{tool.name}: {tool.release_member} missing in {tool.release_url}")
            payload = member.read()
    _install_bytes(payload, tool.cached_path)
    return tool.cached_path


def _install_bytes(payload: bytes, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=destination.parent, delete=False) as temporary:
        temporary.write(payload)
    os.chmod(temporary.name, 0o755)  # noqa: S103 (an executable)
    os.replace(temporary.name, destination)


# ---------------------------------------------------------------------------------------------- Go builds


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    # Wrapper modules must not pick up a workspace or vendor directory of the caller.
    env.update({"GOWORK": "off", "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0", "GOTOOLCHAIN": "local"})
    return env


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise ToolError(
            "no official download is reachable and Go is not installed: install Go >= 1.26 "
            "(https://go.dev/doc/install), or give the binaries through DSO_<TOOL>_BINARY / KUBEBUILDER_ASSETS"
        )
    return go


def _run_go(args: Sequence[str], workdir: Path, what: str) -> None:
    """Run a go command, printing a heartbeat every 20 s so a long build is visibly alive.

    `go build -v` names each package as it compiles: the heartbeat shows how many so far.
    """
    started = time.monotonic()
    command = [_go(), *args]
    output: list[str] = []
    with subprocess.Popen(
        command, cwd=workdir, env=_go_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        assert process.stdout is not None
        stream = process.stdout
        reader = threading.Thread(target=lambda: output.extend(stream), daemon=True)
        reader.start()
        while reader.is_alive():
            reader.join(timeout=20)
            if reader.is_alive():
                latest = output[-1].strip()[:80] if output else ""
                log(f"{what}: {time.monotonic() - started:.0f}s, {len(output)} packages so far ({latest})")
        process.wait()
    if process.returncode != 0:
        tail = "".join(output[-40:])
        raise ToolError(f"{what} failed ({' '.join(command)}) in {workdir}:\n{tail}")
    log(f"{what}: done in {time.monotonic() - started:.0f}s")


def _write_wrapper_module(
    workdir: Path, requires: dict[str, str], imports: Sequence[str], extra: str = "", godebug: str = "go1.26"
) -> None:
    """A go.mod and tools.go that require the upstream modules; `godebug` copies the GODEBUG defaults
    upstream's own go.mod gives (only the main module's go.mod sets them)."""
    workdir.mkdir(parents=True, exist_ok=True)
    require_lines = "\n".join(f"\t{module} {version}" for module, version in requires.items())
    (workdir / "go.mod").write_text(
        "// Generated by e2e/localcluster/tools.py: builds pinned binaries from published modules.\n"
        "module deepseek-operator.local/toolbuild\n\ngo 1.26.0\n\n"
        f"godebug default={godebug}\n\n"
        f"require (\n{require_lines}\n)\n{extra}"
    )
    import_lines = "\n".join(f'\t_ "{package}"' for package in imports)
    (workdir / "tools.go").write_text(f"//go:build tools\n\npackage tools\n\nimport (\n{import_lines}\n)\n")


def _module_go_mod(module: str, version: str) -> str:
    """The go.mod of a published module version (downloaded into the module cache)."""
    return Path(_module_download(module, version)["GoMod"]).read_text()


def _module_download(module: str, version: str) -> dict[str, str]:
    """`go mod download -json module@version`: the module's Dir (its files) and GoMod in the module cache."""
    scratch = cache_root() / "_build" / "modinfo"
    scratch.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [_go(), "mod", "download", "-json", f"{module}@{version}"],
        cwd=scratch,
        env=_go_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ToolError(f"cannot download {module}@{version}: {result.stderr or result.stdout}")
    info: dict[str, str] = json.loads(result.stdout)
    if "Error" in info:
        raise ToolError(f"cannot download {module}@{version}: {info['Error']}")
    return info


# `replace` and `exclude` directives, single-line or in a block: only the main module's count, so a
# wrapper module must copy upstream's for the build to resolve the same dependency graph.
_GO_MOD_DIRECTIVE = re.compile(r"^(replace|exclude)\s+(\([^)]*\)|[^\n]+)", re.MULTILINE)


def upstream_replaces_and_excludes(go_mod: str) -> str:
    """Copy upstream's replace/exclude directives that point at published versions (never a local path)."""
    lines: list[str] = []
    for directive, body in _GO_MOD_DIRECTIVE.findall(go_mod):
        entries = body.strip("()").splitlines() if body.startswith("(") else [body]
        for entry in entries:
            entry = entry.split("//")[0].strip()
            if not entry:
                continue
            if directive == "replace" and entry.split("=>")[1].strip().startswith((".", "/")):
                raise ToolError(f"upstream replaces a module with a local path ({entry}): cannot wrap it")
            lines.append(f"{directive} {entry}")
    return "\n" + "\n".join(dict.fromkeys(lines)) + "\n" if lines else ""


def _go_directive(go_mod: str) -> str:
    """`go1.22` for a go.mod that says `go 1.22.1`: the GODEBUG defaults that upstream's build has."""
    match = re.search(r"^go\s+(\d+)\.(\d+)", go_mod, re.MULTILINE)
    return f"go{match.group(1)}.{match.group(2)}" if match else "go1.26"


def _kubernetes_staging_replaces() -> str:
    """Replace every staging module with its published v0.x.y twin (upstream replaces them with ./staging)."""
    go_mod = _module_go_mod("k8s.io/kubernetes", KUBERNETES_VERSION)
    staging = sorted(set(_K8S_STAGING_REPLACE.findall(go_mod)))
    if not staging:
        raise ToolError(
            f"no staging replace directives found in k8s.io/kubernetes@{KUBERNETES_VERSION}'s go.mod"
        )
    published = "v0." + KUBERNETES_VERSION.removeprefix("v1.")
    lines = "\n".join(f"\t{module} => {module} {published}" for module in staging)
    return f"\nreplace (\n{lines}\n)\n"


def _kubernetes_ldflags() -> str:
    major, minor = KUBERNETES_VERSION.lstrip("v").split(".")[:2]
    values = {
        "gitVersion": KUBERNETES_VERSION,
        "gitMajor": major,
        "gitMinor": minor,
        "gitCommit": "0" * 40,
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
    }
    flags = [
        f"-X {package}.{key}={value}"
        for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
        for key, value in values.items()
    ]
    return " ".join(["-s", "-w", *flags])


def _prometheus_ldflags() -> str:
    """What upstream's .promu.yml sets, so `--version` and the build_info metric report the release."""
    values = {
        "Version": PROMETHEUS_VERSION.lstrip("v"),
        "Revision": PROMETHEUS_MODULE_VERSION,
        "Branch": "HEAD",
        "BuildUser": "deepseek-operator-tools",
        "BuildDate": "19700101-00:00:00",
    }
    return " ".join(
        ["-s", "-w", *(f"-X github.com/prometheus/common/version.{k}={v}" for k, v in values.items())]
    )


# The package directory under the KEDA module's cmd/ of each KEDA tool.
_KEDA_COMMANDS = {"keda": "operator", "keda-adapter": "adapter"}
# The name `go build` gives a tool's binary (the package path's last element) when it differs.
_BUILT_BINARY_NAMES = {"etcd": "server", "prometheus-adapter": "adapter", **_KEDA_COMMANDS}


def _build_group(group: str, names: Sequence[str]) -> None:
    table = tool_table()
    workdir = cache_root() / "_build" / f"{group}-{table[names[0]].version}"
    output_dir = workdir / "bin"
    output_dir.mkdir(parents=True, exist_ok=True)
    build_args: list[str]
    if group == "kubernetes":
        packages = [f"k8s.io/kubernetes/cmd/{name}" for name in names]
        _write_wrapper_module(
            workdir, {"k8s.io/kubernetes": KUBERNETES_VERSION}, packages, _kubernetes_staging_replaces()
        )
        build_args = ["-tags", "selinux,notest", "-ldflags", _kubernetes_ldflags()]
    elif group == "etcd":
        packages = ["go.etcd.io/etcd/server/v3"]
        _write_wrapper_module(workdir, {"go.etcd.io/etcd/server/v3": ETCD_VERSION}, packages)
        build_args = ["-ldflags", "-s -w"]
    elif group == "kwok":
        packages = ["sigs.k8s.io/kwok/cmd/kwok"]
        _write_wrapper_module(workdir, {"sigs.k8s.io/kwok": KWOK_VERSION}, packages)
        build_args = ["-ldflags", f"-s -w -X sigs.k8s.io/kwok/pkg/consts.Version={KWOK_VERSION.lstrip('v')}"]
    elif group == "helm":
        packages = ["helm.sh/helm/v3/cmd/helm"]
        _write_wrapper_module(workdir, {"helm.sh/helm/v3": HELM_VERSION}, packages)
        major, minor = KUBERNETES_VERSION.lstrip("v").split(".")[:2]
        version_flags = [
            f"-X helm.sh/helm/v3/internal/version.version={HELM_VERSION}",
            "-X helm.sh/helm/v3/internal/version.gitTreeState=clean",
            # helm assumes this Kubernetes version for `helm template` and `helm lint` without a cluster.
            *(
                f"-X helm.sh/helm/v3/pkg/{package}.k8sVersion{part}={value}"
                for package in ("lint/rules", "chartutil")
                for part, value in (("Major", major), ("Minor", minor))
            ),
        ]
        build_args = ["-ldflags", " ".join(["-s", "-w", *version_flags])]
    elif group == "prometheus":
        module = "github.com/prometheus/prometheus"
        packages = [f"{module}/cmd/{name}" for name in names]
        _write_wrapper_module(workdir, {module: PROMETHEUS_MODULE_VERSION}, packages)
        # The web UI's assets are not in the module (upstream generates them with npm and builds with
        # -tags builtinassets); the HTTP API, all the local cluster uses, is complete without them.
        build_args = ["-tags", "netgo", "-ldflags", _prometheus_ldflags()]
    elif group == "prometheus-adapter":
        # `go install` is refused: the proxy answers 403 for the module's version list.
        module = "sigs.k8s.io/prometheus-adapter"
        go_mod = _module_go_mod(module, PROMETHEUS_ADAPTER_VERSION)
        packages = [f"{module}/cmd/adapter"]
        _write_wrapper_module(
            workdir,
            {module: PROMETHEUS_ADAPTER_VERSION},
            packages,
            upstream_replaces_and_excludes(go_mod),
            godebug=_go_directive(go_mod),
        )
        build_args = ["-ldflags", "-s -w"]
    elif group == "keda":
        module = "github.com/kedacore/keda/v2"
        go_mod = _module_go_mod(module, KEDA_VERSION)
        packages = [f"{module}/cmd/{_KEDA_COMMANDS[name]}" for name in names]
        _write_wrapper_module(
            workdir,
            {module: KEDA_VERSION},
            packages,
            upstream_replaces_and_excludes(go_mod),
            godebug=_go_directive(go_mod),
        )
        version_flags = [
            f"-X {module}/version.Version={KEDA_VERSION.lstrip('v')}",
            f"-X {module}/version.GitCommit={KEDA_VERSION}",
        ]
        build_args = ["-ldflags", " ".join(["-s", "-w", *version_flags])]
    elif group == "actionlint":
        module = "github.com/rhysd/actionlint"
        packages = [f"{module}/cmd/actionlint"]
        _write_wrapper_module(workdir, {module: ACTIONLINT_VERSION}, packages)
        build_args = ["-ldflags", f"-s -w -X {module}.version={ACTIONLINT_VERSION.lstrip('v')}"]
    else:  # pragma: no cover - the table and this function are edited together
        raise ToolError(f"unknown tool group {group}")
    what = f"build {', '.join(names)} from Go modules"
    log(f"{what}: resolving modules in {workdir}")
    _run_go(["mod", "tidy"], workdir, f"{group}: go mod tidy")
    log(f"{what}: compiling (several minutes when cold; later runs reuse the Go build cache)")
    _run_go(["build", "-v", "-trimpath", *build_args, "-o", str(output_dir) + "/", *packages], workdir, what)
    for name in names:
        # go names a binary after the package path's last element, skipping a /vN major-version suffix.
        built = output_dir / _BUILT_BINARY_NAMES.get(name, name)
        if not built.is_file():
            candidates = sorted(path.name for path in output_dir.iterdir())
            raise ToolError(f"{what}: expected {built} after the build, found {candidates}")
        _install_bytes(built.read_bytes(), table[name].cached_path)


# ---------------------------------------------------------------------------------------------- CRDs


@dataclass(frozen=True)
class CrdSource:
    """CustomResourceDefinitions shipped inside a published Go module."""

    module: str
    version: str
    directory: str  # inside the module
    files: tuple[str, ...] = ()  # empty: every *.yaml of the directory

    def cache_dir(self, name: str) -> Path:
        return cache_root() / f"{name}-crds-{self.version}"


CRD_SOURCES = {
    # ServiceMonitor and PrometheusRule: what the operator creates and the local Prometheus reads.
    "prometheus-operator": CrdSource(
        "github.com/prometheus-operator/prometheus-operator",
        PROMETHEUS_OPERATOR_VERSION,
        "example/prometheus-operator-crd",
        ("monitoring.coreos.com_servicemonitors.yaml", "monitoring.coreos.com_prometheusrules.yaml"),
    ),
    # ScaledObject, ScaledJob, TriggerAuthentication, ... (and KEDA's eventing CRDs).
    "keda": CrdSource("github.com/kedacore/keda/v2", KEDA_VERSION, "config/crd/bases"),
}


def ensure_crds(name: str) -> list[Path]:
    """The CRD files of `CRD_SOURCES[name]`, copied from the module cache into the tool cache once."""
    source = CRD_SOURCES[name]
    target = source.cache_dir(name)
    marker = target / ".complete"
    if not marker.is_file():
        with _build_lock(f"{name}-crds"):
            if not marker.is_file():
                module_dir = Path(_module_download(source.module, source.version)["Dir"]) / source.directory
                files = [module_dir / file for file in source.files] or sorted(module_dir.glob("*.yaml"))
                missing = [str(path) for path in files if not path.is_file()]
                if missing or not files:
                    raise ToolError(
                        f"{source.module}@{source.version} has no CRD files {missing or source.directory}"
                    )
                target.mkdir(parents=True, exist_ok=True)
                for path in files:
                    (target / path.name).write_bytes(path.read_bytes())
                marker.write_text("\n".join(path.name for path in files) + "\n")
                log(f"{name} CRDs {source.version}: {len(files)} file(s) from {module_dir}")
    return [target / file for file in marker.read_text().split()]


# ---------------------------------------------------------------------------------------------- API


@dataclass(frozen=True)
class ProvidedTool:
    name: str
    path: Path
    source: str


def ensure_tools(names: Sequence[str] = ALL_TOOLS) -> dict[str, ProvidedTool]:
    """Return every requested tool at its pinned version, providing missing ones; prints where each came from."""
    table = tool_table()
    unknown = sorted(set(names) - set(table))
    if unknown:
        raise ToolError(f"unknown tools {unknown}; known: {list(table)}")
    provided: dict[str, ProvidedTool] = {}
    to_build: dict[str, list[str]] = {}
    for name in names:
        tool = table[name]
        given = _given_binary(tool)
        if given:
            provided[name] = ProvidedTool(name, given[0], f"given by {given[1]}")
            continue
        if tool.cached_path.is_file() and _has_pinned_version(tool.cached_path, tool):
            provided[name] = ProvidedTool(name, tool.cached_path, "cache")
            continue
        downloaded = _try_release_download(tool)
        if downloaded and _has_pinned_version(downloaded, tool):
            provided[name] = ProvidedTool(name, downloaded, "official release download")
            continue
        to_build.setdefault(tool.group, []).append(name)
    for group, group_names in to_build.items():
        with _build_lock(group):
            pending = [name for name in group_names if not table[name].cached_path.is_file()]
            if pending:
                _build_group(group, pending)
        for name in group_names:
            tool = table[name]
            if not _has_pinned_version(tool.cached_path, tool):
                raise ToolError(
                    f"{name} built at {tool.cached_path} reports {_reported_version(tool.cached_path, tool)[:200]!r}, "
                    f"not {tool.version}: delete {tool.cached_path.parent} and run `make tools` again"
                )
            provided[name] = ProvidedTool(name, tool.cached_path, "built from Go modules")
    for name in names:
        item = provided[name]
        log(f"{name} {table[name].version}: {item.path} ({item.source})")
    return {name: provided[name] for name in names}


@contextlib.contextmanager
def _build_lock(group: str) -> Iterator[None]:
    """Serialise builds of one group across concurrent runs (two clones, or CI beside a developer)."""
    import fcntl

    lock_path = cache_root() / "_build" / f"{group}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="localcluster tools", description=__doc__)
    parser.add_argument(
        "tools", nargs="*", default=list(ALL_TOOLS), help=f"tools to provide (default: all of {ALL_TOOLS})"
    )
    parser.add_argument(
        "--print-env", action="store_true", help="print DSO_<TOOL>_BINARY=... lines for `eval`"
    )
    parser.add_argument(
        "--crds-for",
        action="append",
        choices=sorted(CRD_SOURCES),
        help="also provide these CRDs (default: all of them when every tool is asked for)",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        provided = ensure_tools(args.tools)
        if not args.crds_for:
            args.crds_for = list(CRD_SOURCES) if set(args.tools) >= set(ALL_TOOLS) else []
        for name in args.crds_for:
            log(f"{name} CRDs: {ensure_crds(name)[0].parent}")
    except ToolError as error:
        log(f"error: {error}")
        return 1
    log(f"all tools ready in {time.monotonic() - started:.1f}s")
    if args.print_env:
        table = tool_table()
        for name, item in provided.items():
            print(f"export {table[name].env_var}={item.path}")
    return 0
