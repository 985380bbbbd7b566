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

from deepseek_operator.api import DeepSeekDeploymentSpec, FailoverPhase, PredictiveMode
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


# Phases in which the failover controller raises its target before the traffic moves (make before break).
_RAISING_PHASES = {FailoverPhase.FAILING_OVER.value, FailoverPhase.FAILING_BACK.value}


def failover_routing(spec: DeepSeekDeploymentSpec, status: Mapping[str, Any]) -> tuple[str, frozenset[str]]:
    """The region that takes traffic, and the regions raised to the full replica count.

    From `status.failover` (the failover controller's decisions): its activeRegion, and during
    FailingOver/FailingBack its targetRegion, raised to spec.replicas before the traffic moves. The spec
    wins whenever the record does not describe it: failover disabled or one region, a record made for
    another Active region (a person changed spec.regions: the traffic follows the spec at once), or a
    region that is no longer in the spec.
    """
    home = resolve_active_region(spec)
    if not spec.failover.enabled or len(spec.regions) < 2:
        return home, frozenset()
    failover = status.get("failover") or {}
    names = {region.name for region in spec.regions}
    active = failover.get("activeRegion")
    if failover.get("homeRegion") != home or active not in names:
        return home, frozenset()
    target = failover.get("targetRegion")
    if failover.get("phase") in _RAISING_PHASES and target in names and target != active:
        return str(active), frozenset({str(target)})
    return str(active), frozenset()


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


def autoscaler_floor(spec: DeepSeekDeploymentSpec, status: Mapping[str, Any] | None) -> int | None:
    """The floor the predictive pre-scaler recorded in ``status.predictive.floorReplicas``
    (`deepseek_operator.predictive`), for the autoscaler's minimum.

    None unless the spec asks for it now (autoscaling and predictive enabled, mode ForecastAndScale),
    whatever status still says: turning it off takes the floor away at the next reconcile. Bounded by
    the spec's minimum and maximum, which may have changed since it was written.
    """
    autoscaling = spec.autoscaling
    predictive = autoscaling.predictive
    if not (
        autoscaling.enabled and predictive.enabled and predictive.mode is PredictiveMode.FORECAST_AND_SCALE
    ):
        return None
    floor = ((status or {}).get("predictive") or {}).get("floorReplicas")
    if not isinstance(floor, int) or isinstance(floor, bool) or floor <= autoscaling.min_replicas:
        return None
    return min(floor, autoscaling.max_replicas)
