"""The spec the rendering tests start from."""

from __future__ import annotations

from typing import Any

from deepseek_operator.api import DeepSeekDeploymentSpec


def make_spec(**changes: Any) -> DeepSeekDeploymentSpec:
    """A small valid spec (two regions: an active one and a standby) with `changes`."""
    spec: dict[str, Any] = {
        "model": {"name": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"},
        "regions": [{"name": "us-east-1", "role": "Active"}, {"name": "us-west-2", "role": "Standby"}],
    }
    spec.update(changes)
    return DeepSeekDeploymentSpec.model_validate(spec)
