"""The simulated inference server: an aiohttp app with the OpenAI API, /health, /metrics and
/admin/faults, backed by a capacity model of a continuous-batching engine.

Capacity model: at most `max_num_seqs` sequences run at once (an asyncio.Semaphore); the rest wait
in FIFO order and are counted as waiting. A running sequence produces its first token
`ttft_ms + extra_latency_ms` after it got its slot, then one token every 1/tokens_per_second s,
so a request that waited W seconds for a slot and generates N tokens takes about
W + ttft + (N - 1) / tokens_per_second end to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import os
import random
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from deepseek_simulator.config import ConfigError, Faults, SimulatorConfig, faults_from_json
from deepseek_simulator.metrics import EngineMetrics

log = logging.getLogger("deepseek_simulator")

# Streaming wakes up at most this often per sequence and sends every token that came due, so a
# very fast simulated decode costs a bounded number of event-loop wake-ups.
MIN_STREAM_TICK_SECONDS: Final = 0.005
# Response header naming the instance (pod) that answered.
SERVED_BY_HEADER: Final = "X-Served-By"
# Rough chat-template overhead per message, as real tokenizers add role markers.
TOKENS_PER_CHAT_MESSAGE: Final = 4
CHARACTERS_PER_TOKEN: Final = 4
FILLER_WORDS: Final = (
    " The", " model", " is", " simulated", " and", " every", " token", " costs", " time",
    " like", " a", " real", " GPU", " would", " spend", " on", " it", ".",
)  # fmt: skip


class RequestError(Exception):
    """A request the OpenAI API rejects; rendered as {"error": {...}} with `status`."""

    def __init__(self, status: int, message: str, error_type: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.param = param


@dataclasses.dataclass(frozen=True)
class GenerationRequest:
    chat: bool
    prompt_tokens: int
    max_tokens: int
    # "length" when the client capped the output with max_tokens, else the model "stops" by itself.
    finish_reason: str
    stream: bool
    include_usage: bool


def estimate_tokens(text: str) -> int:
    """About four characters per token, the usual rule of thumb for English text."""
    return max(1, math.ceil(len(text) / CHARACTERS_PER_TOKEN))


def _prompt_tokens(body: dict[str, Any], chat: bool) -> int:
    if chat:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise RequestError(400, "messages must be a non-empty list", "BadRequestError", "messages")
        total = 0
        for message in messages:
            if not isinstance(message, dict):
                raise RequestError(400, "each message must be an object", "BadRequestError", "messages")
            content = message.get("content")
            if isinstance(content, str):
                text = content
            elif isinstance(content, list):
                text = "".join(
                    part.get("text", "")
                    for part in content
                    if isinstance(part, dict) and part.get("type") == "text"
                )
            elif content is None:
                text = ""
            else:
                raise RequestError(
                    400, "message content must be a string or a list of parts", "BadRequestError"
                )
            total += TOKENS_PER_CHAT_MESSAGE + (estimate_tokens(text) if text else 0)
        return total
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return estimate_tokens(prompt)
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        return estimate_tokens(prompt[0])
    if (
        isinstance(prompt, list)
        and prompt
        and all(isinstance(t, int) and not isinstance(t, bool) for t in prompt)
    ):
        return len(prompt)  # already token ids
    raise RequestError(
        400,
        "prompt must be a string, a list with one string, or a list of token ids",
        "BadRequestError",
        "prompt",
    )


def parse_generation_request(body: object, chat: bool, config: SimulatorConfig) -> GenerationRequest:
    if not isinstance(body, dict):
        raise RequestError(400, "the request body must be a JSON object", "BadRequestError")
    model = body.get("model")
    if model is not None and model != config.served_model_name:
        raise RequestError(404, f"The model `{model}` does not exist.", "NotFoundError", "model")
    n = body.get("n", 1)
    if n not in (1, None):
        raise RequestError(400, "the simulator only supports n=1", "BadRequestError", "n")
    prompt_tokens = _prompt_tokens(body, chat)
    requested = body.get("max_completion_tokens") if chat else None
    if requested is None:
        requested = body.get("max_tokens")
    room = config.max_model_len - prompt_tokens
    if requested is None:
        if room < 1:
            raise RequestError(
                400,
                f"This model's maximum context length is {config.max_model_len} tokens. "
                f"However, your prompt has {prompt_tokens} tokens.",
                "BadRequestError",
            )
        max_tokens = min(config.default_max_tokens, room)
        finish_reason = "stop"
    else:
        if not isinstance(requested, int) or isinstance(requested, bool) or requested < 1:
            raise RequestError(400, "max_tokens must be a positive integer", "BadRequestError", "max_tokens")
        if requested > room:
            raise RequestError(
                400,
                f"This model's maximum context length is {config.max_model_len} tokens. However, you "
                f"requested {prompt_tokens + requested} tokens ({prompt_tokens} in the prompt, "
                f"{requested} in the completion). Please reduce the length of the prompt or completion.",
                "BadRequestError",
                "max_tokens",
            )
        max_tokens = requested
        finish_reason = "length"
    stream = body.get("stream", False) is True
    stream_options = body.get("stream_options")
    include_usage = isinstance(stream_options, dict) and stream_options.get("include_usage") is True
    return GenerationRequest(
        chat=chat,
        prompt_tokens=prompt_tokens,
        max_tokens=max_tokens,
        finish_reason=finish_reason,
        stream=stream,
        include_usage=include_usage,
    )


@dataclasses.dataclass(eq=False)  # identity semantics: sequences live in a set
class _Sequence:
    """A running sequence's token timeline, used to stream tokens and to compute KV usage."""

    prompt_tokens: int
    output_tokens: int
    first_token_at: float
    tokens_per_second: float

    def generated(self, now: float) -> int:
        if now < self.first_token_at:
            return 0
        return min(self.output_tokens, 1 + math.floor((now - self.first_token_at) * self.tokens_per_second))

    def token_due_at(self, index: int) -> float:
        return self.first_token_at + index / self.tokens_per_second

    @property
    def finishes_at(self) -> float:
        return self.token_due_at(self.output_tokens - 1)


def _token_text(index: int) -> str:
    return FILLER_WORDS[index % len(FILLER_WORDS)]


def _error_response(status: int, message: str, error_type: str, param: str | None = None) -> web.Response:
    payload = {"error": {"message": message, "type": error_type, "param": param, "code": status}}
    return web.json_response(payload, status=status)


def _sse(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


class SimulatorServer:
    """One simulated engine: owns its metrics registry, capacity model, faults and HTTP runner."""

    def __init__(self, config: SimulatorConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.faults: Faults = config.faults
        self.metrics = EngineMetrics(config.engine, config.served_model_name)
        self._clock = clock
        self._random = random.Random(config.seed)
        self._slots = asyncio.Semaphore(config.max_num_seqs)
        self._waiting = 0
        self._running: set[_Sequence] = set()
        self._inflight_tasks: set[asyncio.Task[Any]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._draining = False
        self._ready_at = clock() + config.startup_delay_s
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._instance = os.environ.get("HOSTNAME") or socket.gethostname()
        self.metrics.track_kv_usage(self.kv_cache_usage)
        self.app = self._build_app()

    # ---- state -------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the server is not listening yet: call start() first")
        return self._port

    @property
    def draining(self) -> bool:
        return self._draining

    @property
    def ready(self) -> bool:
        return self._clock() >= self._ready_at

    @property
    def waiting(self) -> int:
        return self._waiting

    @property
    def running(self) -> int:
        return len(self._running)

    def kv_cache_usage(self) -> float:
        now = self._clock()
        held = sum(seq.prompt_tokens + seq.generated(now) for seq in self._running)
        return min(1.0, held / self.config.kv_capacity_tokens)

    def health_problem(self) -> str | None:
        """Why /health answers 503, or None when the server takes requests."""
        if self._draining:
            return "draining"
        if not self.ready:
            return "starting"
        if self.faults.unhealthy:
            return "unhealthy"
        return None

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> int:
        """Listen on config.host:config.port (0 = a free port); return the bound port."""
        # A short shutdown timeout: by the time the runner is cleaned up, drain() has already
        # waited for running requests as long as the contract allows.
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        self._port = int(self._runner.addresses[0][1])
        log.info(
            "listening",
            extra={
                "fields": {
                    "host": self.config.host,
                    "port": self._port,
                    "engine": self.config.engine,
                    "model_name": self.config.served_model_name,
                    "max_num_seqs": self.config.max_num_seqs,
                    "tokens_per_second": self.config.tokens_per_second,
                    "ttft_ms": self.config.ttft_ms,
                    "startup_delay_s": self.config.startup_delay_s,
                    "faults": self.faults.to_json(),
                }
            },
        )
        return self._port

    async def drain(self) -> bool:
        """Stop taking requests and wait for accepted ones up to drain_seconds; True if all finished."""
        self._draining = True
        log.info(
            "draining",
            extra={
                "fields": {"inflight": len(self._inflight_tasks), "drain_seconds": self.config.drain_seconds}
            },
        )
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=self.config.drain_seconds)
        except TimeoutError:
            log.warning(
                "drain deadline passed with requests still running",
                extra={"fields": {"inflight": len(self._inflight_tasks)}},
            )
            # Cut them now: aiohttp's own shutdown would grant them more time than the contract allows.
            cut = list(self._inflight_tasks)
            for task in cut:
                task.cancel()
            await asyncio.gather(*cut, return_exceptions=True)
            return False
        log.info("drained")
        return True

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ---- HTTP --------------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._count_http_requests])
        app.on_response_prepare.append(self._identify)
        app.router.add_get("/health", self._handle_health)
        app.router.add_get("/metrics", self._handle_metrics)
        app.router.add_get("/v1/models", self._handle_models)
        app.router.add_post("/v1/completions", self._handle_completions)
        app.router.add_post("/v1/chat/completions", self._handle_chat_completions)
        app.router.add_get("/admin/faults", self._handle_get_faults)
        app.router.add_put("/admin/faults", self._handle_put_faults)
        return app

    async def _identify(self, _request: web.Request, response: web.StreamResponse) -> None:
        """Every answer names the instance that gave it (the pod name, from HOSTNAME), so a test client
        behind a Service knows which pod, and so which region, answered each request."""
        response.headers[SERVED_BY_HEADER] = self._instance

    @web.middleware
    async def _count_http_requests(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        route = request.match_info.route.resource
        path = route.canonical if route is not None else request.path
        try:
            response = await handler(request)
        except web.HTTPException as error:
            self.metrics.count_http_request(request.method, path, error.status)
            raise
        self.metrics.count_http_request(request.method, path, response.status)
        return response

    async def _handle_health(self, _request: web.Request) -> web.Response:
        problem = self.health_problem()
        if problem is None:
            return web.json_response({"status": "ok"})
        return web.json_response({"status": problem}, status=503)

    async def _handle_metrics(self, _request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def _handle_models(self, _request: web.Request) -> web.Response:
        model = {
            "id": self.config.served_model_name,
            "object": "model",
            "created": int(time.time()),
            "owned_by": "deepseek-simulator",
            "root": self.config.served_model_name,
            "max_model_len": self.config.max_model_len,
        }
        return web.json_response({"object": "list", "data": [model]})

    async def _handle_get_faults(self, _request: web.Request) -> web.Response:
        return web.json_response(self.faults.to_json())

    async def _handle_put_faults(self, request: web.Request) -> web.Response:
        try:
            payload: object = await request.json()
        except json.JSONDecodeError:
            return web.json_response({"errors": ["the body is not valid JSON"]}, status=400)
        try:
            self.faults = faults_from_json(self.faults, payload)
        except ConfigError as error:
            return web.json_response({"errors": list(error.messages)}, status=400)
        log.info("faults changed", extra={"fields": {"faults": self.faults.to_json()}})
        return web.json_response(self.faults.to_json())

    async def _handle_completions(self, request: web.Request) -> web.StreamResponse:
        return await self._handle_generation(request, chat=False)

    async def _handle_chat_completions(self, request: web.Request) -> web.StreamResponse:
        return await self._handle_generation(request, chat=True)

    async def _handle_generation(self, request: web.Request, chat: bool) -> web.StreamResponse:
        arrived_at = self._clock()
        if self._draining:
            self.metrics.count_failure("draining")
            return _error_response(503, "the server is shutting down", "ServiceUnavailableError")
        if not self.ready:
            self.metrics.count_failure("starting")
            return _error_response(503, "the model is still loading", "ServiceUnavailableError")
        try:
            body: object = await request.json()
        except json.JSONDecodeError:
            return _error_response(400, "the request body is not valid JSON", "BadRequestError")
        try:
            generation = parse_generation_request(body, chat, self.config)
        except RequestError as error:
            return _error_response(error.status, error.message, error.error_type, error.param)
        faults = self.faults
        if faults.error_rate > 0 and self._random.random() < faults.error_rate:
            self.metrics.count_failure("injected_error")
            return _error_response(faults.error_status, "injected fault", "InternalServerError")
        async with self._accepted():
            return await self._serve(request, generation, arrived_at, faults)

    @contextlib.asynccontextmanager
    async def _accepted(self) -> AsyncIterator[None]:
        """Counts a request drain() must wait for, from acceptance to its last byte."""
        task = asyncio.current_task()
        assert task is not None
        self._inflight_tasks.add(task)
        self._idle.clear()
        try:
            yield
        except asyncio.CancelledError:
            self.metrics.count_failure("cancelled")
            raise
        finally:
            self._inflight_tasks.discard(task)
            if not self._inflight_tasks:
                self._idle.set()

    @contextlib.asynccontextmanager
    async def _sequence_slot(self) -> AsyncIterator[None]:
        """Waits FIFO for one of max_num_seqs slots; the gauges follow every transition."""
        self._waiting += 1
        self._publish_queue()
        try:
            await self._slots.acquire()
        except BaseException:  # the client went away while queued
            self._waiting -= 1
            self._publish_queue()
            raise
        self._waiting -= 1
        try:
            yield
        finally:
            self._slots.release()
            self._publish_queue()

    def _publish_queue(self) -> None:
        self.metrics.set_queue(self._waiting, len(self._running))

    async def _sleep_until(self, deadline: float) -> None:
        delay = deadline - self._clock()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _serve(
        self, request: web.Request, generation: GenerationRequest, arrived_at: float, faults: Faults
    ) -> web.StreamResponse:
        request_id = ("chatcmpl-" if generation.chat else "cmpl-") + uuid.uuid4().hex
        response: web.StreamResponse | None = None
        if generation.stream:
            response = web.StreamResponse(
                headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
            )
            await response.prepare(request)
        async with self._sequence_slot():
            started_at = self._clock()
            self.metrics.observe_queue_time(started_at - arrived_at)
            sequence = _Sequence(
                prompt_tokens=generation.prompt_tokens,
                output_tokens=generation.max_tokens,
                first_token_at=started_at + (self.config.ttft_ms + faults.extra_latency_ms) / 1000,
                tokens_per_second=self.config.tokens_per_second,
            )
            self._running.add(sequence)
            self._publish_queue()
            try:
                if response is None:
                    await self._sleep_until(sequence.first_token_at)
                    self.metrics.observe_first_token(self._clock() - arrived_at)
                    await self._sleep_until(sequence.finishes_at)
                else:
                    emit = self._stream_emitter(response, generation, request_id)
                    try:
                        await self._stream_tokens(sequence, arrived_at, emit)
                    except ConnectionError:
                        self.metrics.count_failure("client_disconnected")
                        log.debug("client disconnected", extra={"fields": {"request_id": request_id}})
                        return response
            finally:
                self._running.discard(sequence)
        e2e_seconds = self._clock() - arrived_at
        self.metrics.observe_finished(
            prompt_tokens=generation.prompt_tokens,
            generation_tokens=generation.max_tokens,
            e2e_seconds=e2e_seconds,
            finished_reason=generation.finish_reason,
        )
        log.debug(
            "request finished",
            extra={
                "fields": {
                    "request_id": request_id,
                    "queue_s": round(started_at - arrived_at, 4),
                    "e2e_s": round(e2e_seconds, 4),
                    "prompt_tokens": generation.prompt_tokens,
                    "completion_tokens": generation.max_tokens,
                }
            },
        )
        if response is None:
            return web.json_response(self._full_response(generation, request_id))
        with contextlib.suppress(ConnectionError):
            await self._finish_stream(response, generation, request_id)
        return response

    async def _stream_tokens(
        self, sequence: _Sequence, arrived_at: float, emit: Callable[[int, int], Awaitable[None]]
    ) -> None:
        emitted = 0
        await self._sleep_until(sequence.first_token_at)
        while emitted < sequence.output_tokens:
            due = sequence.generated(self._clock())
            if due > emitted:
                if emitted == 0:
                    self.metrics.observe_first_token(self._clock() - arrived_at)
                await emit(emitted, due)
                emitted = due
            if emitted < sequence.output_tokens:
                wait = sequence.token_due_at(emitted) - self._clock()
                await asyncio.sleep(max(wait, MIN_STREAM_TICK_SECONDS))

    def _stream_emitter(
        self, response: web.StreamResponse, generation: GenerationRequest, request_id: str
    ) -> Callable[[int, int], Awaitable[None]]:
        created = int(time.time())
        model = self.config.served_model_name

        async def emit(first: int, end: int) -> None:
            text = "".join(_token_text(i) for i in range(first, end))
            if generation.chat:
                # OpenAI sends the role once, in the first delta.
                delta: dict[str, Any] = (
                    {"role": "assistant", "content": text} if first == 0 else {"content": text}
                )
                choice: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
                chunk = {
                    "id": request_id, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [choice],
                }  # fmt: skip
            else:
                choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": None}
                chunk = {
                    "id": request_id, "object": "text_completion", "created": created, "model": model,
                    "choices": [choice],
                }  # fmt: skip
            await response.write(_sse(chunk))

        return emit

    async def _finish_stream(
        self, response: web.StreamResponse, generation: GenerationRequest, request_id: str
    ) -> None:
        created = int(time.time())
        model = self.config.served_model_name
        if generation.chat:
            choice: dict[str, Any] = {"index": 0, "delta": {}}
            final: dict[str, Any] = {"id": request_id, "object": "chat.completion.chunk"}
        else:
            choice = {"index": 0, "text": ""}
            final = {"id": request_id, "object": "text_completion"}
        choice.update(logprobs=None, finish_reason=generation.finish_reason)
        final.update(created=created, model=model, choices=[choice])
        await response.write(_sse(final))
        if generation.include_usage:
            usage_chunk = {**final, "choices": [], "usage": self._usage(generation)}
            await response.write(_sse(usage_chunk))
        await response.write(_sse("[DONE]"))
        await response.write_eof()

    @staticmethod
    def _usage(generation: GenerationRequest) -> dict[str, int]:
        return {
            "prompt_tokens": generation.prompt_tokens,
            "completion_tokens": generation.max_tokens,
            "total_tokens": generation.prompt_tokens + generation.max_tokens,
        }

    def _full_response(self, generation: GenerationRequest, request_id: str) -> dict[str, Any]:
        text = "".join(_token_text(i) for i in range(generation.max_tokens))
        common = {"id": request_id, "created": int(time.time()), "model": self.config.served_model_name}
        if generation.chat:
            choice: dict[str, Any] = {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
                "finish_reason": generation.finish_reason,
            }
            return {
                **common,
                "object": "chat.completion",
                "choices": [choice],
                "usage": self._usage(generation),
            }
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": generation.finish_reason}
        return {**common, "object": "text_completion", "choices": [choice], "usage": self._usage(generation)}
