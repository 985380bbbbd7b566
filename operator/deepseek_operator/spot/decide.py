"""What the spot controller decides, as a pure function: the policy (from the spec), what it observes of
each region's pools, the previous decision (read back from status) and the time in; the new status,
events and the replacement times out. No I/O, no clock of its own: table-tested with fixed times.

Per region, with ``target`` the spot replicas of the spec's split and ``ready`` the ready spot replicas
that no interruption notice concerns (SkyServe's rule, with a cap):

    fallback = min(target - ready, maxReplicas)

- it rises at once on an interruption notice (the doomed replicas are not ``ready`` any more, so their
  replacement starts before they are gone), and after ``pendingTimeoutSeconds`` of a spot pod Pending
  for capacity; the spot Deployment keeps its target (its Pending pods are the probe for capacity);
- it falls only once spot has been ready at target, without a notice, for ``quietPeriodSeconds``, and
  then by one replica per ``stepSeconds`` (SkyServe moves back at once; spot that flaps would drag the
  on-demand replicas up and down with it);
- ``cooldown.interruptions`` interruptions within ``cooldown.windowSeconds`` stop the use of spot in the
  region for ``cooldown.seconds``, doubled for each further stop until the region was steady for a
  window: every spot replica runs on on-demand, and once those are ready the spot replicas are
  withheld;
- the reverse, opt-in (``spillToSpot``): on-demand pods Pending for capacity past the timeout are
  replaced by spot replicas, which leave the same way once on-demand is back.

Every timer is a timestamp in status, so a restarted operator goes on where the last one stopped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from deepseek_operator.api import (
    CapacityPool,
    Condition,
    ConditionStatus,
    ConditionType,
    SpotInterruption,
    SpotPhase,
    SpotPoolStatus,
    SpotRegionStatus,
    SpotSpec,
    SpotStatus,
)
from deepseek_operator.conditions import transition

# Interruption records kept per region (the API's bound): enough for any sensible cooldown threshold.
MAX_INTERRUPTION_RECORDS = 64
INTERRUPTION = "Interruption"
SHORTAGE = "Shortage"
ON_DEMAND_SHORTAGE = "OnDemandShortage"


@dataclass(frozen=True)
class FallbackPolicy:
    """``spec.spot.fallback`` in seconds."""

    enabled: bool = True
    pending_timeout: int = 300
    max_replicas: int | None = None
    quiet_period: int = 600
    step: int = 120
    spill_to_spot: bool = False
    cooldown_interruptions: int = 3
    cooldown_window: int = 3600
    cooldown: int = 600
    max_cooldown: int = 7200
    # Notices this close are one interruption: a provider reclaims a zone's or an instance type's spot
    # capacity together (co-interruptions within minutes are the rule, arXiv 2604.16457).
    group: int = 60

    @classmethod
    def of(cls, spot: SpotSpec) -> FallbackPolicy:
        fallback = spot.fallback
        return cls(
            enabled=fallback.enabled,
            pending_timeout=fallback.pending_timeout_seconds,
            max_replicas=fallback.max_replicas,
            quiet_period=fallback.quiet_period_seconds,
            step=fallback.step_seconds,
            spill_to_spot=fallback.spill_to_spot,
            cooldown_interruptions=fallback.cooldown.interruptions,
            cooldown_window=fallback.cooldown.window_seconds,
            cooldown=fallback.cooldown.seconds,
            max_cooldown=fallback.cooldown.max_seconds,
            group=fallback.cooldown.group_seconds,
        )

    def cooldown_for(self, previous_stops: int) -> int:
        """The length of the next stop: doubled for each stop before it, capped."""
        return min(self.max_cooldown, self.cooldown * (1 << min(previous_stops, 20)))


@dataclass(frozen=True)
class Notice:
    """An interruption signal under a pool's pods: the node (or the pod, for a pod-level signal)."""

    node: str
    signal: str


@dataclass(frozen=True)
class PoolObservation:
    """One pool of one region, as the indexes show it now."""

    target: int
    # Ready pods that no interruption notice concerns.
    ready: int = 0
    # Ready pods, interrupted or not (they still serve: replica-seconds count them).
    serving: int = 0
    # Pods Pending for capacity (PodScheduled=False, reason Unschedulable), the oldest one's creation
    # and the scheduler's reason for it in short ("Insufficient nvidia.com/gpu on spot nodes").
    pending: int = 0
    pending_since: datetime | None = None
    pending_reason: str | None = None
    # Pods under an interruption notice, and the distinct notices.
    interrupted: int = 0
    notices: tuple[Notice, ...] = ()


@dataclass(frozen=True)
class RegionObservation:
    name: str
    spot: PoolObservation
    on_demand: PoolObservation


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post on the DeepSeekDeployment."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class RegionDecision:
    status: SpotRegionStatus
    events: tuple[Event, ...] = ()
    new_interruptions: tuple[SpotInterruption, ...] = ()
    # A notice or shortage whose replacement became ready now: (seconds it took, cause).
    replaced: tuple[float, str] | None = None
    # A replica moved back to its own capacity type: the pool that shrinks by one.
    stepped_down: CapacityPool | None = None
    # Seconds until one of this region's timers expires (None: none runs).
    wake_in: float | None = None


@dataclass(frozen=True)
class Decision:
    status: SpotStatus
    conditions: tuple[Condition, ...]
    regions: tuple[RegionDecision, ...] = field(default=())

    @property
    def events(self) -> tuple[Event, ...]:
        return tuple(event for region in self.regions for event in region.events)

    @property
    def wake_in(self) -> float | None:
        times = [region.wake_in for region in self.regions if region.wake_in is not None]
        return min(times) if times else None


# ------------------------------------------------------------------------------------------ helpers


def _step(seconds: float) -> int:
    """How coarse `duration` is at this length: status is rewritten each time the text changes, so it
    moves by 10 s in the first minute, by a minute up to 10 minutes, then by 5 minutes."""
    return 10 if seconds < 60 else 60 if seconds < 600 else 300


def duration(seconds: float) -> str:
    """A coarse duration for messages: "40s", "2m", "15m", "1h5m"."""
    whole = max(0, int(seconds))
    whole -= whole % _step(whole)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m"
    hours, minutes = divmod(whole // 60, 60)
    return f"{hours}h{minutes}m" if minutes else f"{hours}h"


def setting(seconds: int) -> str:
    """A configured length, exactly: "5s", "2m", "1m30s", "1h"."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = "".join(f"{value}{unit}" for value, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if value)
    return text or "0s"


def _next_text_change(seconds: float) -> float:
    """Seconds until `duration(seconds)` reads differently."""
    step = _step(seconds)
    return step - (seconds % step)


def _replicas(count: int, kind: str = "replica") -> str:
    return f"{count} {kind}{'' if count == 1 else 's'}"


def _pool(previous: SpotRegionStatus | None, pool: CapacityPool) -> SpotPoolStatus | None:
    if previous is None:
        return None
    return next((p for p in previous.pools if p.name is pool), None)


class _Timers:
    """Collects the times at which some timer of a region expires."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.times: list[float] = []

    def at(self, when: datetime | None) -> None:
        if when is not None and when > self.now:
            self.times.append((when - self.now).total_seconds())

    def after(self, seconds: float) -> None:
        self.times.append(max(0.1, seconds))

    @property
    def earliest(self) -> float | None:
        return min(self.times) if self.times else None


def _episodes(records: Sequence[SpotInterruption], group: int) -> int:
    """Interruptions, counting notices less than `group` seconds apart as one."""
    count, last = 0, None
    for time in sorted(r.time for r in records):
        if last is None or (time - last).total_seconds() >= group:
            count += 1
        last = time
    return count


def _at_target_since(
    pool: PoolObservation, previous: SpotPoolStatus | None, now: datetime, blocked: bool = False
) -> datetime | None:
    at_target = not blocked and pool.ready >= pool.target and pool.interrupted == 0 and pool.pending == 0
    if not at_target:
        return None
    return previous.ready_at_target_since if previous and previous.ready_at_target_since else now


def _shortage_began(pool: PoolObservation, previous: SpotPoolStatus | None) -> datetime | None:
    """The latest shortage's start: kept from before unless a new one began."""
    before = previous.last_shortage_time if previous else None
    if pool.pending and (previous is None or previous.shortage_since is None):
        return pool.pending_since
    return before


# ------------------------------------------------------------------------------------------ a region


def decide_region(
    policy: FallbackPolicy,
    observation: RegionObservation,
    previous: SpotRegionStatus | None,
    now: datetime,
) -> RegionDecision:
    region = observation.name
    spot, on_demand = observation.spot, observation.on_demand
    previous_spot = _pool(previous, CapacityPool.SPOT)
    previous_on_demand = _pool(previous, CapacityPool.ON_DEMAND)
    cap = policy.max_replicas if policy.max_replicas is not None else max(spot.target, on_demand.target)
    window = timedelta(seconds=policy.cooldown_window)
    timers = _Timers(now)
    events: list[Event] = []

    # --- interruptions: a node (or pod) under a notice counts once while the notice lasts; a node of the
    # same name that comes back and is interrupted again counts again
    records = list(previous.interruptions) if previous else []
    ongoing = {record.node for record in records if record.ongoing}
    doomed = {notice.node for notice in spot.notices}
    new = tuple(
        SpotInterruption(node=node, signal=signal, time=now, ongoing=True)
        for node, signal in {n.node: n.signal for n in spot.notices if n.node not in ongoing}.items()
    )
    records = [
        r.model_copy(update={"ongoing": r.ongoing and r.node in doomed})
        for r in records
        if r.node in doomed or now - r.time < window
    ] + list(new)
    records = records[-MAX_INTERRUPTION_RECORDS:]
    last_interruption = now if new else (previous_spot.last_interruption_time if previous_spot else None)
    if new and policy.enabled:
        nodes = ", ".join(sorted({f"{r.node} ({r.signal})" for r in new}))
        events.append(
            Event(
                "Warning",
                "SpotInterrupted",
                f"{region}: interruption notice for {nodes}: "
                f"{_replicas(spot.interrupted, 'spot replica')} replaced on on-demand nodes now",
            )
        )

    # --- flap damping: too many interruptions within the window stop the use of spot for a while
    suppressed_since = previous.suppressed_since if previous else None
    suppressed_until = previous.suppressed_until if previous else None
    suppressions = previous.suppressions if previous else 0
    if suppressed_until is not None and now >= suppressed_until:
        events.append(Event("Normal", "SpotCooldownOver", f"{region}: trying spot again after its cooldown"))
        suppressed_until = None
    counted = _episodes(
        [
            r
            for r in records
            if now - r.time < window and (suppressed_since is None or r.time > suppressed_since)
        ],
        policy.group,
    )
    if (
        policy.enabled
        and suppressed_until is None
        and spot.target > 0
        and counted >= policy.cooldown_interruptions
    ):
        length = policy.cooldown_for(suppressions)
        suppressed_since, suppressed_until = now, now + timedelta(seconds=length)
        suppressions += 1
        events.append(
            Event(
                "Warning",
                "SpotSuppressed",
                f"{region}: {counted} spot interruptions within {setting(policy.cooldown_window)}: "
                f"spot is not used there for {setting(length)}",
            )
        )
    suppressed = suppressed_until is not None
    timers.at(suppressed_until)

    # --- spot shortage: a spot pod Pending for capacity longer than the timeout
    timeout = timedelta(seconds=policy.pending_timeout)
    spot_short_for = (
        (now - spot.pending_since).total_seconds() if spot.pending and spot.pending_since else 0.0
    )
    spot_timed_out = bool(spot.pending) and spot_short_for >= policy.pending_timeout
    if spot.pending and spot.pending_since and not spot_timed_out:
        timers.at(spot.pending_since + timeout)

    # --- on-demand fallback
    previous_fallback = previous.fallback_replicas if previous else 0
    fallback, stepped_down = 0, None
    last_step = previous.last_step_time if previous else None
    spot_ready_since = _at_target_since(spot, previous_spot, now, blocked=suppressed)
    if policy.enabled:
        need = spot.target if suppressed else max(0, spot.target - spot.ready)
        need = min(need, cap)
        triggered = suppressed or spot.interrupted > 0 or bool(new) or spot_timed_out
        fallback = min(previous_fallback, spot.target, cap)
        if triggered and need > fallback:
            fallback = need
        elif fallback > 0 and spot_ready_since is not None:
            quiet_over = spot_ready_since + timedelta(seconds=policy.quiet_period)
            step_over = last_step + timedelta(seconds=policy.step) if last_step else now
            if now >= quiet_over and now >= step_over:
                fallback -= 1
                last_step, stepped_down = now, CapacityPool.ON_DEMAND
                events.append(
                    Event(
                        "Normal",
                        "SpotMovedBack",
                        f"{region}: spot has been ready at its target for {setting(policy.quiet_period)} or "
                        f"more: one replica moved back to spot ({_replicas(fallback, 'on-demand fallback replica')} left)",
                    )
                )
            if fallback > 0:
                timers.at(max(quiet_over, last_step + timedelta(seconds=policy.step) if last_step else now))
        if fallback > previous_fallback:
            why = _spot_why(spot, suppressed, new)
            events.append(
                Event(
                    "Warning",
                    "SpotFallback",
                    f"{region}: {_replicas(fallback, 'on-demand replica')} in place of spot "
                    f"(was {previous_fallback}): {why}",
                )
            )

    # While spot is stopped, the spot replicas leave once their on-demand stand-ins are ready (make
    # before break); once withheld they stay withheld until the stop is over.
    withheld = 0
    if suppressed and fallback > 0:
        previous_withheld = previous.withheld_replicas if previous else 0
        if on_demand.ready >= on_demand.target + fallback:
            withheld = min(fallback, spot.target)
        else:
            withheld = min(previous_withheld, fallback)

    # --- the reverse, opt-in: spot in place of on-demand replicas Pending for capacity
    od_short_for = (
        (now - on_demand.pending_since).total_seconds()
        if on_demand.pending and on_demand.pending_since
        else 0.0
    )
    od_timed_out = bool(on_demand.pending) and od_short_for >= policy.pending_timeout
    previous_spill = previous.spill_replicas if previous else 0
    spill = 0
    od_ready_since = _at_target_since(on_demand, previous_on_demand, now)
    if policy.enabled and policy.spill_to_spot and fallback == 0 and not suppressed:
        if on_demand.pending and on_demand.pending_since and not od_timed_out:
            timers.at(on_demand.pending_since + timeout)
        need_spot = min(max(0, on_demand.target - on_demand.ready), cap)
        spill = min(previous_spill, on_demand.target, cap)
        if od_timed_out and need_spot > spill:
            spill = need_spot
            events.append(
                Event(
                    "Warning",
                    "SpotSpill",
                    f"{region}: {_replicas(spill, 'spot replica')} in place of on-demand (was {previous_spill}): "
                    f"{_pending_text(on_demand, 'on-demand', now)}",
                )
            )
        elif spill > 0 and od_ready_since is not None:
            quiet_over = od_ready_since + timedelta(seconds=policy.quiet_period)
            step_over = last_step + timedelta(seconds=policy.step) if last_step else now
            if now >= quiet_over and now >= step_over:
                spill -= 1
                last_step, stepped_down = now, CapacityPool.SPOT
                events.append(
                    Event(
                        "Normal",
                        "OnDemandMovedBack",
                        f"{region}: on-demand has been ready at its target for {setting(policy.quiet_period)} or "
                        f"more: one replica moved back to on-demand ({_replicas(spill, 'spilled spot replica')} left)",
                    )
                )
            if spill > 0:
                timers.at(max(quiet_over, last_step + timedelta(seconds=policy.step) if last_step else now))

    # --- the flap damping level decays once the region was steady, without interruption, for a window
    if (
        not suppressed
        and fallback == 0
        and suppressions
        and (last_interruption is None or now - last_interruption >= window)
    ):
        suppressions = 0

    # --- how long replacements take: from the notice (or the start of the shortage) to ready again
    replacement_since = previous.replacement_since if previous else None
    replacement_cause = previous.replacement_cause if previous else None
    replaced: tuple[float, str] | None = None
    if replacement_since is None and policy.enabled:
        if new:
            replacement_since, replacement_cause = now, INTERRUPTION
        elif fallback > previous_fallback and spot.pending_since is not None:
            replacement_since, replacement_cause = spot.pending_since, SHORTAGE
        elif spill > previous_spill and on_demand.pending_since is not None:
            replacement_since, replacement_cause = on_demand.pending_since, ON_DEMAND_SHORTAGE
    if replacement_since is not None and spot.ready + on_demand.ready >= spot.target + on_demand.target:
        replaced = ((now - replacement_since).total_seconds(), replacement_cause or INTERRUPTION)
        replacement_since, replacement_cause = None, None

    # --- phase, reason, message
    phase, reason, message = _describe(
        policy,
        region,
        spot,
        on_demand,
        fallback,
        spill,
        suppressed_until,
        spot_ready_since,
        previous,
        new,
        now,
    )
    # The message says for how long: look again when its text changes.
    if spot.pending or on_demand.pending:
        timers.after(_next_text_change(max(spot_short_for, od_short_for)))
    elif phase is SpotPhase.RECOVERING and spot_ready_since is not None:
        timers.after(_next_text_change((now - spot_ready_since).total_seconds()))

    status = SpotRegionStatus(
        name=region,
        phase=phase,
        reason=reason,
        message=message,
        fallback_replicas=fallback,
        spill_replicas=spill,
        withheld_replicas=withheld,
        pools=(
            SpotPoolStatus(
                name=CapacityPool.ON_DEMAND,
                target_replicas=on_demand.target,
                ready_replicas=on_demand.ready,
                pending_replicas=on_demand.pending,
                interrupted_replicas=on_demand.interrupted,
                shortage_since=on_demand.pending_since if on_demand.pending else None,
                last_shortage_time=_shortage_began(on_demand, previous_on_demand),
                ready_at_target_since=od_ready_since,
            ),
            SpotPoolStatus(
                name=CapacityPool.SPOT,
                target_replicas=spot.target,
                ready_replicas=spot.ready,
                pending_replicas=spot.pending,
                interrupted_replicas=spot.interrupted,
                shortage_since=spot.pending_since if spot.pending else None,
                last_shortage_time=_shortage_began(spot, previous_spot),
                last_interruption_time=last_interruption,
                ready_at_target_since=spot_ready_since,
            ),
        ),
        last_step_time=last_step,
        interruptions=tuple(records),
        suppressed_since=suppressed_since,
        suppressed_until=suppressed_until,
        suppressions=suppressions,
        replacement_since=replacement_since,
        replacement_cause=replacement_cause,
    )
    return RegionDecision(
        status=status,
        events=tuple(events),
        new_interruptions=new,
        replaced=replaced,
        stepped_down=stepped_down,
        wake_in=timers.earliest,
    )


def _pending_text(pool: PoolObservation, kind: str, now: datetime) -> str:
    """ "2 spot pods Pending: Insufficient nvidia.com/gpu on spot nodes for 2m" """
    since = duration((now - pool.pending_since).total_seconds()) if pool.pending_since else "a moment"
    reason = pool.pending_reason or f"no {kind} node can take them"
    return f"{_replicas(pool.pending, f'{kind} pod')} Pending: {reason} for {since}"


def _spot_why(spot: PoolObservation, suppressed: bool, new: Sequence[SpotInterruption]) -> str:
    if suppressed:
        return "spot is interrupted too often there (cooldown)"
    if spot.notices or new:
        signals = sorted(
            {f"{n.node} ({n.signal})" for n in spot.notices} | {f"{r.node} ({r.signal})" for r in new}
        )
        return "interruption notice for " + ", ".join(signals)
    if spot.pending:
        return "spot pods Pending for capacity: " + (spot.pending_reason or "no spot node can take them")
    return f"{spot.ready}/{spot.target} spot replicas ready"


def _describe(
    policy: FallbackPolicy,
    region: str,
    spot: PoolObservation,
    on_demand: PoolObservation,
    fallback: int,
    spill: int,
    suppressed_until: datetime | None,
    spot_ready_since: datetime | None,
    previous: SpotRegionStatus | None,
    new: Sequence[SpotInterruption],
    now: datetime,
) -> tuple[SpotPhase, str, str]:
    spot_state = f"{spot.ready}/{spot.target} spot replicas ready"
    if not policy.enabled:
        detail = _pending_text(spot, "spot", now) if spot.pending else spot_state
        return SpotPhase.FALLBACK_DISABLED, "FallbackDisabled", f"{detail} (spot.fallback.enabled is false)"
    stand_ins = _replicas(fallback, "on-demand replica")
    if suppressed_until is not None:
        until = suppressed_until.isoformat().replace("+00:00", "Z")
        return (
            SpotPhase.SUPPRESSED,
            "SpotSuppressed",
            f"spot interrupted too often: not used until {until}; {stand_ins} in place of spot",
        )
    if fallback > 0 and spot_ready_since is not None:
        return (
            SpotPhase.RECOVERING,
            "SpotRecovered",
            f"{spot_state} for {duration((now - spot_ready_since).total_seconds())}: {stand_ins} in place of "
            f"spot move back one per {setting(policy.step)} after {setting(policy.quiet_period)}",
        )
    if fallback > 0:
        if spot.notices or new:
            reason = "SpotInterrupted"
        elif spot.pending:
            reason = "SpotShortage"
        elif previous is not None and previous.reason in ("SpotInterrupted", "SpotShortage"):
            reason = previous.reason  # the replacement spot pods are starting
        else:
            reason = "SpotShortage"
        detail = _pending_text(spot, "spot", now) if spot.pending else _spot_why(spot, False, new)
        return SpotPhase.FALLEN_BACK, reason, f"{stand_ins} in place of spot: {detail}"
    if spot.pending:
        return (
            SpotPhase.SHORTAGE,
            "SpotPending",
            f"{_pending_text(spot, 'spot', now)}; on-demand fallback after {setting(policy.pending_timeout)}",
        )
    if spill > 0:
        detail = (
            _pending_text(on_demand, "on-demand", now)
            if on_demand.pending
            else f"{on_demand.ready}/{on_demand.target} on-demand replicas ready"
        )
        return (
            SpotPhase.SPILLED,
            "OnDemandShortage",
            f"{_replicas(spill, 'spot replica')} in place of on-demand: {detail}",
        )
    if on_demand.pending:
        then = (
            f"spot in place of on-demand after {setting(policy.pending_timeout)}"
            if policy.spill_to_spot
            else "spot.fallback.spillToSpot is off"
        )
        return (
            SpotPhase.ON_DEMAND_SHORTAGE,
            "OnDemandPending",
            f"{_pending_text(on_demand, 'on-demand', now)}; {then}",
        )
    return SpotPhase.STEADY, "SpotAtTarget", spot_state


# ------------------------------------------------------------------------------------------ every region


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


def decide(
    policy: FallbackPolicy,
    observations: Sequence[RegionObservation],
    previous: SpotStatus | None,
    previous_conditions: Sequence[Condition],
    generation: int | None,
    now: datetime,
) -> Decision:
    """Every region's decision (in the order given), the totals and the two conditions."""
    before = {region.name: region for region in previous.regions} if previous else {}
    regions = tuple(decide_region(policy, o, before.get(o.name), now) for o in observations)
    statuses = [r.status for r in regions]
    status = SpotStatus(
        fallback_replicas=sum(s.fallback_replicas for s in statuses),
        spill_replicas=sum(s.spill_replicas for s in statuses),
        regions=tuple(statuses),
    )
    conditions_before = {c.type: c for c in previous_conditions}

    short = [
        s
        for s in statuses
        if s.phase not in (SpotPhase.STEADY, SpotPhase.ON_DEMAND_SHORTAGE, SpotPhase.SPILLED)
    ]
    short = [
        s for s in short if _pool_of(s, CapacityPool.SPOT).target_replicas > 0 or s.fallback_replicas > 0
    ]
    if not short:
        available = (ConditionStatus.TRUE, "SpotAtTarget", "every region's spot replicas are ready")
    else:
        first = short[0]
        reason = "SpotShortage" if first.reason in ("SpotPending", "FallbackDisabled") else first.reason
        available = (
            ConditionStatus.FALSE,
            reason,
            "; ".join(f"{s.name}: {_spot_summary(s)}" for s in short),
        )

    active = [s for s in statuses if s.fallback_replicas or s.spill_replicas]
    if active:
        fallback = (
            ConditionStatus.TRUE,
            active[0].reason,
            "; ".join(f"{s.name}: {s.message}" for s in active),
        )
    elif not policy.enabled:
        fallback = (ConditionStatus.FALSE, "FallbackDisabled", "spot.fallback.enabled is false")
    else:
        fallback = (
            ConditionStatus.FALSE,
            "NoFallback",
            "every replica runs on its own capacity type",
        )
    conditions = (
        _condition(ConditionType.SPOT_AVAILABLE, *available, generation, conditions_before, now),
        _condition(ConditionType.FALLBACK_ACTIVE, *fallback, generation, conditions_before, now),
    )
    return Decision(status=status, conditions=conditions, regions=regions)


def _pool_of(status: SpotRegionStatus, pool: CapacityPool) -> SpotPoolStatus:
    return next(p for p in status.pools if p.name is pool)


def _spot_summary(status: SpotRegionStatus) -> str:
    spot = _pool_of(status, CapacityPool.SPOT)
    return f"{spot.ready_replicas}/{spot.target_replicas} spot replicas ready ({status.message})"
