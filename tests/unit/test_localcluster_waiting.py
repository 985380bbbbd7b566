"""The local cluster's start-up waits say why they gave up, not only that they did."""

from __future__ import annotations

from pathlib import Path

import pytest
from localcluster.cluster import ClusterError, LocalCluster, free_port, write_pki


def test_a_wait_that_times_out_reports_the_last_error_of_its_check(tmp_path: Path) -> None:
    cluster = LocalCluster(workdir=tmp_path)
    reasons = iter([ConnectionRefusedError(111, "Connection refused")])

    def check() -> bool:
        raise next(reasons, ClusterError("/readyz answered 500: [-]poststarthook/rbac failed"))

    with pytest.raises(ClusterError) as raised:
        cluster._wait_for("kube-apiserver", check, timeout=0.3)
    message = str(raised.value)
    assert message.startswith("timed out after 0s waiting for kube-apiserver; last error: ClusterError: ")
    assert "/readyz answered 500: [-]poststarthook/rbac failed" in message


def test_an_endpoint_that_does_not_answer_is_named_with_the_connection_error(tmp_path: Path) -> None:
    write_pki(tmp_path / "pki")  # _http_ok presents the admin certificate, as for the real API server
    cluster = LocalCluster(workdir=tmp_path)
    url = f"https://127.0.0.1:{free_port()}/readyz"
    with pytest.raises(ClusterError) as raised:
        cluster._wait_for("kube-apiserver", lambda: cluster._http_ok(url), timeout=0.3)
    assert "last error: URLError: " in str(raised.value)
    assert "Connection refused" in str(raised.value)


def test_a_check_that_only_returns_false_says_so(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match="last error: the check returned False"):
        LocalCluster(workdir=tmp_path)._wait_for("nothing", lambda: False, timeout=0.2)
