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

from deepseek_operator.api import DeepSeekDeploymentSpec, PredictiveMode
from deepseek_operator.render.replicas import NO_ADJUSTMENTS, ReplicaAdjustments, resolve_active_region


@dataclass(frozen=True)
class Placement:
    active_region: str
    adjustments: ReplicaAdjustments = NO_ADJUSTMENTS


def placement_from_status(spec: DeepSeekDeploymentSpec, status: Mapping[str, Any] | None) -> Placement:
    """The placement the controllers' status fields describe for this spec (the spec's own when none)."""
    active_region, full_regions = failover_routing(spec, status or {})
    on_demand_fallback, spot_spill = spot_adjustments(spec, status or {})
    return Placement(
        active_region=active_region,
        adjustments=ReplicaAdjustments(
            full_regions=full_regions, on_demand_fallback=on_demand_fallback, spot_spill=spot_spill
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
) -> tuple[Mapping[str, int], Mapping[str, int]]:
    """On-demand fallback and spot spill replicas per region.

    No spot controller records a decision yet: none.
    """
    del spec, status
    return {}, {}


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
