"""Helpers for tests that need a real simulator: one on a free loopback port (in-process or as a
subprocess) and a /metrics scraper that parses the Prometheus text format. Used by this repo's
unit tests and available to the e2e harness."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from deepseek_simulator.config import SimulatorConfig
from deepseek_simulator.server import SimulatorServer

# The directory holding the deepseek_simulator package, for subprocesses run without installing it.
SIMULATOR_SOURCE = Path(__file__).resolve().parents[1]


@contextlib.asynccontextmanager
async def running_simulator(**settings: Any) -> AsyncIterator[tuple[SimulatorServer, str]]:
    """An in-process simulator serving model "sim" on a free loopback port; yields (server, base URL)."""
    settings.setdefault("served_model_name", "sim")
    server = SimulatorServer(SimulatorConfig(host="127.0.0.1", port=0, **settings))
    port = await server.start()
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        await server.stop()


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse_metrics(text: str) -> Samples:
    """Every sample keyed by (sample name, sorted labels)."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


async def scrape(session: aiohttp.ClientSession, base_url: str) -> Samples:
    async with session.get(f"{base_url}/metrics") as response:
        assert response.status == 200
        return parse_metrics(await response.text())


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def completion_body(max_tokens: int, prompt: str = "Hello", **extra: Any) -> dict[str, Any]:
    return {"model": "sim", "prompt": prompt, "max_tokens": max_tokens, **extra}


class SimulatorProcess:
    """`python -m deepseek_simulator` as a real subprocess; the port comes from its 'listening' log."""

    def __init__(self, args: list[str], env: Mapping[str, str] | None = None) -> None:
        full_env = {**os.environ, "PYTHONPATH": str(SIMULATOR_SOURCE), **(env or {})}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "deepseek_simulator", "--port", "0", *args],
            env=full_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.log_lines: list[dict[str, Any]] = []
        self.port = self._wait_for_port(timeout=20.0)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _wait_for_port(self, timeout: float) -> int:
        assert self.process.stderr is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stderr.readline()
            if not line:
                break
            entry = json.loads(line)
            self.log_lines.append(entry)
            if entry.get("msg") == "listening":
                return int(entry["port"])
        self.process.kill()
        raise AssertionError(f"simulator did not start listening: {self.log_lines}")

    def remaining_logs(self) -> list[dict[str, Any]]:
        """The log lines after exit (call once the process has ended)."""
        assert self.process.stderr is not None
        self.log_lines += [json.loads(line) for line in self.process.stderr.read().splitlines() if line]
        return self.log_lines

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        if self.process.stderr is not None:
            self.process.stderr.close()
