"""e2e/tests/traffic_client.py, which the serving tests run (in a Pod on kind, as a process on the local cluster), against a real
simulator process here: the requests it sends, what it prints, and the metric names and labels those
tests read afterwards. Run with `python -I` and no repository on the path, as in the simulator image."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from deepseek_simulator.testing import SimulatorProcess, parse_metrics
from localcluster.waiting import wait_until

TRAFFIC_CLIENT = Path(__file__).resolve().parents[2] / "e2e" / "tests" / "traffic_client.py"
MODEL = "deepseek-r1-7b"


def traffic_client(*arguments: str) -> list[str]:
    # -I: isolated mode, no PYTHONPATH, no user site: only the standard library, like in the image.
    return [sys.executable, "-I", str(TRAFFIC_CLIENT), *arguments]


def metrics(simulator: SimulatorProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"{simulator.base_url}/metrics", timeout=5) as response:  # noqa: S310 (loopback)
        return parse_metrics(response.read().decode())


@pytest.fixture
def small_simulator() -> Iterator[SimulatorProcess]:
    """Two sequences at a time, like e2e/kind/sample-simulator.yaml's maxBatchSize, and fast tokens."""
    simulator = SimulatorProcess(
        ["--served-model-name", MODEL, "--max-num-seqs", "2", "--tokens-per-second", "200", "--ttft-ms", "10"]
    )
    try:
        yield simulator
    finally:
        simulator.close()


def test_chat_mode_prints_one_chat_completion_per_request_and_the_server_counts_them(
    small_simulator: SimulatorProcess,
) -> None:
    result = subprocess.run(
        traffic_client("chat", small_simulator.base_url, MODEL, "--count", "3", "--max-tokens", "5"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(a["object"], a["model"], a["usage"]["completion_tokens"]) for a in answers] == [
        ("chat.completion", MODEL, 5)
    ] * 3

    samples = metrics(small_simulator)
    # The names and labels test_serving.py sums and reads.
    finished = sum(
        value
        for (name, labels), value in samples.items()
        if name == "vllm:request_success_total" and dict(labels)["model_name"] == MODEL
    )
    assert finished == 3
    assert samples[("vllm:num_requests_waiting", (("model_name", MODEL),))] == 0


def test_chat_mode_fails_on_a_model_the_server_does_not_serve(small_simulator: SimulatorProcess) -> None:
    result = subprocess.run(
        traffic_client("chat", small_simulator.base_url, "another-model", "--count", "1"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "404" in result.stderr


def test_load_mode_keeps_requests_waiting_beyond_the_batch_and_reports_outcomes(
    small_simulator: SimulatorProcess,
) -> None:
    load = subprocess.Popen(
        traffic_client(
            "load", small_simulator.base_url, MODEL, "--workers", "6", "--seconds", "3", "--max-tokens", "100"
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # 6 workers, 2 sequences at a time: 4 wait, the queue depth the HPA test scales on.
        wait_until(
            lambda: metrics(small_simulator)[("vllm:num_requests_waiting", (("model_name", MODEL),))] >= 4,
            10,
            "4 requests waiting in the simulator's queue",
        )
        stdout, stderr = load.communicate(timeout=30)
    finally:
        load.kill()
        load.wait()
    assert load.returncode == 0, stderr
    outcomes = json.loads(stdout)
    assert outcomes["failed"] == 0
    assert outcomes["ok"] >= 6
