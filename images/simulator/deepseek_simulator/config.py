"""Simulator settings: the contract's DSD_* variables, SIM_* knobs and the equivalent CLI flags.

A CLI flag wins over its environment variable, which wins over the default. Empty environment
values count as unset, like in the launcher. Every invalid setting is reported at once, each
message naming the flag or variable it came from and how to fix it.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import Final, Literal, cast

Engine = Literal["vllm", "sglang"]
ENGINES: Final[tuple[Engine, ...]] = ("vllm", "sglang")
ERROR_STATUSES: Final = (500, 503)
# Tokens of context each sequence slot is assumed to hold when SIM_KV_CACHE_TOKENS is not set.
DEFAULT_KV_TOKENS_PER_SEQUENCE: Final = 2048


class ConfigError(Exception):
    """Invalid settings; `messages` lists every problem."""

    def __init__(self, messages: Sequence[str]) -> None:
        self.messages: tuple[str, ...] = tuple(messages)
        super().__init__("invalid simulator settings:\n" + "\n".join(f"- {m}" for m in self.messages))


@dataclasses.dataclass(frozen=True)
class Faults:
    """Injected faults; set at start from SIM_* and changed at run time through /admin/faults."""

    error_rate: float = 0.0
    error_status: int = 500
    extra_latency_ms: float = 0.0
    unhealthy: bool = False

    def to_json(self) -> dict[str, object]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class SimulatorConfig:
    served_model_name: str = "model"
    host: str = "127.0.0.1"
    port: int = 8080
    engine: Engine = "vllm"
    max_num_seqs: int = 256
    max_model_len: int = 32768
    drain_seconds: float = 120.0
    tokens_per_second: float = 40.0
    ttft_ms: float = 200.0
    startup_delay_s: float = 0.0
    default_max_tokens: int = 64
    kv_cache_tokens: int | None = None
    seed: int | None = None
    log_level: str = "INFO"
    faults: Faults = dataclasses.field(default_factory=Faults)

    @property
    def kv_capacity_tokens(self) -> int:
        """KV cache size; by default every sequence slot holds DEFAULT_KV_TOKENS_PER_SEQUENCE tokens."""
        if self.kv_cache_tokens is not None:
            return self.kv_cache_tokens
        return self.max_num_seqs * DEFAULT_KV_TOKENS_PER_SEQUENCE


@dataclasses.dataclass(frozen=True)
class _Setting:
    flag: str
    env: str
    help: str


_SETTINGS: Final = {
    "served_model_name": _Setting("--served-model-name", "DSD_SERVED_MODEL_NAME", "model name clients send"),
    "host": _Setting("--host", "SIM_HOST", "listen address (the image uses 0.0.0.0)"),
    "port": _Setting("--port", "DSD_PORT", "listen port; 0 picks a free one (logged)"),
    "engine": _Setting("--engine", "DSD_ENGINE", "vllm or sglang: which metric names to expose"),
    "max_num_seqs": _Setting(
        "--max-num-seqs", "DSD_MAX_NUM_SEQS", "concurrent sequences; more requests queue"
    ),
    "max_model_len": _Setting("--max-model-len", "DSD_MAX_MODEL_LEN", "context length in tokens"),
    "drain_seconds": _Setting("--drain-seconds", "DSD_DRAIN_SECONDS", "SIGTERM drain deadline"),
    "tokens_per_second": _Setting(
        "--tokens-per-second", "SIM_TOKENS_PER_SECOND", "decode speed of each sequence"
    ),
    "ttft_ms": _Setting("--ttft-ms", "SIM_TTFT_MS", "time to first token once a sequence runs"),
    "error_rate": _Setting("--error-rate", "SIM_ERROR_RATE", "fraction of requests answered with an error"),
    "error_status": _Setting("--error-status", "SIM_ERROR_STATUS", "HTTP status of injected errors"),
    "extra_latency_ms": _Setting(
        "--extra-latency-ms", "SIM_EXTRA_LATENCY_MS", "latency added to every request's first token"
    ),
    "unhealthy": _Setting("--unhealthy", "SIM_UNHEALTHY", "answer /health with 503"),
    "startup_delay_s": _Setting("--startup-delay-s", "SIM_STARTUP_DELAY_S", "seconds of simulated loading"),
    "default_max_tokens": _Setting(
        "--default-max-tokens", "SIM_DEFAULT_MAX_TOKENS", "output tokens when a request sets no max_tokens"
    ),
    "kv_cache_tokens": _Setting(
        "--kv-cache-tokens", "SIM_KV_CACHE_TOKENS", "KV cache size in tokens (default max_num_seqs x 2048)"
    ),
    "seed": _Setting("--seed", "SIM_SEED", "random seed for error injection"),
    "log_level": _Setting("--log-level", "SIM_LOG_LEVEL", "DEBUG logs every request"),
}


def build_argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepseek-simulator",
        description="GPU-less stand-in for a vLLM/SGLang server: OpenAI API, /health, /metrics.",
    )
    for field, setting in _SETTINGS.items():
        if field == "unhealthy":
            parser.add_argument(
                setting.flag,
                dest=field,
                action="store_const",
                const="true",
                help=f"{setting.help} [{setting.env}]",
            )
        else:
            parser.add_argument(
                setting.flag, dest=field, metavar="VALUE", help=f"{setting.help} [{setting.env}]"
            )
    return parser


class _Reader:
    def __init__(self, cli: Mapping[str, str | None], env: Mapping[str, str]) -> None:
        self._cli = cli
        self._env = env
        self.errors: list[str] = []

    def raw(self, field: str) -> tuple[str, str] | None:
        """(where it came from, value) or None when unset."""
        setting = _SETTINGS[field]
        cli_value = self._cli.get(field)
        if cli_value is not None:
            return setting.flag, cli_value.strip()
        env_value = self._env.get(setting.env, "").strip()
        if env_value:
            return setting.env, env_value
        return None

    def integer(self, field: str, default: int, minimum: int, maximum: int | None, fix: str) -> int:
        found = self.raw(field)
        if found is None:
            return default
        source, value = found
        try:
            number = int(value)
        except ValueError:
            self.errors.append(f"{source}={value!r} is not an integer: {fix}")
            return default
        if number < minimum or (maximum is not None and number > maximum):
            bounds = f"at least {minimum}" if maximum is None else f"between {minimum} and {maximum}"
            self.errors.append(f"{source}={number} is out of range, it must be {bounds}: {fix}")
            return default
        return number

    def number(
        self,
        field: str,
        default: float,
        minimum: float,
        maximum: float | None,
        fix: str,
        *,
        exclusive_minimum: bool = False,
    ) -> float:
        found = self.raw(field)
        if found is None:
            return default
        source, value = found
        try:
            number = float(value)
        except ValueError:
            self.errors.append(f"{source}={value!r} is not a number: {fix}")
            return default
        too_small = number <= minimum if exclusive_minimum else number < minimum
        if not math.isfinite(number) or too_small or (maximum is not None and number > maximum):
            low = f"above {minimum:g}" if exclusive_minimum else f"at least {minimum:g}"
            bounds = low if maximum is None else f"{low} and at most {maximum:g}"
            self.errors.append(f"{source}={value} is out of range, it must be {bounds}: {fix}")
            return default
        return number

    def boolean(self, field: str, fix: str) -> bool:
        found = self.raw(field)
        if found is None:
            return False
        source, value = found
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        self.errors.append(f"{source}={value!r} is not a boolean: {fix}")
        return False

    def text(self, field: str, default: str) -> str:
        found = self.raw(field)
        return default if found is None else found[1]


def default_served_model_name(env: Mapping[str, str]) -> str:
    """Same rule as the launcher: the Hugging Face repo id, else the model directory's name."""
    model_id = env.get("DSD_MODEL_ID", "").strip()
    if model_id:
        return model_id
    model_path = env.get("DSD_MODEL_PATH", "").strip() or "/opt/model"
    return PurePosixPath(model_path).name or "model"


def load_config(argv: Sequence[str], env: Mapping[str, str]) -> SimulatorConfig:
    """Parse CLI flags over environment variables; raise ConfigError listing every problem."""
    namespace = build_argument_parser().parse_args(list(argv))
    reader = _Reader(cast(dict[str, str | None], vars(namespace)), env)

    served_model_name = reader.text("served_model_name", default_served_model_name(env))
    if any(c.isspace() for c in served_model_name):
        reader.errors.append(
            f"served model name {served_model_name!r} (--served-model-name / DSD_SERVED_MODEL_NAME) "
            "contains whitespace: use a name without spaces, e.g. deepseek-r1"
        )
    engine_found = reader.raw("engine")
    engine: Engine = "vllm"
    if engine_found is not None:
        source, value = engine_found
        if value.lower() in ENGINES:
            engine = cast(Engine, value.lower())
        else:
            reader.errors.append(f"{source}={value!r} is not one of vllm, sglang: set it to vllm or sglang")
    port = reader.integer(
        "port", 8080, 0, 65535, "set it to a TCP port, 8080 in the contract (0 = any free port)"
    )
    max_num_seqs = reader.integer(
        "max_num_seqs", 256, 1, None, "set it to the number of sequences served at once, e.g. 256"
    )
    max_model_len = reader.integer(
        "max_model_len", 32768, 1, None, "set it to the context length in tokens, e.g. 32768"
    )
    drain_seconds = reader.number(
        "drain_seconds",
        120.0,
        0.0,
        None,
        "set it to how long running requests may finish after SIGTERM, e.g. 120",
    )
    tokens_per_second = reader.number(
        "tokens_per_second",
        40.0,
        0.0,
        None,
        "set it to the decode speed of one sequence in tokens per second, e.g. 40",
        exclusive_minimum=True,
    )
    ttft_ms = reader.number("ttft_ms", 200.0, 0.0, None, "set it to the time to first token in ms, e.g. 200")
    error_rate = reader.number(
        "error_rate", 0.0, 0.0, 1.0, "set it to the fraction of requests that fail, from 0 to 1, e.g. 0.05"
    )
    error_status = reader.integer("error_status", 500, 500, 503, "set it to 500 or 503")
    if error_status not in ERROR_STATUSES:
        reader.errors.append(
            f"error status {error_status} (--error-status / SIM_ERROR_STATUS): set it to 500 or 503"
        )
        error_status = 500
    extra_latency_ms = reader.number(
        "extra_latency_ms", 0.0, 0.0, None, "set it to the latency added to each request in ms, e.g. 250"
    )
    unhealthy = reader.boolean("unhealthy", "set it to true or false")
    startup_delay_s = reader.number(
        "startup_delay_s", 0.0, 0.0, None, "set it to the seconds /health answers 503 after start, e.g. 30"
    )
    default_max_tokens = reader.integer(
        "default_max_tokens",
        64,
        1,
        None,
        "set it to the output tokens of a request without max_tokens, e.g. 64",
    )
    kv_cache_tokens: int | None = None
    if reader.raw("kv_cache_tokens") is not None:
        kv_cache_tokens = reader.integer(
            "kv_cache_tokens", 1, 1, None, "set it to the KV cache capacity in tokens, e.g. 524288"
        )
    seed_found = reader.raw("seed")
    seed: int | None = None
    if seed_found is not None:
        seed = reader.integer("seed", 0, 0, None, "set it to a non-negative integer, e.g. 42")
    log_level = reader.text("log_level", "INFO").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        reader.errors.append(
            f"log level {log_level!r} (--log-level / SIM_LOG_LEVEL) is unknown: "
            "set it to DEBUG, INFO, WARNING or ERROR"
        )
        log_level = "INFO"

    if reader.errors:
        raise ConfigError(reader.errors)
    return SimulatorConfig(
        served_model_name=served_model_name,
        host=reader.text("host", "127.0.0.1"),
        port=port,
        engine=engine,
        max_num_seqs=max_num_seqs,
        max_model_len=max_model_len,
        drain_seconds=drain_seconds,
        tokens_per_second=tokens_per_second,
        ttft_ms=ttft_ms,
        startup_delay_s=startup_delay_s,
        default_max_tokens=default_max_tokens,
        kv_cache_tokens=kv_cache_tokens,
        seed=seed,
        log_level=log_level,
        faults=Faults(
            error_rate=error_rate,
            error_status=error_status,
            extra_latency_ms=extra_latency_ms,
            unhealthy=unhealthy,
        ),
    )


def faults_from_json(current: Faults, payload: object) -> Faults:
    """Apply a partial /admin/faults update; raise ConfigError naming each bad field."""
    if not isinstance(payload, dict):
        example = '{"error_rate": 0.1, "extra_latency_ms": 200, "unhealthy": false}'
        raise ConfigError([f"the body must be a JSON object, e.g. {example}"])
    errors: list[str] = []
    known = {field.name for field in dataclasses.fields(Faults)}
    for key in payload:
        if key not in known:
            errors.append(f"{key!r} is not a fault: use {', '.join(sorted(known))}")
    updated = dataclasses.asdict(current)

    def number_field(key: str, minimum: float, maximum: float | None, fix: str) -> None:
        if key not in payload:
            return
        value = payload[key]
        in_range = (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and value >= minimum
            and (maximum is None or value <= maximum)
        )
        if in_range:
            updated[key] = float(value)
        else:
            errors.append(f"{key}={value!r} is invalid: {fix}")

    number_field("error_rate", 0.0, 1.0, "set it to a number from 0 to 1, e.g. 0.05")
    number_field("extra_latency_ms", 0.0, None, "set it to a non-negative number of ms, e.g. 250")
    if "error_status" in payload:
        status = payload["error_status"]
        if status in ERROR_STATUSES and not isinstance(status, bool):
            updated["error_status"] = int(status)
        else:
            errors.append(f"error_status={status!r} is invalid: set it to 500 or 503")
    if "unhealthy" in payload:
        unhealthy = payload["unhealthy"]
        if isinstance(unhealthy, bool):
            updated["unhealthy"] = unhealthy
        else:
            errors.append(f"unhealthy={unhealthy!r} is invalid: set it to true or false")
    if errors:
        raise ConfigError(errors)
    return Faults(**updated)
