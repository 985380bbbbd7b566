"""The failover decision: a pure state machine from the previous `status.failover`, this check of every
region, the spec and the time (`now` is an argument: no clock, no I/O) to the next `status.failover`.

Region health (per region, every check):
- Pass: one more success in a row (and the failure streak ends); Unknown -> Healthy and
  Unhealthy -> Healthy after `successThreshold` in a row.
- Fail: one more failure in a row (and the success streak ends); Healthy -> Unhealthy after
  `failureThreshold` in a row. A region that was never healthy stays Unknown: a deployment whose pods
  are still loading their model is not failed over from.
- Unknown (no signal could be evaluated): ends both streaks, changes no state. Missing data never
  counts as a failure nor as health.

Routing (the region taking the traffic, `activeRegion`):
- its health Unhealthy -> fail over to the first region in spec order that is Healthy and passed this
  check (its engines probed first: `Decision.verify`), unless a switch happened less than
  `minActiveSeconds` ago or `maxSwitchesPerHour` stopped switching; none -> NoHealthyTarget: stay.
- away from the spec's Active region with `failback: Auto`: go back once it is Healthy, passed this
  check and `minActiveSeconds` have passed. `Manual`: stay until a person changes the spec.
- a switch (make before break): the target is raised to spec.replicas (`pendingSwitch`, read by the
  placement), and the traffic moves once the target has spec.replicas ready, at once when the region
  left serves nothing, or after `switchTimeoutSeconds` with at least one ready replica.
  The region left serves nothing when no replica is left that can serve or when most of its requests
  fail (ErrorRate measured at 50% or more). The switch is dropped if the target fails a check, or
  (failover) the region left is healthy again.
- a person making another region Active in the spec resets the routing to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from deepseek_operator.api import (
    FAILOVER_ACKNOWLEDGED_ANNOTATION,
    ConditionStatus,
    ConditionType,
    DeepSeekDeploymentSpec,
    FailbackMode,
    FailoverPhase,
    FailoverRecord,
    FailoverSignal,
    FailoverStatus,
    RegionHealth,
    RegionHealthState,
)
from deepseek_operator.failover.checks import Outcome, RegionCheck

FAILBACK_REASON = "Failback"
SWITCH_BUDGET_WINDOW = timedelta(hours=1)
# The order in which a failing signal is named as the reason of a failover (hard evidence first).
REASON_ORDER = (
    FailoverSignal.NODES_NOT_READY,
    FailoverSignal.PODS_NOT_READY,
    FailoverSignal.ENGINE_UNHEALTHY,
    FailoverSignal.ERROR_RATE,
    FailoverSignal.LATENCY,
    FailoverSignal.TIME_TO_FIRST_TOKEN,
)
SWITCH_PHASES = (FailoverPhase.FAILING_OVER, FailoverPhase.FAILING_BACK)
BLOCKED_BY_MINIMUM_TIME = "{region} is unhealthy, but the last switch was less than"


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post on the DeepSeekDeployment."""

    type: str  # Normal or Warning
    reason: str
    message: str


@dataclass(frozen=True)
class ConditionValue:
    type: ConditionType
    status: ConditionStatus
    reason: str
    message: str


@dataclass(frozen=True)
class Decision:
    status: FailoverStatus
    events: tuple[Event, ...] = ()
    conditions: tuple[ConditionValue, ...] = ()
    # Regions whose engines must be probed before a switch to them can be decided: call `step` again
    # with their engine results in the checks and the regions in `verified`.
    verify: tuple[str, ...] = ()


def _health_message(check: RegionCheck | None) -> str:
    return check.summary() if check is not None else "not checked"


def update_health(
    name: str,
    previous: RegionHealth | None,
    check: RegionCheck | None,
    spec: DeepSeekDeploymentSpec,
    now: datetime,
) -> RegionHealth:
    """The region's health after one more check (see the module's docstring)."""
    failover = spec.failover
    state = previous.state if previous is not None else RegionHealthState.UNKNOWN
    failures = previous.consecutive_failures if previous is not None else 0
    successes = previous.consecutive_successes if previous is not None else 0
    outcome = check.outcome if check is not None else Outcome.UNKNOWN
    new_state = state
    if outcome is Outcome.PASS:
        successes, failures = min(successes + 1, failover.success_threshold), 0
        if state is not RegionHealthState.HEALTHY and successes >= failover.success_threshold:
            new_state = RegionHealthState.HEALTHY
    elif outcome is Outcome.FAIL:
        successes, failures = 0, min(failures + 1, failover.failure_threshold)
        if state is RegionHealthState.HEALTHY and failures >= failover.failure_threshold:
            new_state = RegionHealthState.UNHEALTHY
    else:
        successes = failures = 0
    changed = previous is None or new_state is not state
    return RegionHealth(
        name=name,
        state=new_state,
        consecutive_failures=failures,
        consecutive_successes=successes,
        failing_signals=check.signals(Outcome.FAIL) if check is not None else (),
        unknown_signals=check.signals(Outcome.UNKNOWN) if check is not None else (),
        message=_health_message(check)[:4096],
        last_probe_time=now,
        last_transition_time=now if changed else (previous.last_transition_time if previous else now),
    )


def _reason(check: RegionCheck | None) -> tuple[str, tuple[FailoverSignal, ...]]:
    failing = check.signals(Outcome.FAIL) if check is not None else ()
    ordered = tuple(signal for signal in REASON_ORDER if signal in failing)
    return (ordered[0].value if ordered else "Unhealthy"), ordered


def _since(now: datetime, then: datetime | None) -> float:
    return (now - then).total_seconds() if then is not None else float("inf")


def _seconds(value: float) -> str:
    return f"{value:.0f}s" if value >= 10 else f"{value:.1f}s"


@dataclass
class _Machine:
    """The working state of one step; `step` builds it, runs it and returns its outcome."""

    spec: DeepSeekDeploymentSpec
    checks: Mapping[str, RegionCheck]
    now: datetime
    verified: frozenset[str]
    health: dict[str, RegionHealth]
    home: str
    active: str
    pending: FailoverRecord | None
    failing_since: datetime | None
    active_since: datetime | None
    count: int
    recent: tuple[datetime, ...]
    held_since: datetime | None
    last: FailoverRecord | None
    events: list[Event] = field(default_factory=list)
    verify: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [region.name for region in self.spec.regions]

    def check(self, region: str) -> RegionCheck | None:
        return self.checks.get(region)

    def outcome(self, region: str) -> Outcome:
        check = self.check(region)
        return check.outcome if check is not None else Outcome.UNKNOWN

    def engine_unverified(self, region: str) -> bool:
        """The engine signal is on, and this region's engines were not probed in this check."""
        if FailoverSignal.ENGINE_UNHEALTHY not in self.spec.failover.signals or region in self.verified:
            return False
        check = self.check(region)
        result = check.result(FailoverSignal.ENGINE_UNHEALTHY) if check is not None else None
        return result is not None and result.outcome is Outcome.SKIPPED

    def eligible(self, region: str) -> bool:
        """A region that may take the traffic now: Healthy and passed this check."""
        return self.health[region].state is RegionHealthState.HEALTHY and self.outcome(region) is Outcome.PASS

    def candidates(self, exclude: str) -> list[str]:
        return [name for name in self.names if name != exclude and self.eligible(name)]

    def first_verified(self, regions: Iterable[str]) -> str | None:
        """The first region whose engines are verified; asks for the probes it needs to get there."""
        for region in regions:
            if self.engine_unverified(region):
                self.verify.append(region)
                return None
            return region
        return None

    def minimum_time_left(self) -> float:
        return self.spec.failover.min_active_seconds - _since(self.now, self.active_since)

    # ---------------------------------------------------------------------------------------- switching

    def decide(
        self, target: str, reason: str, signals: tuple[FailoverSignal, ...], detected: datetime
    ) -> None:
        back = reason == FAILBACK_REASON
        self.pending = FailoverRecord(
            from_region=self.active,
            to_region=target,
            reason=reason,
            signals=signals,
            message=(
                f"back to {target}: healthy for {self.spec.failover.success_threshold} checks"
                if back
                else f"{self.active} failed {self.spec.failover.failure_threshold} checks in a row: "
                f"{self.health[self.active].message}"
            )[:4096],
            detected_at=detected,
            decided_at=self.now,
        )
        self.events.append(
            Event(
                "Normal" if back else "Warning",
                "FailingBack" if back else "FailingOver",
                f"{'failing back' if back else 'failing over'} from {self.active} to {target} "
                f"({reason}): raising {target} to {self.spec.replicas} replicas before moving the traffic",
            )
        )

    def flip_reason(self) -> str | None:
        """Why the traffic may move to the pending target now, or None to keep waiting."""
        assert self.pending is not None
        target = self.check(self.pending.to_region)
        ready = target.ready_replicas if target is not None else 0
        if ready >= self.spec.replicas:
            return f"{self.pending.to_region} has {ready} of {self.spec.replicas} replicas ready"
        left = self.check(self.active)
        down = left.down if left is not None else None
        if down is not None:
            return f"{self.active} serves nothing: {down}"
        waited = _since(self.now, self.pending.decided_at)
        if ready >= 1 and waited >= self.spec.failover.switch_timeout_seconds:
            return f"switchTimeoutSeconds ({self.spec.failover.switch_timeout_seconds}) passed with {ready} ready"
        return None

    def flip(self, why: str) -> None:
        assert self.pending is not None
        record = self.pending
        self.last = FailoverRecord(
            from_region=record.from_region,
            to_region=record.to_region,
            reason=record.reason,
            signals=record.signals,
            message=f"{record.message}; moved: {why}"[:4096],
            detected_at=record.detected_at,
            decided_at=record.decided_at,
            # Set by the controller once the reconcile has applied the front Service.
            switched_at=None,
        )
        self.active = record.to_region
        self.pending = None
        self.failing_since = None
        self.active_since = self.now
        self.count += 1
        self.recent = (*self.recent, self.now)
        back = record.reason == FAILBACK_REASON
        self.events.append(
            Event(
                "Normal" if back else "Warning",
                "FailedBack" if back else "FailedOver",
                f"traffic moved from {record.from_region} to {record.to_region}: {why}",
            )
        )
        if len(self.recent) >= self.spec.failover.max_switches_per_hour:
            self.held_since = self.now
            self.events.append(Event("Warning", "FailoverWaitingForUser", self.held_message()))

    def held_message(self) -> str:
        return (
            f"{len(self.recent)} switches within an hour (failover.maxSwitchesPerHour "
            f"{self.spec.failover.max_switches_per_hour}): automatic switching stopped until a person "
            f"acknowledges them with `kubectl annotate dsd <name> {FAILOVER_ACKNOWLEDGED_ANNOTATION}="
            f"{self.count} --overwrite`"
        )

    def abort(self, why: str) -> None:
        assert self.pending is not None
        self.events.append(
            Event("Normal", "SwitchAborted", f"not moving the traffic to {self.pending.to_region}: {why}")
        )
        self.pending = None

    # ---------------------------------------------------------------------------------------- the step

    def run(self) -> tuple[FailoverPhase, str]:
        active_check = self.check(self.active)
        active_health = self.health[self.active]
        if self.outcome(self.active) is Outcome.FAIL:
            self.failing_since = self.failing_since or self.now
        else:
            self.failing_since = None

        if self.pending is not None:
            phase_message = self.continue_switch(active_health)
            if phase_message is not None:
                return phase_message

        if self.held_since is not None:
            return FailoverPhase.WAITING_FOR_USER, self.held_message()

        if active_health.state is RegionHealthState.UNHEALTHY:
            return self.fail_over(active_check)
        if self.active != self.home:
            return self.stay_or_fail_back()
        if active_health.state is RegionHealthState.UNKNOWN:
            return (
                FailoverPhase.PENDING,
                f"waiting for {self.active}'s first healthy check "
                f"({active_health.consecutive_successes} of {self.spec.failover.success_threshold} passed)",
            )
        if self.outcome(self.active) is Outcome.FAIL:
            return (
                FailoverPhase.DEGRADED,
                f"{self.active} failed {active_health.consecutive_failures} of "
                f"{self.spec.failover.failure_threshold} checks: {active_health.message}",
            )
        return FailoverPhase.HEALTHY, f"{self.active} is healthy"

    def continue_switch(self, active_health: RegionHealth) -> tuple[FailoverPhase, str] | None:
        """The switch in flight: move the traffic, keep waiting, or drop it (then None)."""
        assert self.pending is not None
        target = self.pending.to_region
        back = self.pending.reason == FAILBACK_REASON
        if self.outcome(target) is Outcome.FAIL:
            self.abort(f"{target} failed a check: {self.health[target].message}")
            return None
        if not back and active_health.state is RegionHealthState.HEALTHY:
            self.abort(f"{self.active} is healthy again")
            return None
        why = self.flip_reason()
        if why is not None:
            self.flip(why)
            return self.settled()
        check = self.check(target)
        ready = check.ready_replicas if check is not None else 0
        timeout = self.spec.failover.switch_timeout_seconds - _since(self.now, self.pending.decided_at)
        return (
            FailoverPhase.FAILING_BACK if back else FailoverPhase.FAILING_OVER,
            f"{'failing back' if back else 'failing over'} from {self.active} to {target}: {ready} of "
            f"{self.spec.replicas} replicas ready; the traffic moves at {self.spec.replicas}"
            + (
                f", or in {_seconds(max(0.0, timeout))} with one ready"
                if timeout > 0
                else " or with one ready"
            ),
        )

    def settled(self) -> tuple[FailoverPhase, str]:
        """Right after the traffic moved."""
        if self.held_since is not None:
            return FailoverPhase.WAITING_FOR_USER, self.held_message()
        if self.active == self.home:
            return FailoverPhase.HEALTHY, f"back in {self.active}"
        return FailoverPhase.FAILED_OVER, self.failed_over_message()

    def failed_over_message(self) -> str:
        if self.spec.failover.failback is FailbackMode.AUTO:
            home = self.health[self.home]
            return (
                f"the traffic is in {self.active}; back to {self.home} (failback Auto) once it is healthy "
                f"({home.state.value}, {home.consecutive_successes} of {self.spec.failover.success_threshold} "
                f"checks passed) and {self.spec.failover.min_active_seconds}s after the last switch"
            )
        return (
            f"the traffic stays in {self.active} (failback Manual) until a person changes the spec: make "
            f"{self.active} the Active region in spec.regions to keep it there, or set "
            f"spec.failover.failback to Auto to return to {self.home} once it is healthy"
        )

    def fail_over(self, active_check: RegionCheck | None) -> tuple[FailoverPhase, str]:
        left = self.minimum_time_left()
        if left > 0:
            return (
                FailoverPhase.DEGRADED,
                BLOCKED_BY_MINIMUM_TIME.format(region=self.active) + " "
                f"{self.spec.failover.min_active_seconds}s ago (minActiveSeconds): no switch for "
                f"{_seconds(left)}; {self.health[self.active].message}",
            )
        candidates = self.candidates(self.active)
        target = self.first_verified(candidates)
        if self.verify:
            return FailoverPhase.DEGRADED, "verifying the engines of the failover target"
        if target is None:
            others = ", ".join(
                f"{name} {self.health[name].state.value}" for name in self.names if name != self.active
            )
            return (
                FailoverPhase.NO_HEALTHY_TARGET,
                f"{self.active} is unhealthy and no other region is healthy ({others}): the traffic stays "
                f"in {self.active}; {self.health[self.active].message}",
            )
        reason, signals = _reason(active_check)
        self.decide(target, reason, signals, self.failing_since or self.now)
        outcome = self.continue_switch(self.health[self.active])
        assert outcome is not None  # the target just passed and the active region is unhealthy
        return outcome

    def stay_or_fail_back(self) -> tuple[FailoverPhase, str]:
        failover = self.spec.failover
        if (
            failover.failback is FailbackMode.AUTO
            and self.eligible(self.home)
            and self.minimum_time_left() <= 0
        ):
            target = self.first_verified([self.home])
            if self.verify:
                return FailoverPhase.FAILED_OVER, f"verifying the engines of {self.home} before failing back"
            if target is not None:
                self.decide(target, FAILBACK_REASON, (), self.now)
                outcome = self.continue_switch(self.health[self.active])
                assert outcome is not None
                return outcome
        if self.outcome(self.active) is Outcome.FAIL:
            health = self.health[self.active]
            return (
                FailoverPhase.DEGRADED,
                f"{self.active} failed {health.consecutive_failures} of {failover.failure_threshold} "
                f"checks: {health.message}; {self.failed_over_message()}",
            )
        return FailoverPhase.FAILED_OVER, self.failed_over_message()


def _prune(recent: Iterable[datetime], now: datetime, held: bool) -> tuple[datetime, ...]:
    """Switches within the budget's hour (all of them while switching is held for a person)."""
    return tuple(time for time in recent if held or now - time < SWITCH_BUDGET_WINDOW)


def _disabled(spec: DeepSeekDeploymentSpec, previous: FailoverStatus | None, home: str) -> Decision:
    one_region = len(spec.regions) < 2
    message = (
        f"one region ({home}): nowhere to fail over to"
        if one_region
        else f"spec.failover.enabled is false: the traffic stays in {home}"
    )
    return Decision(
        status=FailoverStatus(
            phase=FailoverPhase.DISABLED,
            message=message,
            home_region=home,
            active_region=home,
            failover_count=previous.failover_count if previous is not None else 0,
            last_failover=previous.last_failover if previous is not None else None,
        ),
        conditions=(
            ConditionValue(
                ConditionType.FAILOVER_READY,
                ConditionStatus.FALSE,
                "NoStandbyRegion" if one_region else "FailoverDisabled",
                message,
            ),
            ConditionValue(
                ConditionType.SIGNALS_AVAILABLE,
                ConditionStatus.UNKNOWN,
                "NotChecked",
                "no health checks: " + message,
            ),
        ),
    )


def step(
    spec: DeepSeekDeploymentSpec,
    previous: FailoverStatus | None,
    checks: Mapping[str, RegionCheck],
    now: datetime,
    acknowledged: int | None = None,
    verified: frozenset[str] = frozenset(),
) -> Decision:
    """One decision. `previous` is status.failover as last written (None at first); `checks` has one
    check per region of the spec; `acknowledged` is the value of the acknowledgment annotation.

    When `Decision.verify` names regions, nothing was decided: probe their engines, put the results in
    their checks and call again with them in `verified`.
    """
    home = spec.active_region_name
    if not spec.failover.enabled or len(spec.regions) < 2:
        return _disabled(spec, previous, home)
    names = [region.name for region in spec.regions]
    events: list[Event] = []
    routed = previous is not None and previous.home_region == home and previous.active_region in names
    if previous is not None and previous.phase is not FailoverPhase.DISABLED and not routed:
        if previous.active_region == home:
            events.append(
                Event(
                    "Normal",
                    "FailoverAdopted",
                    f"spec.regions makes {home}, where the traffic is, the Active region",
                )
            )
        else:
            events.append(
                Event(
                    "Normal",
                    "RoutingReset",
                    f"spec.regions makes {home} the Active region: the traffic follows the spec "
                    f"(it was in {previous.active_region})",
                )
            )
    kept = previous if routed else None
    before = {region.name: region for region in previous.regions} if previous is not None else {}
    health = {name: update_health(name, before.get(name), checks.get(name), spec, now) for name in names}
    for name, region in health.items():
        old = before.get(name)
        if old is not None and old.state is not region.state:
            events.append(
                Event(
                    "Warning" if region.state is RegionHealthState.UNHEALTHY else "Normal",
                    f"Region{region.state.value}",
                    f"{name} is {region.state.value.lower()}: {region.message}",
                )
            )
    pending = None
    if kept is not None and kept.phase in SWITCH_PHASES and kept.pending_switch is not None:
        target = kept.pending_switch.to_region
        if target in names and target != kept.active_region:
            pending = kept.pending_switch
    held_since = kept.waiting_for_user_since if kept is not None else None
    count = previous.failover_count if previous is not None else 0
    recent = _prune(kept.recent_switches if kept is not None else (), now, held_since is not None)
    if held_since is not None and acknowledged == count:
        events.append(
            Event(
                "Normal",
                "FailoverAcknowledged",
                f"{FAILOVER_ACKNOWLEDGED_ANNOTATION}={acknowledged}: automatic switching resumes",
            )
        )
        held_since, recent = None, ()
    machine = _Machine(
        spec=spec,
        checks=checks,
        now=now,
        verified=verified,
        health=health,
        home=home,
        active=kept.active_region if kept is not None else home,
        pending=pending,
        failing_since=kept.failing_since if kept is not None else None,
        active_since=kept.active_since if kept is not None else None,
        count=count,
        recent=recent,
        held_since=held_since,
        last=previous.last_failover if previous is not None else None,
        events=events,
    )
    phase, message = machine.run()
    if machine.verify:
        # Nothing is decided until the target's engines are probed.
        return Decision(status=previous or _initial(home), verify=tuple(machine.verify))
    status = FailoverStatus(
        phase=phase,
        message=message[:4096],
        home_region=home,
        active_region=machine.active,
        target_region=machine.pending.to_region if machine.pending is not None else None,
        pending_switch=machine.pending,
        failing_since=machine.failing_since,
        active_since=machine.active_since,
        failover_count=machine.count,
        recent_switches=machine.recent[-60:],
        waiting_for_user_since=machine.held_since,
        regions=tuple(health[name] for name in names),
        last_failover=machine.last,
    )
    blocked = phase is FailoverPhase.NO_HEALTHY_TARGET or (
        phase is FailoverPhase.DEGRADED
        and message.startswith(BLOCKED_BY_MINIMUM_TIME.format(region=machine.active))
    )
    if blocked and (previous is None or previous.message is None or previous.message[:40] != message[:40]):
        machine.events.append(Event("Warning", "FailoverBlocked", message))
    return Decision(status=status, events=tuple(machine.events), conditions=conditions(machine, status))


def _initial(home: str) -> FailoverStatus:
    return FailoverStatus(phase=FailoverPhase.PENDING, home_region=home, active_region=home)


def conditions(machine: _Machine, status: FailoverStatus) -> tuple[ConditionValue, ...]:
    """FailoverReady (can another region take over?) and SignalsAvailable (was every signal evaluated?)."""
    if status.phase is FailoverPhase.WAITING_FOR_USER:
        ready = ConditionValue(
            ConditionType.FAILOVER_READY, ConditionStatus.FALSE, "WaitingForUser", machine.held_message()
        )
    else:
        candidates = machine.candidates(machine.active)
        if candidates:
            ready = ConditionValue(
                ConditionType.FAILOVER_READY,
                ConditionStatus.TRUE,
                "StandbyHealthy",
                f"{', '.join(candidates)} can take over from {machine.active}",
            )
        else:
            states = ", ".join(
                f"{name} {machine.health[name].state.value}"
                for name in machine.names
                if name != machine.active
            )
            ready = ConditionValue(
                ConditionType.FAILOVER_READY,
                ConditionStatus.FALSE,
                "NoHealthyStandby",
                f"no other region can take over from {machine.active} ({states})",
            )
    unavailable = [
        f"{result.signal.value} in {region}: {result.message}"
        for region in machine.names
        if (check := machine.check(region)) is not None
        for result in check.results
        if result.outcome is Outcome.UNKNOWN
    ]
    if unavailable:
        signals = ConditionValue(
            ConditionType.SIGNALS_AVAILABLE,
            ConditionStatus.FALSE,
            "SignalsUnavailable",
            ("not evaluated (counts neither as failure nor as health): " + "; ".join(unavailable))[:4096],
        )
    else:
        signals = ConditionValue(
            ConditionType.SIGNALS_AVAILABLE,
            ConditionStatus.TRUE,
            "SignalsEvaluated",
            "every signal of every region was evaluated ("
            + ", ".join(signal.value for signal in machine.spec.failover.signals)
            + ")",
        )
    return ready, signals
