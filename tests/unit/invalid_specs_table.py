"""The integration tests' table of invalid DeepSeekDeployments, loaded by path for the unit tests.

Loaded by path because `make unit` runs without tests/integration on sys.path.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

INVALID_SPECS_FILE = Path(__file__).resolve().parents[1] / "integration" / "invalid_specs.py"


def load_invalid_specs() -> ModuleType:
    module_spec = importlib.util.spec_from_file_location("invalid_specs", INVALID_SPECS_FILE)
    assert module_spec is not None
    assert module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module
