"""The capacity model under concurrent load: queue depth, latency and counters move like a real
continuous-batching server's."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from deepseek_simulator.testing import completion_body, running_simulator, sample, scrape

MODEL = {"model_name": "sim"}


async def _timed_completion(session: aiohttp.ClientSession, base_url: str, max_tokens: int) -> float:
    started = time.monotonic()
    async with session.post(f"{base_url}/v1/completions", json=completion_body(max_tokens)) as response:
        assert response.status == 200
        body = await response.json()
    assert body["usage"]["completion_tokens"] == max_tokens
    return time.monotonic() - started


async def test_single_request_latency_is_ttft_plus_decode_time() -> None:
    ttft_s, tokens_per_second, max_tokens = 0.1, 100.0, 21
    expected = ttft_s + (max_tokens - 1) / tokens_per_second  # 0.3 s
    async with (
        running_simulator(ttft_ms=ttft_s * 1000, tokens_per_second=tokens_per_second) as (_server, base_url),
        aiohttp.ClientSession() as session,
    ):
        latency = await _timed_completion(session, base_url, max_tokens)
        samples = await scrape(session, base_url)

    assert latency == pytest.approx(expected, abs=0.1)
    assert sample(samples, "vllm:e2e_request_latency_seconds_count", **MODEL) == 1
    assert sample(samples, "vllm:e2e_request_latency_seconds_sum", **MODEL) == pytest.approx(
        expected, abs=0.05
    )
    assert sample(samples, "vllm:time_to_first_token_seconds_sum", **MODEL) == pytest.approx(ttft_s, abs=0.05)
    # 0.3 s lands in the 0.3 < le <= 0.5 bucket, never in the 0.3 one.
    assert sample(samples, "vllm:e2e_request_latency_seconds_bucket", le="0.5", **MODEL) == 1
    assert sample(samples, "vllm:e2e_request_latency_seconds_bucket", le="0.3", **MODEL) == 0


async def test_requests_beyond_max_num_seqs_queue_and_wait_in_waves() -> None:
    max_num_seqs, concurrent, max_tokens = 2, 6, 21
    ttft_s, tokens_per_second = 0.1, 100.0
    service_s = ttft_s + (max_tokens - 1) / tokens_per_second  # 0.3 s per request once it runs
    async with (
        running_simulator(
            max_num_seqs=max_num_seqs, ttft_ms=ttft_s * 1000, tokens_per_second=tokens_per_second
        ) as (
            _server,
            base_url,
        ),
        aiohttp.ClientSession() as session,
    ):
        load = [
            asyncio.create_task(_timed_completion(session, base_url, max_tokens)) for _ in range(concurrent)
        ]
        peak_waiting = peak_running = 0.0
        while not all(task.done() for task in load):
            samples = await scrape(session, base_url)
            peak_waiting = max(peak_waiting, sample(samples, "vllm:num_requests_waiting", **MODEL))
            peak_running = max(peak_running, sample(samples, "vllm:num_requests_running", **MODEL))
            await asyncio.sleep(0.02)
        latencies = sorted(await asyncio.gather(*load))
        final = await scrape(session, base_url)

    assert peak_waiting == concurrent - max_num_seqs
    assert peak_running == max_num_seqs
    assert sample(final, "vllm:num_requests_waiting", **MODEL) == 0
    assert sample(final, "vllm:num_requests_running", **MODEL) == 0
    # Three waves of two: the k-th pair finishes after about k service times.
    for index, latency in enumerate(latencies):
        wave = index // max_num_seqs + 1
        assert latency == pytest.approx(wave * service_s, abs=0.15), latencies
    assert sample(final, "vllm:e2e_request_latency_seconds_sum", **MODEL) == pytest.approx(
        max_num_seqs * service_s * (1 + 2 + 3), rel=0.2
    )
    # Queue time: the second wave waits one service time, the third two.
    assert sample(final, "vllm:request_queue_time_seconds_sum", **MODEL) == pytest.approx(
        max_num_seqs * service_s * (0 + 1 + 2), rel=0.25
    )
    assert sample(final, "vllm:request_success_total", finished_reason="length", **MODEL) == concurrent
    assert sample(final, "vllm:generation_tokens_total", **MODEL) == concurrent * max_tokens
    assert sample(final, "vllm:prompt_tokens_total", **MODEL) == concurrent * 2  # "Hello" = 2 tokens


async def test_kv_cache_usage_follows_tokens_held_by_running_sequences() -> None:
    async with (
        running_simulator(ttft_ms=0, tokens_per_second=50, kv_cache_tokens=100) as (_server, base_url),
        aiohttp.ClientSession() as session,
    ):
        # A 40-character prompt is 10 tokens; 30 output tokens take 0.6 s.
        request = asyncio.create_task(
            session.post(f"{base_url}/v1/completions", json=completion_body(30, prompt="x" * 40))
        )
        await asyncio.sleep(0.3)
        during = sample(await scrape(session, base_url), "vllm:kv_cache_usage_perc", **MODEL)
        response = await request
        assert response.status == 200
        response.release()
        after = sample(await scrape(session, base_url), "vllm:kv_cache_usage_perc", **MODEL)

    # About 10 prompt + 15 generated tokens of 100 half way through.
    assert 0.15 <= during <= 0.35
    assert after == 0


async def test_sglang_dialect_counts_the_same_load_under_sglang_names() -> None:
    async with (
        running_simulator(engine="sglang", max_num_seqs=1, ttft_ms=50, tokens_per_second=100) as (
            _server,
            base_url,
        ),
        aiohttp.ClientSession() as session,
    ):
        load = [asyncio.create_task(_timed_completion(session, base_url, 11)) for _ in range(3)]
        peak_queue = 0.0
        while not all(task.done() for task in load):
            samples = await scrape(session, base_url)
            peak_queue = max(peak_queue, sample(samples, "sglang:num_queue_reqs", **MODEL))
            await asyncio.sleep(0.02)
        await asyncio.gather(*load)
        final = await scrape(session, base_url)

    assert peak_queue == 2
    assert sample(final, "sglang:num_requests_total", **MODEL) == 3
    assert sample(final, "sglang:e2e_request_latency_seconds_count", **MODEL) == 3
    assert sample(final, "sglang:generation_tokens_total", **MODEL) == 33
    assert not any(name.startswith("vllm:") for name, _labels in final)
