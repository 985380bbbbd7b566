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
    active_region, full_regions = failover_routing(spec, status or {})
    on_demand_fallback, spot_spill, spot_withheld = spot_adjustments(spec, status or {})
    return Placement(
        active_region=active_region,
        adjustments=ReplicaAdjustments(
            full_regions=full_regions,
            on_demand_fallback=on_demand_fallback,
            spot_spill=spot_spill,
            spot_withheld=spot_withheld,
        ),
    )


def failover_routing(spec: DeepSeekDeploymentSpec, status: Mapping[str, Any]) -> tuple[str, frozenset[str]]:
    """The region that takes traffic, and the regions raised to the full replica count.

    No failover controller records a decision yet: the spec's Active region, nothing raised.
    """
    del status
    return resolve_active_region(spec), frozenset()


def spot_adjustments(
    spec: DeepSeekDeploymentSpec, status: Mapping[str, Any]
) -> tuple[Mapping[str, int], Mapping[str, int], Mapping[str, int]]:
    """On-demand fallback, spot spill and withheld spot replicas per region, as the spot controller
    recorded them in ``status.spot.regions`` (`deepseek_operator.spot`).

    None while spot or its fallback is disabled in the spec, whatever status still says (the controller
    clears it at its next look), and none for a region the spec no longer lists.
    """
    if not (spec.spot.enabled and spec.spot.fallback.enabled):
        return {}, {}, {}
    names = {region.name for region in spec.regions}
    fallback: dict[str, int] = {}
    spill: dict[str, int] = {}
    withheld: dict[str, int] = {}
    for region in (status.get("spot") or {}).get("regions") or []:
        name = region.get("name")
        if name not in names:
            continue
        for target, key in (
            (fallback, "fallbackReplicas"),
            (spill, "spillReplicas"),
            (withheld, "withheldReplicas"),
        ):
            value = region.get(key)
            if isinstance(value, int) and value > 0:
                target[name] = value
    return fallback, spill, withheld
