"""Fault injection, set at start and changed at run time through /admin/faults."""

from __future__ import annotations

import time

import aiohttp
import pytest
from deepseek_simulator.config import Faults
from deepseek_simulator.testing import completion_body, running_simulator, sample, scrape

FAST = {"ttft_ms": 10, "tokens_per_second": 2000}


async def _post_statuses(session: aiohttp.ClientSession, base_url: str, count: int) -> list[int]:
    statuses = []
    for _ in range(count):
        async with session.post(f"{base_url}/v1/completions", json=completion_body(1)) as response:
            statuses.append(response.status)
    return statuses


@pytest.mark.parametrize("status", [500, 503])
async def test_error_rate_one_at_start_fails_every_request_with_the_chosen_status(status: int) -> None:
    faults = Faults(error_rate=1.0, error_status=status)
    async with running_simulator(faults=faults, **FAST) as (_s, base_url), aiohttp.ClientSession() as session:
        statuses = await _post_statuses(session, base_url, 5)
        async with session.post(f"{base_url}/v1/completions", json=completion_body(1)) as response:
            error = (await response.json())["error"]
        samples = await scrape(session, base_url)
    assert statuses == [status] * 5
    assert error["code"] == status
    assert (
        sample(samples, "dsd_simulator_request_failures_total", model_name="sim", reason="injected_error")
        == 6
    )
    assert sample(samples, "vllm:request_success_total", model_name="sim", finished_reason="length") == 0


async def test_partial_error_rate_fails_about_that_fraction_reproducibly() -> None:
    async with (
        running_simulator(faults=Faults(error_rate=0.5), seed=7, **FAST) as (_s, base_url),
        aiohttp.ClientSession() as session,
    ):
        statuses = await _post_statuses(session, base_url, 60)
    failures = statuses.count(500)
    assert statuses.count(200) + failures == 60
    assert 18 <= failures <= 42


async def test_unhealthy_at_start_until_cleared_at_run_time() -> None:
    async with (
        running_simulator(faults=Faults(unhealthy=True), **FAST) as (_s, base_url),
        aiohttp.ClientSession() as session,
    ):
        async with session.get(f"{base_url}/health") as response:
            assert response.status == 503
            assert (await response.json())["status"] == "unhealthy"
        async with session.put(f"{base_url}/admin/faults", json={"unhealthy": False}) as response:
            assert response.status == 200
            assert (await response.json())["unhealthy"] is False
        async with session.get(f"{base_url}/health") as response:
            assert response.status == 200


async def test_faults_changed_at_run_time_apply_to_the_next_requests() -> None:
    async with running_simulator(**FAST) as (_s, base_url), aiohttp.ClientSession() as session:
        assert await _post_statuses(session, base_url, 2) == [200, 200]
        update = {"error_rate": 1.0, "error_status": 503}
        async with session.put(f"{base_url}/admin/faults", json=update) as response:
            assert response.status == 200
        async with session.get(f"{base_url}/admin/faults") as response:
            current = await response.json()
        assert await _post_statuses(session, base_url, 2) == [503, 503]
        async with session.put(f"{base_url}/admin/faults", json={"error_rate": 0}) as response:
            assert response.status == 200
        assert await _post_statuses(session, base_url, 1) == [200]
    assert current == {"error_rate": 1.0, "error_status": 503, "extra_latency_ms": 0.0, "unhealthy": False}


async def test_extra_latency_set_at_run_time_delays_the_first_token() -> None:
    async with running_simulator(**FAST) as (_s, base_url), aiohttp.ClientSession() as session:

        async def latency() -> float:
            started = time.monotonic()
            assert await _post_statuses(session, base_url, 1) == [200]
            return time.monotonic() - started

        baseline = await latency()
        async with session.put(f"{base_url}/admin/faults", json={"extra_latency_ms": 400}) as response:
            assert response.status == 200
        delayed = await latency()
        samples = await scrape(session, base_url)
    assert delayed - baseline == pytest.approx(0.4, abs=0.12)
    assert sample(samples, "vllm:time_to_first_token_seconds_sum", model_name="sim") == pytest.approx(
        0.01 + 0.41, abs=0.12
    )


@pytest.mark.parametrize(
    ("update", "fragment"),
    [
        ({"error_rate": 1.5}, "error_rate=1.5 is invalid"),
        ({"error_rate": "high"}, "error_rate='high' is invalid"),
        ({"error_status": 404}, "error_status=404 is invalid: set it to 500 or 503"),
        ({"extra_latency_ms": -1}, "extra_latency_ms=-1 is invalid"),
        ({"unhealthy": "yes"}, "unhealthy='yes' is invalid: set it to true or false"),
        ({"startup_delay_s": 3}, "'startup_delay_s' is not a fault"),
        ([1, 2], "must be a JSON object"),
    ],
)
async def test_invalid_fault_updates_are_rejected_without_changing_anything(
    update: object, fragment: str
) -> None:
    async with running_simulator(**FAST) as (server, base_url), aiohttp.ClientSession() as session:
        before = server.faults
        async with session.put(f"{base_url}/admin/faults", json=update) as response:
            assert response.status == 400
            errors = (await response.json())["errors"]
        assert server.faults == before
    assert any(fragment in error for error in errors), errors


async def test_one_update_reports_every_invalid_field() -> None:
    async with running_simulator(**FAST) as (_s, base_url), aiohttp.ClientSession() as session:
        update = {"error_rate": -1, "unhealthy": 1, "error_status": "500"}
        async with session.put(f"{base_url}/admin/faults", json=update) as response:
            errors = (await response.json())["errors"]
    assert len(errors) == 3
