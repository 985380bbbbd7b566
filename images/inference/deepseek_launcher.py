"""Inference launcher: turns the DSD_* environment of docs/inference-contract.md into a vLLM or
SGLang command line, runs the engine as a child process, forwards signals to it and enforces the
drain deadline on SIGTERM.

The pure parts (`config_from_env`, `engine_command`) hold all the translation rules so that tests
can check them without a GPU; `main` does the process work.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import logging
import math
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Final, Literal, cast

Engine = Literal["vllm", "sglang"]
ModelSource = Literal["Image", "HuggingFace", "PVC"]
Quantization = Literal["bf16", "fp16", "fp8", "int8", "awq", "gptq"]

ENGINES: Final[tuple[Engine, ...]] = ("vllm", "sglang")
MODEL_SOURCES: Final[tuple[ModelSource, ...]] = ("Image", "HuggingFace", "PVC")
QUANTIZATIONS: Final[tuple[Quantization, ...]] = ("bf16", "fp16", "fp8", "int8", "awq", "gptq")

DEFAULT_MODEL_PATHS: Final[Mapping[ModelSource, str]] = {
    "Image": "/opt/model",
    "PVC": "/mnt/model",
    "HuggingFace": "/opt/model",  # unused: the engine downloads the repo itself
}
DEFAULT_PORT: Final = 8080
DEFAULT_TENSOR_PARALLEL_SIZE: Final = 1
DEFAULT_MAX_NUM_SEQS: Final = 256
DEFAULT_GPU_MEMORY_UTILIZATION: Final = 0.90
DEFAULT_DRAIN_SECONDS: Final = 120.0
DEFAULT_MODEL_REVISION: Final = "main"
MIN_GPU_MEMORY_UTILIZATION: Final = 0.10
MAX_GPU_MEMORY_UTILIZATION: Final = 0.99
# Pods are reached through the pod IP, so the engine must listen on every interface.
LISTEN_HOST: Final = "0.0.0.0"  # noqa: S104

# Exit status for an invalid environment, distinct from any engine failure.
EXIT_CONFIG_ERROR: Final = 2
ENGINE_POLL_SECONDS: Final = 0.05

# bf16/fp16 are unquantized weights and only pick the activation dtype; the other modes name the
# checkpoint format so the engine fails loudly on a mismatched checkpoint instead of silently
# serving a model that does not fit the GPUs the operator sized for it.
VLLM_DTYPE: Final[Mapping[Quantization, str]] = {"bf16": "bfloat16", "fp16": "float16"}
VLLM_QUANTIZATION: Final[Mapping[Quantization, str]] = {
    "fp8": "fp8",  # FP8 checkpoints (DeepSeek-V3/R1 ship as FP8) or online FP8 of a bf16 one
    "int8": "compressed-tensors",  # vLLM's INT8 W8A8 format (llm-compressor checkpoints)
    "awq": "awq_marlin",  # plain "awq" would force vLLM's slower legacy kernel
    "gptq": "gptq_marlin",  # same for "gptq"
}
SGLANG_DTYPE: Final[Mapping[Quantization, str]] = VLLM_DTYPE
SGLANG_QUANTIZATION: Final[Mapping[Quantization, str]] = {
    "fp8": "fp8",
    "int8": "w8a8_int8",  # SGLang's per-channel INT8 kernel (e.g. DeepSeek-R1 channel-INT8 checkpoints)
    "awq": "awq_marlin",
    "gptq": "gptq_marlin",
}

DEFAULT_ENGINE_PREFIX: Final[Mapping[Engine, tuple[str, ...]]] = {
    "vllm": ("vllm", "serve"),
    "sglang": ("python3", "-m", "sglang.launch_server"),
}

# Engine flags the launcher derives from DSD_* variables; DSD_EXTRA_ARGS may not repeat them,
# because the engine would silently take whichever comes last.
VLLM_MANAGED_FLAGS: Final[Mapping[str, str]] = {
    "--model": "DSD_MODEL_PATH / DSD_MODEL_ID",
    "--served-model-name": "DSD_SERVED_MODEL_NAME",
    "--host": "the contract (the launcher always listens on 0.0.0.0)",
    "--port": "DSD_PORT",
    "--tensor-parallel-size": "DSD_TENSOR_PARALLEL_SIZE",
    "-tp": "DSD_TENSOR_PARALLEL_SIZE",
    "--max-num-seqs": "DSD_MAX_NUM_SEQS",
    "--max-model-len": "DSD_MAX_MODEL_LEN",
    "--quantization": "DSD_QUANTIZATION",
    "-q": "DSD_QUANTIZATION",
    "--dtype": "DSD_QUANTIZATION",
    "--gpu-memory-utilization": "DSD_GPU_MEMORY_UTILIZATION",
    "--revision": "DSD_MODEL_REVISION",
}
SGLANG_MANAGED_FLAGS: Final[Mapping[str, str]] = {
    "--model-path": "DSD_MODEL_PATH / DSD_MODEL_ID",
    "--model": "DSD_MODEL_PATH / DSD_MODEL_ID",
    "--served-model-name": "DSD_SERVED_MODEL_NAME",
    "--host": "the contract (the launcher always listens on 0.0.0.0)",
    "--port": "DSD_PORT",
    "--tensor-parallel-size": "DSD_TENSOR_PARALLEL_SIZE",
    "--tp-size": "DSD_TENSOR_PARALLEL_SIZE",
    "--tp": "DSD_TENSOR_PARALLEL_SIZE",
    "--max-running-requests": "DSD_MAX_NUM_SEQS",
    "--context-length": "DSD_MAX_MODEL_LEN",
    "--quantization": "DSD_QUANTIZATION",
    "--dtype": "DSD_QUANTIZATION",
    "--mem-fraction-static": "DSD_GPU_MEMORY_UTILIZATION",
    "--revision": "DSD_MODEL_REVISION",
}
MANAGED_FLAGS: Final[Mapping[Engine, Mapping[str, str]]] = {
    "vllm": VLLM_MANAGED_FLAGS,
    "sglang": SGLANG_MANAGED_FLAGS,
}

# Graceful shutdown, per engine and version:
# - vLLM: `--shutdown-timeout=N` makes SIGTERM refuse new requests and let running ones finish for up to
#   N s; without it (and before vLLM 0.18.0, which has no such flag) SIGTERM aborts running requests
#   (vllm-project/vllm PR #34730, re-landed in #36666, released in 0.18.0). The image pins 0.11.0
#   (requirements-vllm.txt), so there the flag is not passed and the launcher's drain deadline only
#   bounds the exit; an image built with vLLM >= 0.18.0 gets it.
# - SGLang: drains on SIGTERM by itself (its /health answers 503 and it waits until no request runs,
#   sgl-project/sglang PR #1838) and has no option for it: nothing to pass; the deadline bounds it.
VLLM_SHUTDOWN_TIMEOUT_FLAG: Final = "--shutdown-timeout"
VLLM_SHUTDOWN_TIMEOUT_SINCE: Final = (0, 18, 0)
# The engine stops draining this long before the launcher's deadline, so it exits on its own.
SHUTDOWN_TIMEOUT_MARGIN_SECONDS: Final = 1

log = logging.getLogger("deepseek_launcher")


class ConfigError(Exception):
    """The environment is invalid; `messages` lists every problem, each naming its variable."""

    def __init__(self, messages: Sequence[str]) -> None:
        self.messages: tuple[str, ...] = tuple(messages)
        super().__init__("invalid launcher environment:\n" + "\n".join(f"- {m}" for m in self.messages))


@dataclasses.dataclass(frozen=True)
class LauncherConfig:
    engine: Engine
    model_source: ModelSource
    model_path: str
    model_id: str | None
    model_revision: str
    served_model_name: str
    tensor_parallel_size: int
    max_num_seqs: int
    max_model_len: int | None
    quantization: Quantization
    gpu_memory_utilization: float
    extra_args: tuple[str, ...]
    port: int
    drain_seconds: float
    # Replaces the engine executable (e.g. `vllm serve`) for tests; the arguments stay the same.
    engine_command_override: tuple[str, ...] | None = None
    # The installed engine's version (main() reads it), which decides its graceful-shutdown flag.
    engine_version: str | None = None

    @property
    def model_reference(self) -> str:
        """What the engine loads: a Hugging Face repo id or a local directory."""
        if self.model_source == "HuggingFace":
            assert self.model_id is not None  # guaranteed by config_from_env
            return self.model_id
        return self.model_path


class _EnvReader:
    """Reads DSD_* variables (empty means unset) and collects every validation error."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self.errors: list[str] = []

    def raw(self, name: str) -> str | None:
        value = self._env.get(name, "").strip()
        return value or None

    def choice(self, name: str, choices: Sequence[str], default: str, fix: str) -> str:
        value = self.raw(name)
        if value is None:
            return default
        by_lower = {choice.lower(): choice for choice in choices}
        if value.lower() not in by_lower:
            self.errors.append(f"{name}={value!r} is not one of {', '.join(choices)}: {fix}")
            return default
        return by_lower[value.lower()]

    def integer(
        self, name: str, default: int | None, minimum: int, maximum: int | None, fix: str
    ) -> int | None:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            self.errors.append(f"{name}={value!r} is not an integer: {fix}")
            return default
        if number < minimum or (maximum is not None and number > maximum):
            bounds = f"at least {minimum}" if maximum is None else f"between {minimum} and {maximum}"
            self.errors.append(f"{name}={number} is out of range, it must be {bounds}: {fix}")
            return default
        return number

    def number(self, name: str, default: float, minimum: float, maximum: float | None, fix: str) -> float:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            self.errors.append(f"{name}={value!r} is not a number: {fix}")
            return default
        if not math.isfinite(number) or number < minimum or (maximum is not None and number > maximum):
            bounds = f"at least {minimum:g}" if maximum is None else f"between {minimum:g} and {maximum:g}"
            self.errors.append(f"{name}={value} is out of range, it must be {bounds}: {fix}")
            return default
        return number


def _looks_like_repo_id(model_id: str) -> bool:
    parts = model_id.split("/")
    return 1 <= len(parts) <= 2 and all(part and not any(c.isspace() for c in part) for part in parts)


def _parse_extra_args(reader: _EnvReader, engine: Engine) -> tuple[str, ...]:
    value = reader.raw("DSD_EXTRA_ARGS")
    if value is None:
        return ()
    fix = 'write it as a JSON list of strings, e.g. ["--enable-prefix-caching"]'
    try:
        parsed: object = json.loads(value)
    except json.JSONDecodeError as error:
        reader.errors.append(f"DSD_EXTRA_ARGS={value!r} is not valid JSON ({error.msg}): {fix}")
        return ()
    if not isinstance(parsed, list) or not all(isinstance(item, str) for item in parsed):
        reader.errors.append(f"DSD_EXTRA_ARGS={value!r} is not a JSON list of strings: {fix}")
        return ()
    extra_args = tuple(cast(list[str], parsed))
    managed = MANAGED_FLAGS[engine]
    for argument in extra_args:
        flag = argument.split("=", 1)[0]
        if flag in managed:
            reader.errors.append(
                f"DSD_EXTRA_ARGS contains {flag}, which the launcher sets from {managed[flag]}: "
                f"remove {flag} from DSD_EXTRA_ARGS and set {managed[flag]} instead"
            )
    return extra_args


def _parse_engine_command(reader: _EnvReader) -> tuple[str, ...] | None:
    value = reader.raw("DSD_ENGINE_COMMAND")
    if value is None:
        return None
    try:
        words = tuple(shlex.split(value))
    except ValueError as error:
        reader.errors.append(
            f"DSD_ENGINE_COMMAND={value!r} cannot be split into words ({error}): "
            "quote it like a shell command, e.g. 'python3 /tmp/fake_engine.py', or unset it"
        )
        return None
    return words or None


def default_served_model_name(source: ModelSource, model_id: str | None, model_path: str) -> str:
    """The contract's default: the repo id for Hugging Face, else the model directory's name."""
    if source == "HuggingFace" and model_id:
        return model_id
    return Path(model_path).name or "model"


def config_from_env(env: Mapping[str, str]) -> LauncherConfig:
    """Validate the contract variables; raise ConfigError listing every problem at once."""
    reader = _EnvReader(env)
    engine = cast(
        Engine,
        reader.choice(
            "DSD_ENGINE", ENGINES, "vllm", "set it to vllm or sglang (the engine this image was built with)"
        ),
    )
    source = cast(
        ModelSource,
        reader.choice(
            "DSD_MODEL_SOURCE",
            MODEL_SOURCES,
            "Image",
            "set it to Image (weights baked at /opt/model), HuggingFace (download DSD_MODEL_ID) "
            "or PVC (weights mounted at /mnt/model)",
        ),
    )
    model_path = reader.raw("DSD_MODEL_PATH") or DEFAULT_MODEL_PATHS[source]
    if not model_path.startswith("/"):
        reader.errors.append(
            f"DSD_MODEL_PATH={model_path!r} is not an absolute path: "
            f"set it to the directory holding the weights, e.g. {DEFAULT_MODEL_PATHS[source]}"
        )
    model_id = reader.raw("DSD_MODEL_ID")
    if source == "HuggingFace":
        if model_id is None:
            reader.errors.append(
                "DSD_MODEL_ID is empty but DSD_MODEL_SOURCE=HuggingFace needs it: "
                "set it to a Hugging Face repo id, e.g. deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"
            )
        elif not _looks_like_repo_id(model_id):
            reader.errors.append(
                f"DSD_MODEL_ID={model_id!r} is not a Hugging Face repo id: "
                "set it to owner/name without spaces, e.g. deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"
            )
    revision = reader.raw("DSD_MODEL_REVISION") or DEFAULT_MODEL_REVISION
    if any(c.isspace() for c in revision):
        reader.errors.append(
            f"DSD_MODEL_REVISION={revision!r} contains whitespace: "
            "set it to a branch, tag or commit, e.g. main"
        )
    served_model_name = reader.raw("DSD_SERVED_MODEL_NAME") or default_served_model_name(
        source, model_id, model_path
    )
    if any(c.isspace() for c in served_model_name):
        reader.errors.append(
            f"DSD_SERVED_MODEL_NAME={served_model_name!r} contains whitespace: "
            "set it to the name clients send in the 'model' field, e.g. deepseek-r1"
        )
    tensor_parallel_size = reader.integer(
        "DSD_TENSOR_PARALLEL_SIZE",
        DEFAULT_TENSOR_PARALLEL_SIZE,
        1,
        None,
        "set it to the number of GPUs per replica, e.g. 8",
    )
    max_num_seqs = reader.integer(
        "DSD_MAX_NUM_SEQS",
        DEFAULT_MAX_NUM_SEQS,
        1,
        None,
        "set it to the number of sequences batched at once, e.g. 256",
    )
    max_model_len = reader.integer(
        "DSD_MAX_MODEL_LEN",
        None,
        1,
        None,
        "set it to the context length in tokens, e.g. 32768, or leave it empty for the model's own",
    )
    quantization = cast(
        Quantization,
        reader.choice(
            "DSD_QUANTIZATION",
            QUANTIZATIONS,
            "bf16",
            "set it to the precision of the weights, e.g. bf16 (unquantized) or fp8",
        ),
    )
    gpu_memory_utilization = reader.number(
        "DSD_GPU_MEMORY_UTILIZATION",
        DEFAULT_GPU_MEMORY_UTILIZATION,
        MIN_GPU_MEMORY_UTILIZATION,
        MAX_GPU_MEMORY_UTILIZATION,
        "set it to the fraction of GPU memory the engine may use, e.g. 0.90",
    )
    extra_args = _parse_extra_args(reader, engine)
    port = reader.integer(
        "DSD_PORT", DEFAULT_PORT, 1, 65535, "set it to the container port, 8080 in the contract"
    )
    drain_seconds = reader.number(
        "DSD_DRAIN_SECONDS",
        DEFAULT_DRAIN_SECONDS,
        0.0,
        None,
        "set it to how long running requests may take to finish after SIGTERM, e.g. 120",
    )
    engine_command_override = _parse_engine_command(reader)
    if reader.errors:
        raise ConfigError(reader.errors)
    # The integer readers only return None when a default of None was given (DSD_MAX_MODEL_LEN).
    assert tensor_parallel_size is not None
    assert max_num_seqs is not None
    assert port is not None
    return LauncherConfig(
        engine=engine,
        model_source=source,
        model_path=model_path,
        model_id=model_id if source == "HuggingFace" else None,
        model_revision=revision,
        served_model_name=served_model_name,
        tensor_parallel_size=tensor_parallel_size,
        max_num_seqs=max_num_seqs,
        max_model_len=max_model_len,
        quantization=quantization,
        gpu_memory_utilization=gpu_memory_utilization,
        extra_args=extra_args,
        port=port,
        drain_seconds=drain_seconds,
        engine_command_override=engine_command_override,
    )


def _precision_args(config: LauncherConfig) -> list[str]:
    dtypes = VLLM_DTYPE if config.engine == "vllm" else SGLANG_DTYPE
    methods = VLLM_QUANTIZATION if config.engine == "vllm" else SGLANG_QUANTIZATION
    if config.quantization in dtypes:
        return ["--dtype", dtypes[config.quantization]]
    # Quantized checkpoints: the engine picks the activation dtype the kernel supports.
    return ["--quantization", methods[config.quantization]]


def version_tuple(version: str) -> tuple[int, ...]:
    """The leading release numbers of a version ("0.18.1rc1+cu128" -> (0, 18, 1))."""
    numbers = []
    for part in version.split("+")[0].split("."):
        digits = ""
        for character in part:
            if not character.isdigit():
                break
            digits += character
        if not digits:
            break
        numbers.append(int(digits))
        if len(digits) < len(part):
            break
    return tuple(numbers)


def graceful_shutdown_args(config: LauncherConfig) -> list[str]:
    """The engine's own drain option, where its installed version has one (see VLLM_SHUTDOWN_TIMEOUT_SINCE)."""
    if config.engine != "vllm" or config.engine_version is None:
        return []
    if version_tuple(config.engine_version) < VLLM_SHUTDOWN_TIMEOUT_SINCE:
        return []
    if any(arg.split("=", 1)[0] == VLLM_SHUTDOWN_TIMEOUT_FLAG for arg in config.extra_args):
        return []  # the user's own value
    seconds = max(0, math.floor(config.drain_seconds) - SHUTDOWN_TIMEOUT_MARGIN_SECONDS)
    return [VLLM_SHUTDOWN_TIMEOUT_FLAG, str(seconds)]


def installed_engine_version(engine: Engine) -> str | None:
    """The installed engine's package version; None when it is not installed (tests, a fake engine)."""
    from importlib import metadata

    try:
        return metadata.version(engine)
    except metadata.PackageNotFoundError:
        return None


def engine_command(config: LauncherConfig) -> list[str]:
    """The engine command line for `config`; secrets (HF_TOKEN) stay in the environment."""
    prefix = config.engine_command_override or DEFAULT_ENGINE_PREFIX[config.engine]
    memory = f"{config.gpu_memory_utilization:g}"
    if config.engine == "vllm":
        args = [
            config.model_reference,
            "--served-model-name", config.served_model_name,
            "--host", LISTEN_HOST,
            "--port", str(config.port),
            "--tensor-parallel-size", str(config.tensor_parallel_size),
            "--max-num-seqs", str(config.max_num_seqs),
            "--gpu-memory-utilization", memory,
        ]  # fmt: skip
        if config.max_model_len is not None:
            args += ["--max-model-len", str(config.max_model_len)]
    else:
        args = [
            "--model-path", config.model_reference,
            "--served-model-name", config.served_model_name,
            "--host", LISTEN_HOST,
            "--port", str(config.port),
            "--tp-size", str(config.tensor_parallel_size),
            "--max-running-requests", str(config.max_num_seqs),
            "--mem-fraction-static", memory,
            # SGLang serves /metrics only when asked; the contract requires it.
            "--enable-metrics",
        ]  # fmt: skip
        if config.max_model_len is not None:
            args += ["--context-length", str(config.max_model_len)]
    if config.model_source == "HuggingFace":
        args += ["--revision", config.model_revision]
    args += _precision_args(config)
    args += graceful_shutdown_args(config)
    args += config.extra_args
    return [*prefix, *args]


def preflight_errors(config: LauncherConfig) -> list[str]:
    """Checks against the container's filesystem, kept apart from the pure validation."""
    errors: list[str] = []
    if config.model_source in ("Image", "PVC"):
        model_dir = Path(config.model_path)
        how_to_fix = (
            "build the image with --build-arg MODEL=copy"
            if config.model_source == "Image"
            else "mount the model volume there"
        )
        if not model_dir.is_dir():
            errors.append(
                f"DSD_MODEL_PATH={config.model_path} is not a directory "
                f"(DSD_MODEL_SOURCE={config.model_source}): {how_to_fix}, "
                "or set DSD_MODEL_SOURCE=HuggingFace and DSD_MODEL_ID"
            )
        elif not any(model_dir.iterdir()):
            errors.append(
                f"DSD_MODEL_PATH={config.model_path} is empty "
                f"(DSD_MODEL_SOURCE={config.model_source}): {how_to_fix}, "
                "or set DSD_MODEL_SOURCE=HuggingFace and DSD_MODEL_ID"
            )
    if config.engine_command_override is not None:
        executable = config.engine_command_override[0]
        if shutil.which(executable) is None:
            errors.append(
                f"DSD_ENGINE_COMMAND starts with {executable!r}, which is not an executable on PATH: "
                "fix the command or unset DSD_ENGINE_COMMAND"
            )
    elif config.engine == "vllm" and shutil.which("vllm") is None:
        errors.append(
            "DSD_ENGINE=vllm but this image has no vllm executable: "
            "use the image built with --build-arg ENGINE=vllm or set DSD_ENGINE=sglang"
        )
    elif config.engine == "sglang" and importlib.util.find_spec("sglang") is None:
        errors.append(
            "DSD_ENGINE=sglang but this image has no sglang package: "
            "use the image built with --build-arg ENGINE=sglang or set DSD_ENGINE=vllm"
        )
    return errors


def exit_status(returncode: int) -> int:
    """Shell convention: a child killed by signal N makes the launcher exit 128 + N."""
    return returncode if returncode >= 0 else 128 - returncode


# Signals that end the engine: forwarded once, then the drain deadline starts.
DRAIN_SIGNALS: Final = (signal.SIGTERM, signal.SIGINT)
# Signals only passed through (e.g. SIGHUP for a log reopen, SIGUSR1 for a stack dump).
FORWARDED_SIGNALS: Final = (*DRAIN_SIGNALS, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


class EngineSupervisor:
    """Runs the engine in its own process group, forwards signals and enforces the drain deadline.

    Signals go to the engine's main process only: vLLM and SGLang stop their own worker
    processes in order. When the deadline passes the whole group is killed, so tensor-parallel
    workers cannot outlive the pod's grace period.
    """

    def __init__(
        self,
        command: Sequence[str],
        drain_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._command = list(command)
        self._drain_seconds = drain_seconds
        self._clock = clock
        self._process: subprocess.Popen[bytes] | None = None
        self._drain_deadline: float | None = None

    def handle_signal(self, signum: int, _frame: FrameType | None = None) -> None:
        name = signal.Signals(signum).name
        if signum in DRAIN_SIGNALS and self._drain_deadline is None:
            self._drain_deadline = self._clock() + self._drain_seconds
            log.info("draining", extra={"fields": {"signal": name, "drain_seconds": self._drain_seconds}})
        if self._process is not None and self._process.poll() is None:
            log.info("forwarding signal", extra={"fields": {"signal": name, "pid": self._process.pid}})
            self._process.send_signal(signum)

    def install_signal_handlers(self) -> None:
        for signum in FORWARDED_SIGNALS:
            signal.signal(signum, self.handle_signal)

    def run(self) -> int:
        """Start the engine and wait for it; return the launcher's exit status."""
        if self._drain_deadline is not None:
            log.info("terminated before the engine started")
            return 0
        # A new session makes the engine a process-group leader, so the deadline can kill its workers.
        self._process = subprocess.Popen(self._command, start_new_session=True)
        log.info("engine started", extra={"fields": {"pid": self._process.pid}})
        if self._drain_deadline is not None:
            # SIGTERM arrived while the engine was being spawned, before it could be forwarded.
            self._process.send_signal(signal.SIGTERM)
        killed = False
        while True:
            try:
                returncode = self._process.wait(timeout=ENGINE_POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                pass
            if not killed and self._drain_deadline is not None and self._clock() >= self._drain_deadline:
                log.warning(
                    "drain deadline passed, killing the engine",
                    extra={"fields": {"drain_seconds": self._drain_seconds, "pid": self._process.pid}},
                )
                self._kill_group()
                killed = True
        # Workers left behind by an engine that exited on its own must not keep holding GPUs.
        self._kill_group()
        log.info("engine exited", extra={"fields": {"returncode": returncode, "killed": killed}})
        return exit_status(returncode)

    def _kill_group(self) -> None:
        assert self._process is not None
        # ProcessLookupError: the group is already gone.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signal.SIGKILL)


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line, so log pipelines can parse launcher output next to the engine's."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


def main(env: Mapping[str, str] | None = None) -> int:
    """Entry point of `python3 app.py`: validate, build the command, supervise the engine."""
    environment = os.environ if env is None else env
    configure_logging()
    try:
        config = config_from_env(environment)
    except ConfigError as error:
        for message in error.messages:
            log.error(message, extra={"fields": {"kind": "config"}})
        return EXIT_CONFIG_ERROR
    problems = preflight_errors(config)
    if problems:
        for message in problems:
            log.error(message, extra={"fields": {"kind": "preflight"}})
        return EXIT_CONFIG_ERROR
    if config.engine_command_override is None:
        config = dataclasses.replace(config, engine_version=installed_engine_version(config.engine))
    command = engine_command(config)
    log.info(
        "starting engine",
        extra={"fields": {"engine": config.engine, "command": shlex.join(command), "port": config.port}},
    )
    supervisor = EngineSupervisor(command, config.drain_seconds)
    supervisor.install_signal_handlers()
    return supervisor.run()
