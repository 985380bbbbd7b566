"""How many replicas each region and each capacity pool runs.

Like a cloud auto-scaling group's mixed-instances policy: a base of on-demand replicas, then a
percentage of the rest on spot. Rounding always favours on-demand, the safety net.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from deepseek_operator.api import CapacityPool, DeepSeekDeploymentSpec, RegionSpec, SpotSpec


@dataclass(frozen=True)
class ReplicaAdjustments:
    """What the operator's controllers change in the spec's plan, per region (read from status by the
    reconcile, so rendering stays a pure function of spec and status).

    - ``full_regions``: regions that run ``spec.replicas`` although they are not the active region
      (a failover raises its target before traffic moves: make before break);
    - ``on_demand_fallback``: on-demand replicas added to a region in place of spot replicas that cannot
      run (the spot Deployment keeps its target);
    - ``spot_spill``: spot replicas added to a region in place of on-demand replicas that cannot run;
    - ``spot_withheld``: spot replicas taken from a region where spot is suppressed (interrupted too
      often), once their on-demand fallback is ready.
    """

    full_regions: frozenset[str] = frozenset()
    on_demand_fallback: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    spot_spill: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    spot_withheld: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))


NO_ADJUSTMENTS = ReplicaAdjustments()


@dataclass(frozen=True)
class PoolReplicas:
    """Replicas of one region, per capacity pool."""

    on_demand: int
    spot: int

    @property
    def total(self) -> int:
        return self.on_demand + self.spot

    def for_pool(self, pool: CapacityPool) -> int:
        return self.spot if pool is CapacityPool.SPOT else self.on_demand

    @property
    def spot_share(self) -> str:
        """Share of replicas on spot as a percentage string ("33%"), rounded down; "0%" when empty.

        Rounded down so the column never overstates the exposure to spot interruptions.
        """
        if self.total == 0:
            return "0%"
        return f"{self.spot * 100 // self.total}%"


def split_replicas(total: int, spot: SpotSpec) -> PoolReplicas:
    """Split a region's ``total`` replicas between the on-demand and spot pools.

    With spot disabled everything is on-demand. Otherwise, with ``base = spot.on_demand_base`` and
    ``pct = spot.spot_percentage``::

        on_demand = min(total, base) + ceil((total - min(total, base)) * (100 - pct) / 100)
        spot      = total - on_demand

    The on-demand share is rounded **up**: 3 replicas above the base at 50% give 2 on-demand and
    1 spot. Integer arithmetic only, so no float rounding can creep in.
    """
    if total < 0:
        raise ValueError(f"replicas must not be negative, got {total}")
    if not spot.enabled:
        return PoolReplicas(on_demand=total, spot=0)
    base = min(total, spot.on_demand_base)
    above_base = total - base
    on_demand_above_base = -(-above_base * (100 - spot.spot_percentage) // 100)  # ceiling division
    on_demand = base + on_demand_above_base
    return PoolReplicas(on_demand=on_demand, spot=total - on_demand)


def resolve_active_region(spec: DeepSeekDeploymentSpec, active_region: str | None = None) -> str:
    """The region taking traffic: ``active_region`` when one is given (the failover controller's
    routing, see ``placement``), else the spec's Active region. Raises ValueError for a region the spec
    does not list."""
    if active_region is None:
        return spec.active_region_name
    if all(region.name != active_region for region in spec.regions):
        known = ", ".join(region.name for region in spec.regions)
        raise ValueError(f"active region {active_region!r} is not in spec.regions ({known})")
    return active_region


def region_total_replicas(
    spec: DeepSeekDeploymentSpec,
    region: RegionSpec,
    active_region: str,
    adjustments: ReplicaAdjustments = NO_ADJUSTMENTS,
) -> int:
    """Replicas of one region before the pool split.

    The active region (and any region in ``adjustments.full_regions``) runs ``spec.replicas``; every
    other region keeps ``failover.standbyWarmReplicas`` warm (so that making it Active does not wait
    for a model to load), or none when ``failover.enabled`` is false.
    """
    if region.name == active_region or region.name in adjustments.full_regions:
        return spec.replicas
    if not spec.failover.enabled:
        return 0
    return spec.failover.standby_warm_replicas


def plan_replicas(
    spec: DeepSeekDeploymentSpec,
    active_region: str | None = None,
    adjustments: ReplicaAdjustments = NO_ADJUSTMENTS,
) -> dict[str, PoolReplicas]:
    """Replicas per region (in spec order) and pool: what the operator asks for.

    The spec's split, plus the controllers' ``adjustments`` (on-demand fallback, spot spill, spot
    withheld). Handlers use it for the pools' ``desiredReplicas`` and ``status.spotShare``.
    """
    active = resolve_active_region(spec, active_region)
    plan: dict[str, PoolReplicas] = {}
    for region in spec.regions:
        split = split_replicas(region_total_replicas(spec, region, active, adjustments), spec.spot)
        spot = split.spot + adjustments.spot_spill.get(region.name, 0)
        plan[region.name] = PoolReplicas(
            on_demand=split.on_demand + adjustments.on_demand_fallback.get(region.name, 0),
            spot=max(0, spot - adjustments.spot_withheld.get(region.name, 0)),
        )
    return plan
