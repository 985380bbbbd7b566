"""GPU-less stand-in for a vLLM or SGLang inference server (see docs/inference-contract.md)."""

from deepseek_simulator.config import ConfigError, Faults, SimulatorConfig, load_config
from deepseek_simulator.server import SimulatorServer

__all__ = ["ConfigError", "Faults", "SimulatorConfig", "SimulatorServer", "load_config"]
__version__ = "0.1.0"
