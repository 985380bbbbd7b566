"""Simulator settings: environment, CLI flags, defaults and validation messages."""

from __future__ import annotations

import tomllib
from importlib import import_module

import pytest
from deepseek_simulator.config import ConfigError, Faults, SimulatorConfig, load_config
from deepseek_simulator.testing import SIMULATOR_SOURCE

ALL_INTERFACES = "0.0.0.0"


def test_defaults_follow_the_contract() -> None:
    config = load_config([], {})
    assert config == SimulatorConfig()
    assert (config.host, config.port, config.engine) == ("127.0.0.1", 8080, "vllm")
    assert (config.max_num_seqs, config.drain_seconds) == (256, 120.0)
    assert config.served_model_name == "model"  # the default /opt/model directory's name
    assert config.kv_capacity_tokens == 256 * 2048


def test_environment_sets_every_setting() -> None:
    env = {
        "DSD_SERVED_MODEL_NAME": "deepseek-r1",
        "DSD_PORT": "9000",
        "DSD_ENGINE": "SGLang",
        "DSD_MAX_NUM_SEQS": "8",
        "DSD_MAX_MODEL_LEN": "4096",
        "DSD_DRAIN_SECONDS": "2.5",
        "SIM_HOST": ALL_INTERFACES,
        "SIM_TOKENS_PER_SECOND": "55.5",
        "SIM_TTFT_MS": "120",
        "SIM_ERROR_RATE": "0.25",
        "SIM_ERROR_STATUS": "503",
        "SIM_EXTRA_LATENCY_MS": "30",
        "SIM_UNHEALTHY": "true",
        "SIM_STARTUP_DELAY_S": "4",
        "SIM_DEFAULT_MAX_TOKENS": "10",
        "SIM_KV_CACHE_TOKENS": "1000",
        "SIM_SEED": "3",
        "SIM_LOG_LEVEL": "debug",
    }
    assert load_config([], env) == SimulatorConfig(
        served_model_name="deepseek-r1",
        host=ALL_INTERFACES,
        port=9000,
        engine="sglang",
        max_num_seqs=8,
        max_model_len=4096,
        drain_seconds=2.5,
        tokens_per_second=55.5,
        ttft_ms=120.0,
        startup_delay_s=4.0,
        default_max_tokens=10,
        kv_cache_tokens=1000,
        seed=3,
        log_level="DEBUG",
        faults=Faults(error_rate=0.25, error_status=503, extra_latency_ms=30.0, unhealthy=True),
    )


def test_cli_flags_win_over_environment_and_empty_values_mean_unset() -> None:
    env = {"DSD_PORT": "9000", "SIM_TTFT_MS": "", "DSD_MAX_NUM_SEQS": "4"}
    config = load_config(["--port", "9100", "--host", "::1", "--unhealthy", "--tokens-per-second", "7"], env)
    assert (config.port, config.host, config.faults.unhealthy) == (9100, "::1", True)
    assert config.tokens_per_second == 7.0
    assert config.ttft_ms == 200.0
    assert config.max_num_seqs == 4
    assert config.kv_capacity_tokens == 4 * 2048


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DSD_MODEL_ID": "deepseek-ai/DeepSeek-R1"}, "deepseek-ai/DeepSeek-R1"),
        ({"DSD_MODEL_PATH": "/mnt/model/deepseek-v3"}, "deepseek-v3"),
        ({"DSD_MODEL_ID": "org/m", "DSD_SERVED_MODEL_NAME": "chat"}, "chat"),
    ],
)
def test_served_model_name_defaults_like_the_launcher(env: dict[str, str], expected: str) -> None:
    assert load_config([], env).served_model_name == expected


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DSD_PORT": "http"}, "DSD_PORT='http' is not an integer: set it to a TCP port"),
        ({"DSD_PORT": "70000"}, "DSD_PORT=70000 is out of range, it must be between 0 and 65535"),
        ({"DSD_ENGINE": "tgi"}, "DSD_ENGINE='tgi' is not one of vllm, sglang"),
        ({"DSD_MAX_NUM_SEQS": "0"}, "DSD_MAX_NUM_SEQS=0 is out of range, it must be at least 1"),
        ({"DSD_MAX_MODEL_LEN": "long"}, "DSD_MAX_MODEL_LEN='long' is not an integer"),
        ({"DSD_DRAIN_SECONDS": "-1"}, "DSD_DRAIN_SECONDS=-1 is out of range, it must be at least 0"),
        ({"SIM_TOKENS_PER_SECOND": "0"}, "SIM_TOKENS_PER_SECOND=0 is out of range, it must be above 0"),
        ({"SIM_TOKENS_PER_SECOND": "fast"}, "SIM_TOKENS_PER_SECOND='fast' is not a number"),
        ({"SIM_TTFT_MS": "nan"}, "SIM_TTFT_MS=nan is out of range"),
        ({"SIM_ERROR_RATE": "2"}, "SIM_ERROR_RATE=2 is out of range, it must be at least 0 and at most 1"),
        ({"SIM_ERROR_STATUS": "502"}, "SIM_ERROR_STATUS"),
        ({"SIM_EXTRA_LATENCY_MS": "-5"}, "SIM_EXTRA_LATENCY_MS=-5 is out of range"),
        ({"SIM_UNHEALTHY": "maybe"}, "SIM_UNHEALTHY='maybe' is not a boolean: set it to true or false"),
        ({"SIM_STARTUP_DELAY_S": "soon"}, "SIM_STARTUP_DELAY_S='soon' is not a number"),
        ({"SIM_DEFAULT_MAX_TOKENS": "0"}, "SIM_DEFAULT_MAX_TOKENS=0 is out of range"),
        ({"SIM_KV_CACHE_TOKENS": "x"}, "SIM_KV_CACHE_TOKENS='x' is not an integer"),
        ({"SIM_SEED": "-1"}, "SIM_SEED=-1 is out of range"),
        ({"SIM_LOG_LEVEL": "loud"}, "SIM_LOG_LEVEL"),
        ({"DSD_SERVED_MODEL_NAME": "deep seek"}, "contains whitespace"),
    ],
)
def test_each_invalid_setting_is_named_with_a_fix(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config([], env)
    (only,) = raised.value.messages
    assert message in only
    assert ": " in only  # every message ends with how to fix it


def test_invalid_flag_value_names_the_flag_not_the_variable() -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(["--ttft-ms", "slow"], {"SIM_TTFT_MS": "5"})
    assert raised.value.messages == (
        "--ttft-ms='slow' is not a number: set it to the time to first token in ms, e.g. 200",
    )


def test_all_errors_are_reported_together() -> None:
    env = {"DSD_PORT": "x", "SIM_ERROR_RATE": "-1", "SIM_TTFT_MS": "y"}
    with pytest.raises(ConfigError) as raised:
        load_config([], env)
    assert len(raised.value.messages) == 3
    assert all(name in str(raised.value) for name in env)


def test_console_script_points_at_the_cli_entry_point() -> None:
    project = tomllib.loads((SIMULATOR_SOURCE / "pyproject.toml").read_text())
    target = project["project"]["scripts"]["deepseek-simulator"]
    module_name, function_name = target.split(":")
    assert module_name == "deepseek_simulator.__main__"
    assert callable(getattr(import_module(module_name), function_name))
