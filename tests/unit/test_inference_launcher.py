"""The inference launcher: DSD_* validation, translation into vLLM/SGLang command lines, and (with a
fake engine standing in for vLLM via DSD_ENGINE_COMMAND) signal forwarding and the drain deadline."""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from deepseek_launcher import (
    VLLM_SHUTDOWN_TIMEOUT_SINCE,
    ConfigError,
    LauncherConfig,
    config_from_env,
    engine_command,
    exit_status,
    preflight_errors,
    version_tuple,
)

ALL_INTERFACES = "0.0.0.0"
APP = Path(__file__).resolve().parents[2] / "images" / "inference" / "app.py"


def _flag(command: list[str], flag: str) -> str:
    """The value following `flag`, which must appear exactly once."""
    assert command.count(flag) == 1, command
    return command[command.index(flag) + 1]


def _errors(env: dict[str, str]) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as raised:
        config_from_env(env)
    return raised.value.messages


# ---- defaults and translation -------------------------------------------------------------------


def test_defaults_serve_the_baked_model_with_vllm_on_8080() -> None:
    config = config_from_env({})
    assert config == LauncherConfig(
        engine="vllm",
        model_source="Image",
        model_path="/opt/model",
        model_id=None,
        model_revision="main",
        served_model_name="model",
        tensor_parallel_size=1,
        max_num_seqs=256,
        max_model_len=None,
        quantization="bf16",
        gpu_memory_utilization=0.9,
        extra_args=(),
        port=8080,
        drain_seconds=120.0,
    )
    assert engine_command(config) == [
        "vllm", "serve", "/opt/model",
        "--served-model-name", "model",
        "--host", ALL_INTERFACES,
        "--port", "8080",
        "--tensor-parallel-size", "1",
        "--max-num-seqs", "256",
        "--gpu-memory-utilization", "0.9",
        "--dtype", "bfloat16",
    ]  # fmt: skip


def test_sglang_defaults_enable_metrics_on_the_same_port() -> None:
    command = engine_command(config_from_env({"DSD_ENGINE": "sglang"}))
    assert command[:3] == ["python3", "-m", "sglang.launch_server"]
    assert _flag(command, "--model-path") == "/opt/model"
    assert _flag(command, "--port") == "8080"
    assert _flag(command, "--host") == ALL_INTERFACES
    assert _flag(command, "--tp-size") == "1"
    assert _flag(command, "--max-running-requests") == "256"
    assert _flag(command, "--mem-fraction-static") == "0.9"
    assert "--enable-metrics" in command


@pytest.mark.parametrize(
    ("engine", "variable", "value", "flag", "expected"),
    [
        ("vllm", "DSD_SERVED_MODEL_NAME", "deepseek-r1", "--served-model-name", "deepseek-r1"),
        ("vllm", "DSD_TENSOR_PARALLEL_SIZE", "8", "--tensor-parallel-size", "8"),
        ("vllm", "DSD_MAX_NUM_SEQS", "64", "--max-num-seqs", "64"),
        ("vllm", "DSD_MAX_MODEL_LEN", "32768", "--max-model-len", "32768"),
        ("vllm", "DSD_GPU_MEMORY_UTILIZATION", "0.85", "--gpu-memory-utilization", "0.85"),
        ("vllm", "DSD_PORT", "9000", "--port", "9000"),
        ("sglang", "DSD_SERVED_MODEL_NAME", "deepseek-r1", "--served-model-name", "deepseek-r1"),
        ("sglang", "DSD_TENSOR_PARALLEL_SIZE", "8", "--tp-size", "8"),
        ("sglang", "DSD_MAX_NUM_SEQS", "64", "--max-running-requests", "64"),
        ("sglang", "DSD_MAX_MODEL_LEN", "32768", "--context-length", "32768"),
        ("sglang", "DSD_GPU_MEMORY_UTILIZATION", "0.85", "--mem-fraction-static", "0.85"),
        ("sglang", "DSD_PORT", "9000", "--port", "9000"),
    ],
)
def test_each_variable_becomes_the_engines_flag(
    engine: str, variable: str, value: str, flag: str, expected: str
) -> None:
    command = engine_command(config_from_env({"DSD_ENGINE": engine, variable: value}))
    assert _flag(command, flag) == expected


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_context_length_flag_is_left_out_when_max_model_len_is_empty(engine: str) -> None:
    command = engine_command(config_from_env({"DSD_ENGINE": engine, "DSD_MAX_MODEL_LEN": ""}))
    assert "--max-model-len" not in command
    assert "--context-length" not in command


@pytest.mark.parametrize(
    ("engine", "quantization", "expected_args"),
    [
        ("vllm", "bf16", ["--dtype", "bfloat16"]),
        ("vllm", "fp16", ["--dtype", "float16"]),
        ("vllm", "fp8", ["--quantization", "fp8"]),
        ("vllm", "int8", ["--quantization", "compressed-tensors"]),
        ("vllm", "awq", ["--quantization", "awq_marlin"]),
        ("vllm", "gptq", ["--quantization", "gptq_marlin"]),
        ("sglang", "bf16", ["--dtype", "bfloat16"]),
        ("sglang", "fp16", ["--dtype", "float16"]),
        ("sglang", "fp8", ["--quantization", "fp8"]),
        ("sglang", "int8", ["--quantization", "w8a8_int8"]),
        ("sglang", "awq", ["--quantization", "awq_marlin"]),
        ("sglang", "GPTQ", ["--quantization", "gptq_marlin"]),
    ],
)
def test_quantization_maps_to_dtype_or_quantization_method(
    engine: str, quantization: str, expected_args: list[str]
) -> None:
    command = engine_command(config_from_env({"DSD_ENGINE": engine, "DSD_QUANTIZATION": quantization}))
    flag, value = expected_args
    assert _flag(command, flag) == value
    # Exactly one precision flag: quantized checkpoints let the engine pick the activation dtype.
    other = "--quantization" if flag == "--dtype" else "--dtype"
    assert other not in command


@pytest.mark.parametrize(("engine", "model_flag"), [("vllm", None), ("sglang", "--model-path")])
def test_hugging_face_source_passes_repo_id_and_revision(engine: str, model_flag: str | None) -> None:
    env = {
        "DSD_ENGINE": engine,
        "DSD_MODEL_SOURCE": "HuggingFace",
        "DSD_MODEL_ID": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
        "DSD_MODEL_REVISION": "v1.0",
        "HF_TOKEN": "hf_secret_value",
    }
    config = config_from_env(env)
    command = engine_command(config)
    if model_flag is None:
        assert command[2] == "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"
    else:
        assert _flag(command, model_flag) == "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"
    assert _flag(command, "--revision") == "v1.0"
    assert _flag(command, "--served-model-name") == "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"
    assert not any("hf_secret_value" in argument for argument in command)  # the token stays in the env


@pytest.mark.parametrize(
    ("env", "model_reference"),
    [
        ({"DSD_MODEL_SOURCE": "PVC"}, "/mnt/model"),
        ({"DSD_MODEL_SOURCE": "pvc", "DSD_MODEL_PATH": "/mnt/weights/r1"}, "/mnt/weights/r1"),
        ({"DSD_MODEL_SOURCE": "Image", "DSD_MODEL_PATH": "/opt/model/v3"}, "/opt/model/v3"),
    ],
)
def test_local_sources_load_the_model_directory_without_revision(
    env: dict[str, str], model_reference: str
) -> None:
    config = config_from_env(env)
    command = engine_command(config)
    assert command[2] == model_reference
    assert "--revision" not in command
    assert config.served_model_name == Path(model_reference).name


def test_extra_args_are_appended_last_in_order() -> None:
    extra = ["--enable-prefix-caching", "--kv-cache-dtype", "fp8"]
    command = engine_command(config_from_env({"DSD_EXTRA_ARGS": json.dumps(extra)}))
    assert command[-3:] == extra


def test_engine_command_override_replaces_only_the_executable() -> None:
    config = config_from_env({"DSD_ENGINE_COMMAND": "/usr/bin/python3 '/tmp/fake engine.py'"})
    command = engine_command(config)
    assert command[:3] == ["/usr/bin/python3", "/tmp/fake engine.py", "/opt/model"]
    assert command[2:] == engine_command(config_from_env({}))[2:]


# ---- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DSD_ENGINE": "tgi"}, "DSD_ENGINE='tgi' is not one of vllm, sglang: set it to vllm or sglang"),
        (
            {"DSD_MODEL_SOURCE": "S3"},
            "DSD_MODEL_SOURCE='S3' is not one of Image, HuggingFace, PVC: set it to Image",
        ),
        (
            {"DSD_MODEL_PATH": "weights"},
            "DSD_MODEL_PATH='weights' is not an absolute path: set it to the directory",
        ),
        (
            {"DSD_MODEL_SOURCE": "HuggingFace"},
            "DSD_MODEL_ID is empty but DSD_MODEL_SOURCE=HuggingFace needs it: set it to a Hugging Face",
        ),
        (
            {"DSD_MODEL_SOURCE": "HuggingFace", "DSD_MODEL_ID": "a/b/c"},
            "DSD_MODEL_ID='a/b/c' is not a Hugging Face repo id: set it to owner/name",
        ),
        (
            {"DSD_MODEL_SOURCE": "HuggingFace", "DSD_MODEL_ID": "org/m", "DSD_MODEL_REVISION": "v 1"},
            "DSD_MODEL_REVISION='v 1' contains whitespace: set it to a branch, tag or commit",
        ),
        ({"DSD_SERVED_MODEL_NAME": "deep seek"}, "DSD_SERVED_MODEL_NAME='deep seek' contains whitespace"),
        (
            {"DSD_TENSOR_PARALLEL_SIZE": "x"},
            "DSD_TENSOR_PARALLEL_SIZE='x' is not an integer: "
            "set it to the number of GPUs per replica, e.g. 8",
        ),
        (
            {"DSD_TENSOR_PARALLEL_SIZE": "0"},
            "DSD_TENSOR_PARALLEL_SIZE=0 is out of range, it must be at least 1",
        ),
        (
            {"DSD_MAX_NUM_SEQS": "2.5"},
            "DSD_MAX_NUM_SEQS='2.5' is not an integer: set it to the number of sequences",
        ),
        ({"DSD_MAX_NUM_SEQS": "-4"}, "DSD_MAX_NUM_SEQS=-4 is out of range, it must be at least 1"),
        (
            {"DSD_MAX_MODEL_LEN": "128k"},
            "DSD_MAX_MODEL_LEN='128k' is not an integer: set it to the context length",
        ),
        (
            {"DSD_QUANTIZATION": "int4"},
            "DSD_QUANTIZATION='int4' is not one of bf16, fp16, fp8, int8, awq, gptq",
        ),
        ({"DSD_GPU_MEMORY_UTILIZATION": "most"}, "DSD_GPU_MEMORY_UTILIZATION='most' is not a number"),
        (
            {"DSD_GPU_MEMORY_UTILIZATION": "1.0"},
            "DSD_GPU_MEMORY_UTILIZATION=1.0 is out of range, it must be between 0.1 and 0.99",
        ),
        ({"DSD_GPU_MEMORY_UTILIZATION": "0.05"}, "DSD_GPU_MEMORY_UTILIZATION=0.05 is out of range"),
        ({"DSD_EXTRA_ARGS": "--foo"}, "DSD_EXTRA_ARGS='--foo' is not valid JSON"),
        ({"DSD_EXTRA_ARGS": '{"a": 1}'}, "is not a JSON list of strings: write it as a JSON list of strings"),
        ({"DSD_EXTRA_ARGS": "[1, 2]"}, "is not a JSON list of strings"),
        (
            {"DSD_EXTRA_ARGS": '["--port=9"]'},
            "DSD_EXTRA_ARGS contains --port, which the launcher sets from DSD_PORT: remove --port",
        ),
        (
            {"DSD_EXTRA_ARGS": '["--tensor-parallel-size", "4"]'},
            "contains --tensor-parallel-size, which the launcher sets from DSD_TENSOR_PARALLEL_SIZE",
        ),
        (
            {"DSD_ENGINE": "sglang", "DSD_EXTRA_ARGS": '["--mem-fraction-static", "0.5"]'},
            "contains --mem-fraction-static, which the launcher sets from DSD_GPU_MEMORY_UTILIZATION",
        ),
        ({"DSD_PORT": "http"}, "DSD_PORT='http' is not an integer: set it to the container port"),
        ({"DSD_PORT": "65536"}, "DSD_PORT=65536 is out of range, it must be between 1 and 65535"),
        ({"DSD_DRAIN_SECONDS": "soon"}, "DSD_DRAIN_SECONDS='soon' is not a number: set it to how long"),
        ({"DSD_DRAIN_SECONDS": "-1"}, "DSD_DRAIN_SECONDS=-1 is out of range, it must be at least 0"),
        ({"DSD_DRAIN_SECONDS": "inf"}, "DSD_DRAIN_SECONDS=inf is out of range"),
        (
            {"DSD_ENGINE_COMMAND": "python3 'unclosed"},
            'DSD_ENGINE_COMMAND="python3 \'unclosed" cannot be split',
        ),
    ],
)
def test_each_invalid_variable_is_named_with_a_fix(env: dict[str, str], message: str) -> None:
    (only,) = _errors(env)
    assert message in only


def test_every_error_is_collected_rather_than_the_first() -> None:
    env = {
        "DSD_ENGINE": "x",
        "DSD_TENSOR_PARALLEL_SIZE": "x",
        "DSD_MAX_NUM_SEQS": "x",
        "DSD_QUANTIZATION": "x",
        "DSD_PORT": "x",
        "DSD_DRAIN_SECONDS": "x",
    }
    messages = _errors(env)
    assert [message.split("=", 1)[0] for message in messages] == list(env)
    assert all(": set it to" in message for message in messages)


def test_empty_values_mean_the_default() -> None:
    blank = dict.fromkeys(
        ("DSD_ENGINE", "DSD_PORT", "DSD_MAX_NUM_SEQS", "DSD_QUANTIZATION", "DSD_EXTRA_ARGS"), ""
    )
    assert config_from_env(blank) == config_from_env({})


def test_preflight_reports_missing_or_empty_model_directories(tmp_path: Path) -> None:
    fake_engine = f"{sys.executable} engine.py"
    missing = config_from_env({"DSD_MODEL_PATH": str(tmp_path / "absent"), "DSD_ENGINE_COMMAND": fake_engine})
    (message,) = preflight_errors(missing)
    assert (
        "is not a directory (DSD_MODEL_SOURCE=Image): build the image with --build-arg MODEL=copy" in message
    )
    empty = config_from_env(
        {"DSD_MODEL_SOURCE": "PVC", "DSD_MODEL_PATH": str(tmp_path), "DSD_ENGINE_COMMAND": fake_engine}
    )
    (message,) = preflight_errors(empty)
    assert "is empty (DSD_MODEL_SOURCE=PVC): mount the model volume there" in message
    (tmp_path / "config.json").write_text("{}")
    assert preflight_errors(empty) == []


def test_preflight_reports_an_engine_command_that_does_not_exist(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    config = config_from_env({"DSD_MODEL_PATH": str(tmp_path), "DSD_ENGINE_COMMAND": "no-such-engine-binary"})
    (message,) = preflight_errors(config)
    assert message.startswith(
        "DSD_ENGINE_COMMAND starts with 'no-such-engine-binary', which is not an executable"
    )


@pytest.mark.parametrize(
    ("returncode", "status"), [(0, 0), (3, 3), (-signal.SIGKILL, 137), (-signal.SIGTERM, 143)]
)
def test_exit_status_follows_the_shell_convention(returncode: int, status: int) -> None:
    assert exit_status(returncode) == status


# ---- the launcher process with a fake engine ------------------------------------------------------

FAKE_ENGINE = textwrap.dedent(
    """
    import json, os, signal, subprocess, sys, time
    state = sys.argv[1]
    behaviour = os.environ["FAKE_ENGINE_BEHAVIOUR"]
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    def note(event):
        with open(os.path.join(state, "events"), "a") as f:
            f.write(event + "\\n")
    def on_term(signum, frame):
        note("SIGTERM")
        if behaviour == "drain":
            time.sleep(0.5)  # finishing running requests
            worker.kill()
            sys.exit(0)
    signal.signal(signal.SIGTERM, on_term if behaviour != "ignore" else lambda *_: note("SIGTERM"))
    signal.signal(signal.SIGHUP, lambda *_: note("SIGHUP"))
    with open(os.path.join(state, "started.json"), "w") as f:
        json.dump({"argv": sys.argv[2:], "pid": os.getpid(), "worker": worker.pid,
                   "hf_token": os.environ.get("HF_TOKEN")}, f)
    if behaviour == "exit3":
        worker.kill()
        sys.exit(3)
    while True:
        time.sleep(0.05)
    """
)


class LauncherRun:
    """`python3 app.py` as the container runs it, with DSD_ENGINE_COMMAND pointing at the fake engine."""

    def __init__(self, tmp_path: Path, behaviour: str, drain_seconds: str) -> None:
        self.model_dir = model_dir = tmp_path / "model"
        model_dir.mkdir()
        (model_dir / "config.json").write_text("{}")
        self.state = tmp_path / "state"
        self.state.mkdir()
        engine = tmp_path / "fake_engine.py"
        engine.write_text(FAKE_ENGINE)
        env = {
            **os.environ,
            "PYTHONPATH": str(APP.parent),
            "DSD_MODEL_PATH": str(model_dir),
            "DSD_DRAIN_SECONDS": drain_seconds,
            "DSD_ENGINE_COMMAND": shlex.join([sys.executable, str(engine), str(self.state)]),
            "FAKE_ENGINE_BEHAVIOUR": behaviour,
            "HF_TOKEN": "hf_from_secret",
        }
        self.process = subprocess.Popen(
            [sys.executable, str(APP)], env=env, stderr=subprocess.PIPE, text=True, cwd=tmp_path
        )

    def started(self, timeout: float = 20.0) -> dict[str, object]:
        marker = self.state / "started.json"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if marker.exists() and marker.stat().st_size > 0:
                loaded: dict[str, object] = json.loads(marker.read_text())
                return loaded
            assert self.process.poll() is None, self.logs()
            time.sleep(0.02)
        raise AssertionError("the fake engine never started")

    def events(self) -> list[str]:
        path = self.state / "events"
        return path.read_text().split() if path.exists() else []

    def logs(self) -> list[dict[str, object]]:
        assert self.process.stderr is not None
        return [json.loads(line) for line in self.process.stderr.read().splitlines() if line]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        if self.process.stderr is not None:
            self.process.stderr.close()


@pytest.fixture
def launcher_run(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[LauncherRun]:
    behaviour, drain_seconds = request.param
    run = LauncherRun(tmp_path, behaviour, drain_seconds)
    try:
        yield run
    finally:
        run.close()


def _alive(pid: int) -> bool:
    """True while `pid` runs; a zombie waiting for its parent counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize("launcher_run", [("drain", "10")], indirect=True)
def test_sigterm_is_forwarded_and_a_graceful_engine_exit_ends_the_launcher(launcher_run: LauncherRun) -> None:
    started = launcher_run.started()
    # The fake engine got exactly the arguments `vllm serve` would have.
    vllm_command = engine_command(config_from_env({"DSD_MODEL_PATH": str(launcher_run.model_dir)}))
    assert started["argv"] == vllm_command[2:]
    assert started["hf_token"] == "hf_from_secret"
    signalled_at = time.monotonic()
    launcher_run.process.send_signal(signal.SIGTERM)
    exit_code = launcher_run.process.wait(timeout=10)
    elapsed = time.monotonic() - signalled_at

    assert exit_code == 0
    assert launcher_run.events() == ["SIGTERM"]
    assert 0.4 <= elapsed < 3.0  # the engine's own half-second drain, far below the 10 s deadline
    messages = [entry["msg"] for entry in launcher_run.logs()]
    assert "draining" in messages
    assert "drain deadline passed, killing the engine" not in messages


@pytest.mark.parametrize("launcher_run", [("ignore", "1")], indirect=True)
def test_engine_ignoring_sigterm_is_killed_with_its_workers_at_the_deadline(
    launcher_run: LauncherRun,
) -> None:
    started = launcher_run.started()
    engine_pid, worker_pid = int(str(started["pid"])), int(str(started["worker"]))
    signalled_at = time.monotonic()
    launcher_run.process.send_signal(signal.SIGTERM)
    exit_code = launcher_run.process.wait(timeout=10)
    elapsed = time.monotonic() - signalled_at

    assert exit_code == 128 + signal.SIGKILL
    assert launcher_run.events() == ["SIGTERM"]
    assert 1.0 <= elapsed < 3.0
    deadline = time.monotonic() + 5
    while (_alive(engine_pid) or _alive(worker_pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(engine_pid)
    assert not _alive(worker_pid)  # the whole process group went, not only the engine
    messages = [entry["msg"] for entry in launcher_run.logs()]
    assert "drain deadline passed, killing the engine" in messages


@pytest.mark.parametrize("launcher_run", [("drain", "10")], indirect=True)
def test_other_signals_are_forwarded_without_starting_the_drain(launcher_run: LauncherRun) -> None:
    launcher_run.started()
    launcher_run.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while not launcher_run.events() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert launcher_run.events() == ["SIGHUP"]
    assert launcher_run.process.poll() is None
    launcher_run.process.send_signal(signal.SIGTERM)
    assert launcher_run.process.wait(timeout=10) == 0
    assert launcher_run.events() == ["SIGHUP", "SIGTERM"]


@pytest.mark.parametrize("launcher_run", [("exit3", "10")], indirect=True)
def test_engine_exit_status_becomes_the_launchers(launcher_run: LauncherRun) -> None:
    launcher_run.started()
    assert launcher_run.process.wait(timeout=10) == 3


def test_invalid_environment_exits_2_before_starting_anything(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(APP.parent), "DSD_TENSOR_PARALLEL_SIZE": "x", "DSD_PORT": "0"}
    result = subprocess.run(
        [sys.executable, str(APP)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    entries = [json.loads(line) for line in result.stderr.splitlines()]
    assert [entry["level"] for entry in entries] == ["error", "error"]
    assert entries[0]["msg"].startswith("DSD_TENSOR_PARALLEL_SIZE='x' is not an integer")
    assert entries[1]["msg"].startswith("DSD_PORT=0 is out of range")


# ---- graceful shutdown: the engine's own option, where its version has one ----------------------------------


@pytest.mark.parametrize(
    ("engine", "version", "expected"),
    [
        ("vllm", "0.11.0", None),  # the image's pin: no such flag, SIGTERM aborts running requests
        ("vllm", "0.17.1", None),
        ("vllm", "0.18.0", "119"),  # drain 120 s, ending a second before the launcher's deadline
        ("vllm", "0.19.2rc1+cu128", "119"),
        ("vllm", None, None),  # not installed (a fake engine)
        ("sglang", "0.5.4", None),  # drains on SIGTERM by itself, no flag
    ],
)
def test_the_engines_graceful_shutdown_option_is_passed_where_its_version_has_one(
    engine: str, version: str | None, expected: str | None
) -> None:
    config = dataclasses.replace(config_from_env({"DSD_ENGINE": engine}), engine_version=version)
    command = engine_command(config)
    if expected is None:
        assert "--shutdown-timeout" not in command
    else:
        assert _flag(command, "--shutdown-timeout") == expected


def test_the_users_own_shutdown_timeout_is_kept() -> None:
    config = dataclasses.replace(
        config_from_env({"DSD_EXTRA_ARGS": '["--shutdown-timeout=30"]'}), engine_version="0.18.0"
    )
    command = engine_command(config)
    assert command.count("--shutdown-timeout") == 0
    assert command[-1] == "--shutdown-timeout=30"


def test_a_short_spot_drain_gives_a_short_shutdown_timeout() -> None:
    config = dataclasses.replace(config_from_env({"DSD_DRAIN_SECONDS": "9"}), engine_version="0.18.0")
    assert _flag(engine_command(config), "--shutdown-timeout") == "8"
    zero = dataclasses.replace(config_from_env({"DSD_DRAIN_SECONDS": "0"}), engine_version="0.18.0")
    assert _flag(engine_command(zero), "--shutdown-timeout") == "0"


@pytest.mark.parametrize(
    ("version", "numbers"),
    [("0.11.0", (0, 11, 0)), ("0.18.1rc1+cu128", (0, 18, 1)), ("1.0", (1, 0)), ("dev", ())],
)
def test_version_numbers(version: str, numbers: tuple[int, ...]) -> None:
    assert version_tuple(version) == numbers


def test_the_pinned_vllm_has_no_shutdown_timeout_so_none_is_passed_in_the_image() -> None:
    pin = next(
        line.split("==")[1]
        for line in (Path(__file__).parents[2] / "images/inference/requirements-vllm.txt")
        .read_text()
        .splitlines()
        if line.startswith("vllm==")
    )
    assert version_tuple(pin) < VLLM_SHUTDOWN_TIMEOUT_SINCE, (
        "vLLM now has --shutdown-timeout: update the docs"
    )
