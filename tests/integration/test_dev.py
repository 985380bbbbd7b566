"""`make dev` keeps working: its script brings up the cluster, the operator and the sample until Ready."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_dev_runs_the_sample_to_ready_and_prints_what_a_user_looks_at(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": f"{REPO_ROOT / 'e2e'}:{REPO_ROOT / 'operator'}"}
    result = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "hack" / "dev.py"),
            "--exit-when-ready",
            "--dir",
            str(tmp_path / "dev"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "r1-distill-prod Ready" in result.stdout
    # kubectl get dsd: the printer columns a user reads.
    dsd_line = next(line for line in result.stdout.splitlines() if line.startswith("r1-distill-prod "))
    assert dsd_line.split()[1:5] == ["us-east", "4/4", "25%", "True"]
    # Pods per region and pool.
    pods = [line.split() for line in result.stdout.splitlines() if line.startswith("r1-distill-prod-")]
    pools = sorted((columns[1], columns[2]) for columns in pods if len(columns) == 5)
    assert pools == [("eu-west", "on-demand")] + [("us-east", "on-demand")] * 3 + [("us-east", "spot")]
    assert not (tmp_path / "dev" / "state.json").exists(), "everything it started is stopped"
