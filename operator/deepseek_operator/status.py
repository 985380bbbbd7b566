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
from deepseek_operator.conditions import transition
from deepseek_operator.render.labels import POOL_LABEL, REGION_LABEL, region_selector, selector_string
from deepseek_operator.render.replicas import NO_ADJUSTMENTS, ReplicaAdjustments, plan_replicas


@dataclass(frozen=True)
class ObservedDeployment:
    """The part of a child Deployment that status is made of."""

    region: str
    pool: CapacityPool
    spec_replicas: int
    replicas: int
    ready_replicas: int
    available_replicas: int
    updated_replicas: int
    generation: int
    observed_generation: int
    progress_deadline_exceeded: bool = False

    @property
    def name(self) -> str:
        """`<region>/<pool>`, how status messages name this Deployment."""
        return f"{self.region}/{self.pool.value}"

    @property
    def spec_observed(self) -> bool:
        """The Deployment controller has seen the current template and replica count."""
        return self.observed_generation >= self.generation

    @property
    def template_rolled_out(self) -> bool:
        """The controller has seen the latest spec and every pod runs the current template (no old pod is
        left), whether or not all of them are available yet."""
        return (
            self.spec_observed
            and self.updated_replicas >= self.spec_replicas
            and self.replicas <= self.updated_replicas
        )

    @property
    def rolled_out(self) -> bool:
        """What `kubectl rollout status` calls successfully rolled out: the template is rolled out and
        every updated pod is available."""
        return self.template_rolled_out and self.available_replicas >= self.updated_replicas

    @property
    def current_available(self) -> int:
        """Available pods that run the current template.

        Deployment status counts available pods of every template together, so this is the lower
        bound that holds whatever the old pods do: all of them are taken to be available. 0 until the
        controller has seen the current spec (its counts still describe the previous one).
        """
        if not self.spec_observed:
            return 0
        old_pods = max(0, self.replicas - self.updated_replicas)
        return max(0, min(self.updated_replicas, self.available_replicas - old_pods))

    @property
    def rollout_progress(self) -> str | None:
        """Why the rollout is not complete, in `kubectl rollout status` terms; None when it is."""
        if self.rolled_out:
            return None
        if not self.spec_observed:
            progress = "waiting for the Deployment controller to observe the new spec"
        elif self.updated_replicas < self.spec_replicas:
            progress = f"{self.updated_replicas} of {self.spec_replicas} new replicas updated"
        elif self.replicas > self.updated_replicas:
            progress = f"{self.replicas - self.updated_replicas} old replicas pending termination"
        else:
            progress = f"{self.available_replicas} of {self.updated_replicas} updated replicas available"
        if self.progress_deadline_exceeded:
            progress += ", progress deadline exceeded"
        return progress

    @classmethod
    def from_object(cls, deployment: Mapping[str, Any]) -> ObservedDeployment | None:
        """None for a Deployment without the operator's region/pool labels."""
        metadata = deployment["metadata"]
        labels = metadata.get("labels") or {}
        if REGION_LABEL not in labels or POOL_LABEL not in labels:
            return None
        status = deployment.get("status") or {}
        conditions = status.get("conditions") or []
        return cls(
            region=labels[REGION_LABEL],
            pool=CapacityPool(labels[POOL_LABEL]),
            spec_replicas=int(deployment["spec"].get("replicas") or 0),
            replicas=int(status.get("replicas") or 0),
            ready_replicas=int(status.get("readyReplicas") or 0),
            available_replicas=int(status.get("availableReplicas") or 0),
            updated_replicas=int(status.get("updatedReplicas") or 0),
            generation=int(metadata.get("generation") or 0),
            observed_generation=int(status.get("observedGeneration") or 0),
            progress_deadline_exceeded=any(
                condition.get("type") == "Progressing"
                and condition.get("reason") == "ProgressDeadlineExceeded"
                for condition in conditions
            ),
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
    return transition(kind.value, status, reason, message, generation, previous.get(kind.value), now)


def compute_status(
    name: str,
    spec: DeepSeekDeploymentSpec,
    generation: int | None,
    active_region: str,
    observed: Iterable[ObservedDeployment],
    previous_conditions: Sequence[Condition],
    problems: Sequence[Problem],
    now: datetime,
    adjustments: ReplicaAdjustments = NO_ADJUSTMENTS,
) -> DeepSeekDeploymentStatus:
    observed_list = list(observed)
    plan = plan_replicas(spec, active_region, adjustments)
    # What must serve: the spec's split. On-demand fallback and spot spill stand in for replicas that
    # cannot run (the pools' Deployments ask for both, the Pending ones and their stand-ins), so they
    # count in the pools' desired replicas, not in the region's.
    serving = plan_replicas(spec, active_region, ReplicaAdjustments(full_regions=adjustments.full_regions))
    previous = {condition.type: condition for condition in previous_conditions}

    def ready_in(region: str, pool: CapacityPool | None = None) -> int:
        """Available pods of the current spec: old pods that still serve during a rollout do not count."""
        return sum(
            d.current_available
            for d in observed_list
            if d.region == region and (pool is None or d.pool is pool)
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
                desired_replicas=serving[region.name].total,
                ready_replicas=ready_in(region.name),
                pools=tuple(pools),
            )
        )

    desired = serving[active_region].total
    ready = ready_in(active_region)
    current = sum(d.replicas for d in observed_list if d.region == active_region)
    active_pools = next(r for r in regions if r.name == active_region).pools
    pool_summary = ", ".join(
        f"{pool.name.value} {pool.ready_replicas}/{pool.desired_replicas}" for pool in active_pools
    )
    counts = f"{ready}/{desired} replicas ready in {active_region} ({pool_summary})"

    # Deployments that `kubectl rollout status` would still wait for (and the ones not created yet), by
    # region; `replacing` are those whose pods do not all run the current template yet.
    present = {(d.region, d.pool) for d in observed_list}
    missing = [
        (r.name, f"{r.name}/{pool.name.value} (not created yet)")
        for r in regions
        for pool in r.pools
        if (r.name, pool.name) not in present
    ]
    by_name = sorted(observed_list, key=lambda d: d.name)
    waiting = [(d.region, f"{d.name} ({d.rollout_progress})") for d in by_name if not d.rolled_out] + missing
    replacing = [
        (d.region, f"{d.name} ({d.rollout_progress})") for d in by_name if not d.template_rolled_out
    ] + missing
    active_replacing = [text for region, text in replacing if region == active_region]

    if problems:
        ready_condition = (ConditionStatus.FALSE, problems[0].reason, problems[0].message)
    elif desired == 0:
        ready_condition = (
            ConditionStatus.TRUE,
            "ScaledToZero",
            f"{active_region} is scaled to zero replicas",
        )
    elif active_replacing:
        # Old pods may still serve, but the current spec does not yet: Ready waits for the rollout.
        ready_condition = (
            ConditionStatus.FALSE,
            "RollingOut",
            f"rolling out {', '.join(active_replacing)}; {counts}",
        )
    elif ready >= desired:
        ready_condition = (ConditionStatus.TRUE, "AllReplicasReady", counts)
    else:
        ready_condition = (ConditionStatus.FALSE, "ReplicasNotReady", counts)

    if replacing:
        progressing = (
            ConditionStatus.TRUE,
            "RollingOut",
            "rolling out " + ", ".join(text for _, text in waiting),
        )
    elif waiting:
        # Every pod runs the current template; some are not available yet (starting, or replaced).
        progressing = (
            ConditionStatus.TRUE,
            "ReplicasNotAvailable",
            "waiting for " + ", ".join(text for _, text in waiting),
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
        # The spec's split: on-demand stand-ins for spot show in status.spot and the Fallback column.
        spot_share=serving[active_region].spot_share,
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
