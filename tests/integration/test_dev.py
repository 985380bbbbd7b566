"""`make dev` keeps working: its script brings up the cluster, the operator and the sample until Ready."""

from __future__ import annotations

import os
import re
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
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.startswith("NAME ") and "ACTIVE" in line)
    dsd_line = next(line for line in lines if line.startswith("r1-distill-prod "))
    # Cut at the header's offsets: a cell not written yet (the spot controller's Fallback columns may
    # come a moment after Ready) is empty rather than shifting the others.
    starts = [match.start() for match in re.finditer(r"\S+", header)]
    cells = {
        header[start:end].strip(): dsd_line[start:end].strip()
        for start, end in zip(starts, [*starts[1:], len(dsd_line)], strict=True)
    }
    assert (cells["ACTIVE"], cells["READY"], cells["SPOT"], cells["STATUS"]) == (
        "us-east",
        "4/4",
        "25%",
        "True",
    )
    assert cells["FALLBACK"] in ("0", ""), cells
    # Pods per region and pool.
    pods = [line.split() for line in result.stdout.splitlines() if line.startswith("r1-distill-prod-")]
    pools = sorted((columns[1], columns[2]) for columns in pods if len(columns) == 5)
    assert pools == [("eu-west", "on-demand")] + [("us-east", "on-demand")] * 3 + [("us-east", "spot")]
    assert not (tmp_path / "dev" / "state.json").exists(), "everything it started is stopped"
