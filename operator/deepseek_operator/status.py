"""What the status says, computed from the spec and the observed child Deployments (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from deepseek_operator.api import (
    CapacityPool,
    Condition,
    ConditionStatus,
    ConditionType,
    DeepSeekDeploymentSpec,
    DeepSeekDeploymentStatus,
    PoolStatus,
    RegionRole,
    RegionStatus,
)
from deepseek_operator.render.labels import POOL_LABEL, REGION_LABEL, region_selector, selector_string
from deepseek_operator.render.replicas import plan_replicas


@dataclass(frozen=True)
class ObservedDeployment:
    """The part of a child Deployment that status is made of."""

    region: str
    pool: CapacityPool
    spec_replicas: int
    replicas: int
    ready_replicas: int
    updated_replicas: int
    generation: int
    observed_generation: int

    @property
    def rolled_out(self) -> bool:
        """The Deployment controller has acted on the latest template and every pod runs it."""
        return (
            self.observed_generation >= self.generation
            and self.updated_replicas >= self.spec_replicas
            and self.replicas == self.spec_replicas
        )

    @classmethod
    def from_object(cls, deployment: Mapping[str, Any]) -> ObservedDeployment | None:
        """None for a Deployment without the operator's region/pool labels."""
        metadata = deployment["metadata"]
        labels = metadata.get("labels") or {}
        if REGION_LABEL not in labels or POOL_LABEL not in labels:
            return None
        status = deployment.get("status") or {}
        return cls(
            region=labels[REGION_LABEL],
            pool=CapacityPool(labels[POOL_LABEL]),
            spec_replicas=int(deployment["spec"].get("replicas") or 0),
            replicas=int(status.get("replicas") or 0),
            ready_replicas=int(status.get("readyReplicas") or 0),
            updated_replicas=int(status.get("updatedReplicas") or 0),
            generation=int(metadata.get("generation") or 0),
            observed_generation=int(status.get("observedGeneration") or 0),
        )


@dataclass(frozen=True)
class Problem:
    """Something the operator could not do; shown as Degraded=True with this reason and message."""

    reason: str
    message: str


def _condition(
    kind: ConditionType,
    status: ConditionStatus,
    reason: str,
    message: str,
    generation: int | None,
    previous: Mapping[str, Condition],
    now: datetime,
) -> Condition:
    """A condition whose lastTransitionTime moves only when its status changes."""
    before = previous.get(kind.value)
    unchanged = before is not None and before.status is status and before.last_transition_time is not None
    return Condition(
        type=kind.value,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=before.last_transition_time if unchanged and before else now,
        observed_generation=generation,
    )


def compute_status(
    name: str,
    spec: DeepSeekDeploymentSpec,
    generation: int | None,
    active_region: str,
    observed: Iterable[ObservedDeployment],
    previous_conditions: Sequence[Condition],
    problems: Sequence[Problem],
    now: datetime,
) -> DeepSeekDeploymentStatus:
    observed_list = list(observed)
    plan = plan_replicas(spec, active_region)
    previous = {condition.type: condition for condition in previous_conditions}

    def ready_in(region: str, pool: CapacityPool | None = None) -> int:
        return sum(
            d.ready_replicas for d in observed_list if d.region == region and (pool is None or d.pool is pool)
        )

    regions = []
    for region in spec.regions:
        pools = [
            PoolStatus(
                name=pool,
                desired_replicas=plan[region.name].for_pool(pool),
                ready_replicas=ready_in(region.name, pool),
            )
            for pool in (CapacityPool.ON_DEMAND, CapacityPool.SPOT)
            if pool is CapacityPool.ON_DEMAND or spec.spot.enabled
        ]
        regions.append(
            RegionStatus(
                name=region.name,
                role=RegionRole.ACTIVE if region.name == active_region else RegionRole.STANDBY,
                desired_replicas=plan[region.name].total,
                ready_replicas=ready_in(region.name),
                pools=tuple(pools),
            )
        )

    desired = plan[active_region].total
    ready = ready_in(active_region)
    current = sum(d.replicas for d in observed_list if d.region == active_region)
    pool_summary = ", ".join(
        f"{pool.name.value} {pool.ready_replicas}/{pool.desired_replicas}"
        for pool in next(r for r in regions if r.name == active_region).pools
    )

    if problems:
        ready_condition = (ConditionStatus.FALSE, problems[0].reason, problems[0].message)
    elif desired == 0:
        ready_condition = (
            ConditionStatus.TRUE,
            "ScaledToZero",
            f"{active_region} is scaled to zero replicas",
        )
    elif ready >= desired:
        ready_condition = (
            ConditionStatus.TRUE,
            "AllReplicasReady",
            f"{ready}/{desired} replicas ready in {active_region} ({pool_summary})",
        )
    else:
        ready_condition = (
            ConditionStatus.FALSE,
            "ReplicasNotReady",
            f"{ready}/{desired} replicas ready in {active_region} ({pool_summary})",
        )

    rolling = sorted(f"{d.region}/{d.pool.value}" for d in observed_list if not d.rolled_out)
    missing = len(observed_list) < sum(len(r.pools) for r in regions)
    if rolling or missing:
        progressing = (
            ConditionStatus.TRUE,
            "RollingOut",
            "rolling out " + (", ".join(rolling) if rolling else "new Deployments"),
        )
    else:
        progressing = (ConditionStatus.FALSE, "RolloutComplete", "every Deployment runs the latest spec")

    if problems:
        degraded = (
            ConditionStatus.TRUE,
            problems[0].reason,
            "; ".join(problem.message for problem in problems),
        )
    else:
        degraded = (ConditionStatus.FALSE, "AsExpected", "all children are applied")

    conditions = tuple(
        _condition(kind, status, reason, message, generation, previous, now)
        for kind, (status, reason, message) in (
            (ConditionType.READY, ready_condition),
            (ConditionType.PROGRESSING, progressing),
            (ConditionType.DEGRADED, degraded),
        )
    )
    return DeepSeekDeploymentStatus(
        observed_generation=generation,
        conditions=conditions,
        active_region=active_region,
        regions=tuple(regions),
        replicas=current,
        ready_replicas=ready,
        desired_replicas=desired,
        ready=f"{ready}/{desired}",
        spot_share=plan[active_region].spot_share,
        selector=selector_string(region_selector(name, active_region)),
    )


def invalid_spec_status(
    generation: int, message: str, previous_conditions: Sequence[Condition], now: datetime
) -> DeepSeekDeploymentStatus:
    """Status for a spec the operator cannot act on (what the schema could not reject)."""
    previous = {condition.type: condition for condition in previous_conditions}
    return DeepSeekDeploymentStatus(
        observed_generation=generation,
        conditions=(
            _condition(
                ConditionType.READY, ConditionStatus.FALSE, "InvalidSpec", message, generation, previous, now
            ),
            _condition(
                ConditionType.PROGRESSING,
                ConditionStatus.FALSE,
                "InvalidSpec",
                "fix the spec to continue",
                generation,
                previous,
                now,
            ),
            _condition(
                ConditionType.DEGRADED,
                ConditionStatus.TRUE,
                "InvalidSpec",
                message,
                generation,
                previous,
                now,
            ),
        ),
    )


def is_ready_for_its_generation(deepseek_deployment: Mapping[str, Any]) -> bool:
    """Whether a DeepSeekDeployment object (as the API returns it) says Ready=True for its current spec.

    A Ready condition from an older generation does not count: the spec it describes has changed since.
    Clients (kubectl-style waits, tests, benchmarks) use this one definition.
    """
    generation = deepseek_deployment["metadata"].get("generation")
    conditions = (deepseek_deployment.get("status") or {}).get("conditions") or []
    return any(
        condition.get("type") == ConditionType.READY.value
        and condition.get("status") == ConditionStatus.TRUE.value
        and condition.get("observedGeneration") == generation
        for condition in conditions
    )
