"""Provide pinned control-plane binaries: given ones, an official download, or a build from Go modules.

Order of preference for every tool (first that works wins, and the source is printed):
1. a binary the user points at (``DSO_<TOOL>_BINARY``, or ``KUBEBUILDER_ASSETS`` / ``TEST_ASSET_*`` as
   envtest defines them), accepted only at the pinned version;
2. the cache (``$XDG_CACHE_HOME/deepseek-operator/tools/<tool>-<version>/``), shared by every clone;
3. the official release download, when the network allows it (fails fast when it does not);
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

KUBERNETES_VERSION = "v1.36.3"
ETCD_VERSION = "v3.6.16"
KWOK_VERSION = "v0.8.0"
HELM_VERSION = "v3.21.4"

# Every tool the project needs, in the order `tools` provides them.
ALL_TOOLS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kwok",
    "helm",
)
# What the local cluster (and so every cluster test) needs.
CLUSTER_TOOLS = ALL_TOOLS[:6]
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
    checksum_url: str | None = None
    group: str = field(default="")  # tools built together share one Go wrapper module

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
        checksum_url=base + ".sha256",
        group="kubernetes",
    )


def _go_arch() -> str:
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)


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
            checksum_url=f"https://get.helm.sh/helm-{HELM_VERSION}-linux-{arch}.tar.gz.sha256sum",
            group="helm",
        ),
    ]
    return {tool.name: tool for tool in tools}


def _reported_version(binary: Path, tool: Tool) -> str:
    try:
        result = subprocess.run(
            [str(binary), *tool.version_args], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError as error:
        return f"<cannot run: {error}>"
    return (result.stdout + result.stderr).strip()


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
    """Download the official release; None when the network does not allow it."""
    if os.environ.get("DSO_TOOLS_NO_DOWNLOAD") == "1" or not tool.release_url:
        return None
    try:
        log(f"{tool.name}: downloading {tool.release_url}")
        payload = _download(tool.release_url)
        if tool.checksum_url:
            expected = _download(tool.checksum_url).decode().split()[0]
            actual = hashlib.sha256(payload).hexdigest()
            if actual != expected:
                raise ToolError(
                    f"{tool.name}: checksum mismatch for {tool.release_url}: {actual} != {expected}"
                )
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        log(f"{tool.name}: download not possible here ({error}); building from Go modules instead")
        return None
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
    workdir: Path, requires: dict[str, str], imports: Sequence[str], extra: str = ""
) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    require_lines = "\n".join(f"\t{module} {version}" for module, version in requires.items())
    (workdir / "go.mod").write_text(
        "// Generated by e2e/localcluster/tools.py: builds pinned binaries from published modules.\n"
        "module deepseek-operator.local/toolbuild\n\ngo 1.26.0\n\n"
        "godebug default=go1.26\n\n"
        f"require (\n{require_lines}\n)\n{extra}"
    )
    import_lines = "\n".join(f'\t_ "{package}"' for package in imports)
    (workdir / "tools.go").write_text(f"//go:build tools\n\npackage tools\n\nimport (\n{import_lines}\n)\n")


def _kubernetes_staging_replaces() -> str:
    """Replace every staging module with its published v0.x.y twin (upstream replaces them with ./staging)."""
    scratch = cache_root() / "_build" / "kubernetes-modinfo"
    scratch.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [_go(), "mod", "download", "-json", f"k8s.io/kubernetes@{KUBERNETES_VERSION}"],
        cwd=scratch,
        env=_go_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ToolError(
            f"cannot download k8s.io/kubernetes@{KUBERNETES_VERSION}: {result.stderr or result.stdout}"
        )
    go_mod = Path(json.loads(result.stdout)["GoMod"]).read_text()
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
    else:  # pragma: no cover - the table and this function are edited together
        raise ToolError(f"unknown tool group {group}")
    what = f"build {', '.join(names)} from Go modules"
    log(f"{what}: resolving modules in {workdir}")
    _run_go(["mod", "tidy"], workdir, f"{group}: go mod tidy")
    log(f"{what}: compiling (several minutes when cold; later runs reuse the Go build cache)")
    _run_go(["build", "-v", "-trimpath", *build_args, "-o", str(output_dir) + "/", *packages], workdir, what)
    for name in names:
        # go names a binary after the package path's last element, skipping a /vN major-version suffix.
        built = output_dir / ("server" if group == "etcd" else name)
        if not built.is_file():
            candidates = sorted(path.name for path in output_dir.iterdir())
            raise ToolError(f"{what}: expected {built} after the build, found {candidates}")
        _install_bytes(built.read_bytes(), table[name].cached_path)


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
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        provided = ensure_tools(args.tools)
    except ToolError as error:
        log(f"error: {error}")
        return 1
    log(f"all tools ready in {time.monotonic() - started:.1f}s")
    if args.print_env:
        table = tool_table()
        for name, item in provided.items():
            print(f"export {table[name].env_var}={item.path}")
    return 0
