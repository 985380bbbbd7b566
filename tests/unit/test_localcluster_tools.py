"""Tool provisioning: user-given binaries are checked, the Kubernetes wrapper module is derived correctly."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from localcluster import tools


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
