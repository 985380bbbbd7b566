"""Throughput of one simulator process on loopback: how many requests per second the simulator
itself sustains, and its latency percentiles, with a fast simulated model so that the HTTP and
event-loop overhead is what gets measured.

    python bench/simulator_throughput.py [--concurrency 32] [--duration 10] [--stream]

Starts `python -m deepseek_simulator` from images/simulator (no install needed), drives it with a
bounded number of concurrent clients for a bounded time, prints requests/s and p50/p99 latency,
then stops it with SIGTERM. Total runtime stays under ~30 s with the defaults.

Clients start requests until the deadline and let the last ones finish; requests/s is the number of
requests that finished with 200 divided by the measured time from the first request to the last answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

# Run from a checkout without installing the simulator package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "images" / "simulator"))

import aiohttp
from deepseek_simulator.testing import SimulatorProcess

MAX_DURATION_S = 20.0
MAX_CONCURRENCY = 512


@dataclass
class Results:
    latencies_s: list[float] = field(default_factory=list)  # one per request that finished with 200
    errors: int = 0
    elapsed_s: float = 0.0  # from the first request sent to the last one finished


async def _client(
    session: aiohttp.ClientSession,
    url: str,
    body: dict[str, object],
    stream: bool,
    deadline: float,
    results: Results,
) -> None:
    while time.monotonic() < deadline:
        started = time.monotonic()
        try:
            async with session.post(url, json=body) as response:
                if stream:
                    async for _chunk in response.content.iter_any():
                        pass
                else:
                    await response.read()
                ok = response.status == 200
        except aiohttp.ClientError:
            ok = False
        if ok:
            results.latencies_s.append(time.monotonic() - started)
        else:
            results.errors += 1


async def drive(base_url: str, concurrency: int, duration_s: float, max_tokens: int, stream: bool) -> Results:
    results = Results()
    body: dict[str, object] = {"model": "bench", "prompt": "Benchmark prompt", "max_tokens": max_tokens}
    if stream:
        body["stream"] = True
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.monotonic()
        deadline = started + duration_s
        url = f"{base_url}/v1/completions"
        await asyncio.gather(
            *(_client(session, url, body, stream, deadline, results) for _ in range(concurrency))
        )
        results.elapsed_s = time.monotonic() - started
    return results


def percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def summarize(results: Results, model_latency_ms: float, concurrency: int, stream: bool) -> dict[str, object]:
    """The figures of one run; requests/s counts finished requests over the measured elapsed time."""
    latencies = sorted(results.latencies_s)
    return {
        "requests": len(latencies),
        "errors": results.errors,
        "elapsed_s": round(results.elapsed_s, 3),
        "requests_per_second": round(len(latencies) / results.elapsed_s, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2),
        "model_latency_ms": round(model_latency_ms, 2),
        "concurrency": concurrency,
        "stream": stream,
    }


def report(summary: dict[str, object]) -> list[str]:
    return [
        f"simulator throughput: {summary['requests_per_second']} req/s "
        f"({summary['requests']} requests finished, {summary['errors']} errors in {summary['elapsed_s']} s, "
        f"{summary['concurrency']} concurrent, {'streaming' if summary['stream'] else 'non-streaming'})",
        f"latency: p50 {summary['p50_ms']} ms, p99 {summary['p99_ms']} ms "
        f"(simulated model alone: {summary['model_latency_ms']} ms)",
        json.dumps(summary),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent clients (default 32)")
    parser.add_argument(
        "--duration", type=float, default=10.0, help=f"seconds of load, at most {MAX_DURATION_S:g}"
    )
    parser.add_argument("--max-tokens", type=int, default=16, help="output tokens per request (default 16)")
    parser.add_argument("--tokens-per-second", type=float, default=10000.0, help="simulated decode speed")
    parser.add_argument("--ttft-ms", type=float, default=1.0, help="simulated time to first token")
    parser.add_argument("--max-num-seqs", type=int, default=256, help="simulated batch size")
    parser.add_argument("--stream", action="store_true", help="use SSE streaming responses")
    args = parser.parse_args()
    if not 1 <= args.concurrency <= MAX_CONCURRENCY:
        parser.error(f"--concurrency must be between 1 and {MAX_CONCURRENCY}")
    if not 0 < args.duration <= MAX_DURATION_S:
        parser.error(f"--duration must be above 0 and at most {MAX_DURATION_S:g} seconds")

    simulator = SimulatorProcess(
        [
            "--served-model-name", "bench",
            "--max-num-seqs", str(args.max_num_seqs),
            "--tokens-per-second", str(args.tokens_per_second),
            "--ttft-ms", str(args.ttft_ms),
        ]
    )  # fmt: skip
    try:
        results = asyncio.run(
            drive(simulator.base_url, args.concurrency, args.duration, args.max_tokens, args.stream)
        )
    finally:
        simulator.process.send_signal(signal.SIGTERM)
        simulator.close()

    if not results.latencies_s:
        print(f"no request succeeded ({results.errors} errors)", file=sys.stderr)
        return 1
    model_latency_ms = args.ttft_ms + (args.max_tokens - 1) / args.tokens_per_second * 1000
    summary = summarize(results, model_latency_ms, args.concurrency, args.stream)
    for line in report(summary):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
