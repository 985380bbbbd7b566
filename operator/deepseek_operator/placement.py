"""Where traffic goes and how many replicas run where: the spec, as the controllers have adjusted it.

The reconcile renders children from the spec and from this placement, which is read from the object's
status: the controllers (failover, spot) record their decisions there, so that a restart or another
operator replica renders exactly the same objects. Until a controller has decided anything, the
placement is the spec's own: its Active region takes traffic and its split holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deepseek_operator.api import DeepSeekDeploymentSpec
from deepseek_operator.render.replicas import NO_ADJUSTMENTS, ReplicaAdjustments, resolve_active_region


@dataclass(frozen=True)
class Placement:
    active_region: str
    adjustments: ReplicaAdjustments = NO_ADJUSTMENTS


def placement_from_status(spec: DeepSeekDeploymentSpec, status: Mapping[str, Any] | None) -> Placement:
    """The placement the controllers' status fields describe for this spec (the spec's own when none)."""
    del status  # no controller records a decision yet
    return Placement(active_region=resolve_active_region(spec))
