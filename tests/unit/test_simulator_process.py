"""The simulator as a real process: SIGTERM drains like the contract says, bad settings exit 2."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Iterator

import aiohttp
import pytest
from deepseek_simulator.testing import SIMULATOR_SOURCE, SimulatorProcess, completion_body


async def _read_body(request: Awaitable[aiohttp.ClientResponse]) -> bytes:
    response = await request
    return await response.read()


@pytest.fixture
def slow_simulator(request: pytest.FixtureRequest) -> Iterator[SimulatorProcess]:
    drain_seconds: str = request.param
    # 20 tokens/s: a 21-token request runs about one second, long enough to signal mid-request.
    process = SimulatorProcess(
        ["--served-model-name", "sim", "--ttft-ms", "10", "--tokens-per-second", "20"],
        env={"DSD_DRAIN_SECONDS": drain_seconds},
    )
    try:
        yield process
    finally:
        process.close()


@pytest.mark.parametrize("slow_simulator", ["5"], indirect=True)
async def test_sigterm_refuses_new_work_and_lets_running_requests_finish(
    slow_simulator: SimulatorProcess,
) -> None:
    base_url = slow_simulator.base_url
    async with aiohttp.ClientSession() as session:
        running = asyncio.create_task(session.post(f"{base_url}/v1/completions", json=completion_body(21)))
        await asyncio.sleep(0.3)
        signalled_at = time.monotonic()
        slow_simulator.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.2)
        async with session.get(f"{base_url}/health") as response:
            health = (response.status, await response.json())
        async with session.post(f"{base_url}/v1/completions", json=completion_body(1)) as response:
            refused_status = response.status
        finished = await running
        body = await finished.json()
        exit_code = await asyncio.to_thread(slow_simulator.process.wait, 10)
        exited_after = time.monotonic() - signalled_at

    assert health == (503, {"status": "draining"})
    assert refused_status == 503
    assert finished.status == 200
    assert body["usage"]["completion_tokens"] == 21
    assert exit_code == 0
    assert exited_after < 3.0  # it left as soon as the request finished, not after the 5 s deadline
    messages = [entry["msg"] for entry in slow_simulator.remaining_logs()]
    assert "drained" in messages


@pytest.mark.parametrize("slow_simulator", ["0.5"], indirect=True)
async def test_sigterm_stops_at_the_drain_deadline(slow_simulator: SimulatorProcess) -> None:
    async with aiohttp.ClientSession() as session:
        # 60 tokens at 20 tokens/s: three seconds, far past the half-second deadline.
        running = asyncio.create_task(
            session.post(f"{slow_simulator.base_url}/v1/completions", json=completion_body(60))
        )
        await asyncio.sleep(0.3)
        signalled_at = time.monotonic()
        slow_simulator.process.send_signal(signal.SIGTERM)
        exit_code = await asyncio.to_thread(slow_simulator.process.wait, 10)
        exited_after = time.monotonic() - signalled_at
        with pytest.raises(aiohttp.ClientError):
            await _read_body(running)

    assert exit_code == 0
    # The 0.5 s deadline, then the cut requests are cancelled at once.
    assert 0.4 < exited_after < 1.5
    messages = [entry["msg"] for entry in slow_simulator.remaining_logs()]
    assert "drain deadline passed with requests still running" in messages


def test_invalid_settings_exit_2_with_a_message_naming_the_setting() -> None:
    env = {**os.environ, "PYTHONPATH": str(SIMULATOR_SOURCE), "SIM_TOKENS_PER_SECOND": "fast"}
    result = subprocess.run(
        [sys.executable, "-m", "deepseek_simulator", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    (entry,) = [json.loads(line) for line in result.stderr.splitlines()]
    assert entry["level"] == "error"
    assert entry["msg"].startswith("SIM_TOKENS_PER_SECOND='fast' is not a number: set it to")
