"""The simulator's HTTP surface: OpenAI-compatible responses, SSE streaming, /health and /metrics."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from deepseek_simulator.config import Faults
from deepseek_simulator.testing import completion_body, running_simulator, sample, scrape

FAST = {"ttft_ms": 10, "tokens_per_second": 2000}


async def _sse_events(response: aiohttp.ClientResponse) -> list[str]:
    """The `data:` payloads of an SSE body, checking the framing line by line."""
    assert response.headers["Content-Type"].startswith("text/event-stream")
    raw = (await response.read()).decode()
    assert raw.endswith("\n\n")
    events = raw.split("\n\n")[:-1]
    assert all(event.startswith("data: ") and "\n" not in event for event in events), raw
    return [event.removeprefix("data: ") for event in events]


async def test_models_lists_the_served_model() -> None:
    async with (
        running_simulator(served_model_name="deepseek-r1", max_model_len=4096) as (_s, base_url),
        aiohttp.ClientSession() as session,
        session.get(f"{base_url}/v1/models") as response,
    ):
        body = await response.json()
    assert body["object"] == "list"
    assert [model["id"] for model in body["data"]] == ["deepseek-r1"]
    assert body["data"][0]["max_model_len"] == 4096


async def test_completion_without_streaming_reports_usage_and_length_finish() -> None:
    async with running_simulator(**FAST) as (_s, base_url), aiohttp.ClientSession() as session:
        body = completion_body(7, prompt="abcdefghij")  # 10 characters = 3 tokens
        async with session.post(f"{base_url}/v1/completions", json=body) as response:
            assert response.status == 200
            result = await response.json()
    assert result["object"] == "text_completion"
    assert result["model"] == "sim"
    assert result["id"].startswith("cmpl-")
    (choice,) = result["choices"]
    assert choice["finish_reason"] == "length"
    assert len(choice["text"].split()) == 7
    assert result["usage"] == {"prompt_tokens": 3, "completion_tokens": 7, "total_tokens": 10}


async def test_chat_without_max_tokens_stops_at_the_default_length() -> None:
    async with (
        running_simulator(default_max_tokens=5, **FAST) as (_s, base_url),
        aiohttp.ClientSession() as session,
    ):
        body = {"model": "sim", "messages": [{"role": "user", "content": "abcd"}]}
        async with session.post(f"{base_url}/v1/chat/completions", json=body) as response:
            result = await response.json()
    assert result["object"] == "chat.completion"
    (choice,) = result["choices"]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    assert len(choice["message"]["content"].split()) == 5
    # 4 template tokens + 1 for "abcd".
    assert result["usage"] == {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}


async def test_chat_streaming_sends_sse_chunks_then_usage_then_done() -> None:
    async with running_simulator(**FAST) as (_s, base_url), aiohttp.ClientSession() as session:
        body = {
            "model": "sim",
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 12,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        async with session.post(f"{base_url}/v1/chat/completions", json=body) as response:
            assert response.status == 200
            events = await _sse_events(response)
        async with session.post(
            f"{base_url}/v1/chat/completions", json={**body, "stream": False}
        ) as response:
            full_text = (await response.json())["choices"][0]["message"]["content"]

    assert events[-1] == "[DONE]"
    chunks: list[dict[str, Any]] = [json.loads(event) for event in events[:-1]]
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    assert len({chunk["id"] for chunk in chunks}) == 1
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {"prompt_tokens": 5, "completion_tokens": 12, "total_tokens": 17}
    content_chunks, final = chunks[:-2], chunks[-2]
    assert final["choices"][0]["finish_reason"] == "length"
    assert final["choices"][0]["delta"] == {}
    assert content_chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all("role" not in chunk["choices"][0]["delta"] for chunk in content_chunks[1:])
    streamed = "".join(chunk["choices"][0]["delta"]["content"] for chunk in content_chunks)
    assert streamed == full_text


async def test_completion_streaming_without_usage_ends_with_finish_and_done() -> None:
    async with running_simulator(**FAST) as (_s, base_url), aiohttp.ClientSession() as session:
        body = completion_body(4, stream=True)
        async with session.post(f"{base_url}/v1/completions", json=body) as response:
            events = await _sse_events(response)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert all("usage" not in chunk for chunk in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert len("".join(chunk["choices"][0]["text"] for chunk in chunks).split()) == 4


@pytest.mark.parametrize(
    ("path", "body", "status", "fragment"),
    [
        ("/v1/completions", {"model": "other", "prompt": "x"}, 404, "does not exist"),
        ("/v1/completions", {"prompt": "x", "max_tokens": 0}, 400, "max_tokens"),
        ("/v1/completions", {"prompt": "x", "max_tokens": 100}, 400, "maximum context length is 64"),
        ("/v1/completions", {"prompt": "x", "n": 2}, 400, "n=1"),
        ("/v1/completions", {"prompt": {"not": "text"}}, 400, "prompt must be"),
        ("/v1/chat/completions", {"messages": []}, 400, "messages"),
        ("/v1/chat/completions", ["not", "an", "object"], 400, "JSON object"),
    ],
)
async def test_invalid_requests_get_openai_errors(
    path: str, body: object, status: int, fragment: str
) -> None:
    async with (
        running_simulator(max_model_len=64, **FAST) as (_s, base_url),
        aiohttp.ClientSession() as session,
        session.post(f"{base_url}{path}", json=body) as response,
    ):
        assert response.status == status
        error = (await response.json())["error"]
    assert error["code"] == status
    assert fragment in error["message"]


async def test_body_that_is_not_json_is_a_bad_request() -> None:
    async with (
        running_simulator(**FAST) as (_s, base_url),
        aiohttp.ClientSession() as session,
        session.post(f"{base_url}/v1/completions", data=b"{oops") as response,
    ):
        assert response.status == 400
        assert "not valid JSON" in (await response.json())["error"]["message"]


async def test_health_and_api_answer_503_while_the_model_loads() -> None:
    async with (
        running_simulator(startup_delay_s=0.6, **FAST) as (_s, base_url),
        aiohttp.ClientSession() as session,
    ):
        async with session.get(f"{base_url}/health") as response:
            assert response.status == 503
            assert (await response.json())["status"] == "starting"
        async with session.post(f"{base_url}/v1/completions", json=completion_body(1)) as response:
            assert response.status == 503
        loading_metrics = await scrape(session, base_url)
        await asyncio.sleep(0.7)
        async with session.get(f"{base_url}/health") as response:
            assert response.status == 200
        async with session.post(f"{base_url}/v1/completions", json=completion_body(1)) as response:
            assert response.status == 200
    failures = sample(
        loading_metrics, "dsd_simulator_request_failures_total", model_name="sim", reason="starting"
    )
    assert failures == 1


async def test_metrics_use_prometheus_text_format_with_typed_vllm_families() -> None:
    async with (
        running_simulator(**FAST) as (_s, base_url),
        aiohttp.ClientSession() as session,
        session.get(f"{base_url}/metrics") as response,
    ):
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = await response.text()
    for family, kind in [
        ("vllm:num_requests_waiting", "gauge"),
        ("vllm:num_requests_running", "gauge"),
        ("vllm:kv_cache_usage_perc", "gauge"),
        ("vllm:e2e_request_latency_seconds", "histogram"),
        ("vllm:time_to_first_token_seconds", "histogram"),
        ("vllm:request_success_total", "counter"),
        ("vllm:prompt_tokens_total", "counter"),
        ("vllm:generation_tokens_total", "counter"),
        ("dsd_simulator_request_failures_total", "counter"),
    ]:
        assert f"# TYPE {family} {kind}" in text
    assert 'vllm:num_requests_waiting{model_name="sim"} 0.0' in text
    # Like vLLM, every finished_reason series exists before the first request finishes.
    for reason in ("stop", "length", "abort"):
        assert f'vllm:request_success_total{{finished_reason="{reason}",model_name="sim"}} 0.0' in text


async def test_two_servers_in_one_process_keep_separate_metrics() -> None:
    async with (
        running_simulator(**FAST) as (_a, first_url),
        running_simulator(**FAST) as (_b, second_url),
        aiohttp.ClientSession() as session,
    ):
        async with session.post(f"{first_url}/v1/completions", json=completion_body(3)) as response:
            assert response.status == 200
        first = await scrape(session, first_url)
        second = await scrape(session, second_url)
    assert sample(first, "vllm:generation_tokens_total", model_name="sim") == 3
    assert sample(second, "vllm:generation_tokens_total", model_name="sim") == 0


async def test_http_requests_are_counted_like_vllms_instrumentator() -> None:
    """vLLM's `http_requests_total`: status grouped (2xx, 4xx, 5xx), the route as handler, and
    /health and /metrics left out; the chart's error-rate alert divides its 5xx by its total."""
    async with (
        running_simulator(**FAST) as (server, base_url),
        aiohttp.ClientSession() as session,
    ):
        for body in (completion_body(2), completion_body(2), {"model": "other", "prompt": "x"}):
            async with session.post(f"{base_url}/v1/completions", json=body):
                pass
        async with session.get(f"{base_url}/health"):
            pass
        server.faults = Faults(error_rate=1.0, error_status=503)
        chat = {"model": "sim", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
        async with session.post(f"{base_url}/v1/chat/completions", json=chat) as response:
            assert response.status == 503
        samples = await scrape(session, base_url)
    counted = {
        (dict(labels)["handler"], dict(labels)["status"]): value
        for (name, labels), value in samples.items()
        if name == "http_requests_total"
    }
    assert counted == {
        ("/v1/completions", "2xx"): 2,
        ("/v1/completions", "4xx"): 1,
        ("/v1/chat/completions", "5xx"): 1,
    }


async def test_sglang_dialect_has_no_http_request_counter() -> None:
    async with (
        running_simulator(engine="sglang", **FAST) as (_s, base_url),
        aiohttp.ClientSession() as session,
    ):
        async with session.post(f"{base_url}/v1/completions", json=completion_body(2)):
            pass
        samples = await scrape(session, base_url)
    assert not [name for name, _ in samples if name.startswith("http_requests")]


async def test_every_answer_names_the_instance_that_gave_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pod name (HOSTNAME) in X-Served-By: a client behind a Service sees which region answered."""
    monkeypatch.setenv("HOSTNAME", "r1-us-east-on-demand-abc-123")
    async with running_simulator(**FAST) as (_s, base_url), aiohttp.ClientSession() as session:
        async with session.post(f"{base_url}/v1/completions", json=completion_body(1)) as response:
            assert response.headers["X-Served-By"] == "r1-us-east-on-demand-abc-123"
        async with session.get(f"{base_url}/health") as response:
            assert response.headers["X-Served-By"] == "r1-us-east-on-demand-abc-123"
