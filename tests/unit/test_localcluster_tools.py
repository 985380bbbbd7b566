"""Tool provisioning: user-given binaries are checked, the Kubernetes wrapper module is derived correctly."""

from __future__ import annotations

import hashlib
import re
import stat
from pathlib import Path

import pytest
from localcluster import checksums, tools


def _fake_binary(path: Path, output: str) -> Path:
    path.write_text(f"#!/bin/sh\necho '{output}'\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_a_given_binary_at_the_pinned_version_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    binary = _fake_binary(tmp_path / "etcd", f"etcd Version: {tools.ETCD_VERSION.lstrip('v')}")
    monkeypatch.setenv("DSO_ETCD_BINARY", str(binary))
    provided = tools.ensure_tools(["etcd"])
    assert provided["etcd"].path == binary
    assert provided["etcd"].source == "given by DSO_ETCD_BINARY"


def test_a_given_binary_at_another_version_is_refused_with_the_variable_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    binary = _fake_binary(tmp_path / "kube-apiserver", "Kubernetes v1.30.0")
    monkeypatch.setenv("TEST_ASSET_KUBE_APISERVER", str(binary))
    with pytest.raises(
        tools.ToolError, match=r"TEST_ASSET_KUBE_APISERVER=.* is not kube-apiserver v1\.36\.3.*unset"
    ):
        tools.ensure_tools(["kube-apiserver"])


def test_kubebuilder_assets_directory_is_searched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_binary(tmp_path / "kube-apiserver", f"Kubernetes {tools.KUBERNETES_VERSION}")
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(tmp_path))
    assert tools.ensure_tools(["kube-apiserver"])["kube-apiserver"].source == "given by KUBEBUILDER_ASSETS"


def test_a_missing_given_binary_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSO_KWOK_BINARY", str(tmp_path / "nope"))
    with pytest.raises(tools.ToolError, match=r"DSO_KWOK_BINARY=.* does not exist"):
        tools.ensure_tools(["kwok"])


def test_unknown_tools_are_named() -> None:
    with pytest.raises(tools.ToolError, match="unknown tools \\['kind'\\]"):
        tools.ensure_tools(["kind"])


def test_kubernetes_ldflags_set_the_real_version_in_both_version_packages() -> None:
    flags = tools._kubernetes_ldflags()
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        assert f"-X {package}.gitVersion={tools.KUBERNETES_VERSION}" in flags
        assert f"-X {package}.gitMinor=36" in flags


def test_staging_replace_directives_are_read_from_upstreams_go_mod() -> None:
    upstream = """replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/cri-streaming => ./staging/src/k8s.io/cri-streaming
\tgithub.com/other/thing => github.com/other/thing v1.0.0
)"""
    assert tools._K8S_STAGING_REPLACE.findall(upstream) == ["k8s.io/api", "k8s.io/cri-streaming"]


# ------------------------------------------------------------------------- pinned checksums of downloads


def test_every_official_download_has_a_pinned_checksum_entry_for_amd64_and_arm64() -> None:
    downloadable = {name for name, tool in tools.tool_table().items() if tool.release_url}
    expected = {(name, arch) for name in downloadable for arch in checksums.ARCHITECTURES}
    assert set(checksums.PINNED_SHA256) == expected
    assert {"etcd", "kwok", "helm", "prometheus", "actionlint"} <= downloadable
    for key, value in checksums.PINNED_SHA256.items():
        assert value is None or re.fullmatch(r"[0-9a-f]{64}", value), key


def test_tools_sharing_one_release_archive_pin_the_same_checksum() -> None:
    for arch in checksums.ARCHITECTURES:
        assert checksums.PINNED_SHA256[("prometheus", arch)] == checksums.PINNED_SHA256[("promtool", arch)]


def test_a_download_without_a_pinned_checksum_is_never_attempted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DSO_TOOLS_NO_DOWNLOAD", raising=False)
    monkeypatch.setitem(checksums.PINNED_SHA256, ("etcd", tools._go_arch()), None)
    monkeypatch.setattr(tools, "_download", _no_network)
    assert tools._try_release_download(tools.tool_table()["etcd"]) is None


def test_a_download_is_installed_only_when_it_matches_the_pinned_checksum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DSO_TOOLS_NO_DOWNLOAD", raising=False)
    monkeypatch.setenv("DSO_TOOLS_DIR", str(tmp_path))
    payload = b"#!/bin/sh\necho kwok 0.8.0\n"
    monkeypatch.setattr(tools, "_download", lambda url: payload)
    key = ("kwok", tools._go_arch())
    kwok = tools.tool_table()["kwok"]
    monkeypatch.setitem(checksums.PINNED_SHA256, key, "0" * 64)
    with pytest.raises(tools.ToolError, match=r"checksum mismatch.*pinned 0000"):
        tools._try_release_download(kwok)
    assert not kwok.cached_path.exists()
    monkeypatch.setitem(checksums.PINNED_SHA256, key, hashlib.sha256(payload).hexdigest())
    assert tools._try_release_download(kwok) == kwok.cached_path
    assert kwok.cached_path.read_bytes() == payload


def _no_network(url: str) -> bytes:
    raise AssertionError(f"unexpected download of {url}")


# ------------------------------------------------------------------------- monitoring tools and CRDs


def test_the_cluster_tools_include_prometheus_and_the_adapter_and_make_tools_provides_all() -> None:
    assert {"prometheus", "prometheus-adapter"} <= set(tools.CLUSTER_TOOLS)
    assert set(tools.CLUSTER_TOOLS) | set(tools.KEDA_TOOLS) | {"helm", "promtool", "actionlint"} <= set(
        tools.ALL_TOOLS
    )
    assert set(tools.ALL_TOOLS) == set(tools.tool_table())


def test_prometheus_is_built_with_the_release_version_it_corresponds_to() -> None:
    assert tools.prometheus_module_version("v3.16.0") == "v0.316.0"
    assert tools.prometheus_module_version("v3.5.1") == "v0.305.1"
    flags = tools._prometheus_ldflags()
    assert f"-X github.com/prometheus/common/version.Version={tools.PROMETHEUS_VERSION.lstrip('v')}" in flags
    assert tools.tool_table()["promtool"].expected_version_text == "promtool, version 3.16.0"


def test_upstream_replace_and_exclude_directives_are_copied_into_the_wrapper() -> None:
    upstream = """module github.com/kedacore/keda/v2

go 1.26.0

// Needed replaces
replace github.com/nexus-rpc/nexus-proto-annotations v0.1.0 => github.com/nexus-rpc/nexus-proto-annotations v0.1.1-0.2026 // why

replace (
\tgithub.com/a/b => github.com/a/b v1.2.3
)

exclude github.com/go-chi/chi/v5 v5.2.3

require (
\tgithub.com/x/y v1.0.0
)
"""
    copied = tools.upstream_replaces_and_excludes(upstream)
    assert copied.split("\n")[1:-1] == [
        "replace github.com/nexus-rpc/nexus-proto-annotations v0.1.0 => "
        "github.com/nexus-rpc/nexus-proto-annotations v0.1.1-0.2026",
        "replace github.com/a/b => github.com/a/b v1.2.3",
        "exclude github.com/go-chi/chi/v5 v5.2.3",
    ]
    assert tools._go_directive(upstream) == "go1.26"
    assert tools.upstream_replaces_and_excludes("module x\n\ngo 1.22.1\n") == ""


def test_an_upstream_replace_with_a_local_path_cannot_be_wrapped() -> None:
    with pytest.raises(tools.ToolError, match="local path"):
        tools.upstream_replaces_and_excludes("replace k8s.io/api => ./staging/src/k8s.io/api\n")


def test_a_binary_without_a_version_flag_is_checked_by_its_go_build_info(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_go = tmp_path / "bin" / "go"
    fake_go.parent.mkdir()
    _fake_binary(
        fake_go,
        "adapter: go1.26.8\\n\\tpath\\tsigs.k8s.io/prometheus-adapter/cmd/adapter\\n"
        "\\tdep\\tsigs.k8s.io/prometheus-adapter\\tv0.12.0\\th1:abc=\\n\\tdep\\tk8s.io/api\\tv0.30.0\\th1:x=",
    )
    fake_go.write_text(fake_go.read_text().replace("echo '", "printf '"))
    monkeypatch.setenv("PATH", f"{fake_go.parent}:/usr/bin:/bin")
    adapter = tools.tool_table()["prometheus-adapter"]
    reported = tools._reported_version(tmp_path / "adapter", adapter)
    assert reported == "dep sigs.k8s.io/prometheus-adapter v0.12.0 h1:abc="
    assert tools._has_pinned_version(tmp_path / "adapter", adapter)


def test_crds_are_copied_from_the_module_once_and_their_paths_returned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = tmp_path / "module"
    (module / "config" / "crd" / "bases").mkdir(parents=True)
    for name in ("keda.sh_scaledobjects.yaml", "keda.sh_scaledjobs.yaml"):
        (module / "config" / "crd" / "bases" / name).write_text(f"kind: CustomResourceDefinition # {name}\n")
    monkeypatch.setenv("DSO_TOOLS_DIR", str(tmp_path / "cache"))
    calls: list[str] = []

    def fake_download(name: str, version: str) -> dict[str, str]:
        calls.append(f"{name}@{version}")
        return {"Dir": str(module)}

    monkeypatch.setattr(tools, "_module_download", fake_download)
    paths = tools.ensure_crds("keda")
    assert [path.name for path in paths] == ["keda.sh_scaledjobs.yaml", "keda.sh_scaledobjects.yaml"]
    assert all(path.is_file() and str(path).startswith(str(tmp_path / "cache")) for path in paths)
    assert tools.ensure_crds("keda") == paths
    assert calls == [f"github.com/kedacore/keda/v2@{tools.KEDA_VERSION}"]


def test_missing_crd_files_in_the_module_are_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DSO_TOOLS_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(tools, "_module_download", lambda name, version: {"Dir": str(tmp_path)})
    with pytest.raises(tools.ToolError, match=r"no CRD files.*servicemonitors"):
        tools.ensure_crds("prometheus-operator")
