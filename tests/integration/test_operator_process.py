"""The harness's OperatorProcess never leaves an operator behind when its start fails."""

from __future__ import annotations

from pathlib import Path

import pytest
from localcluster.operator import OperatorProcess
from localcluster.waiting import WaitTimeoutError


def test_a_failed_start_stops_the_operator_it_started(tmp_path: Path) -> None:
    # No kubeconfig: kopf keeps retrying its login and never becomes live.
    operator = OperatorProcess(tmp_path / "missing-kubeconfig", tmp_path / "operator.log", start_timeout=3)
    with pytest.raises(WaitTimeoutError, match="liveness endpoint"):
        operator.start()
    assert operator.process is not None
    assert operator.process.poll() is not None, "the operator process still runs after a failed start"
