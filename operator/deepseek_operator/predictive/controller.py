"""The predictive pre-scaler's kopf layer: every LOOK_SECONDS, per DeepSeekDeployment with
``autoscaling.predictive.enabled``, read the request-rate history from Prometheus
(`predictive.prometheus`), decide (`predictive.decide`: forecast, floor, condition), write status under
the pre-scaler's own field manager, and reconcile when the floor changed so that the autoscaler's
minimum follows (the reconcile reads the floor from status: `placement.autoscaler_floor`).

Only the operator that is not paused acts. kopf has no leader election: with peering (`--peering`, the
chart's HA mode) it pauses every lower-priority replica, and on pause it stops every daemon and timer;
timers are daemons to kopf (`kopf/_core/engines/daemons.py`: `daemon_killer` stops "all daemons/timers"
when the operator pauses, and `_timer` runs as such a daemon), and they are spawned again on resume.
Standalone (one replica, strategy Recreate) there is one operator. A look that was mid-way when its
operator paused finishes its write: each write is a server-side apply of a state computed from status
and Prometheus, so the next leader's look repeats it harmlessly. The floor's timers are in status, so a
restarted or newly leading operator continues from there.

``DEEPSEEK_OPERATOR_PREDICTIVE_TIME_SCALE`` (default 1) divides the forecast's calendar (day, week,
anchor hour, horizon, the 5-minute grid) and the look interval. It exists for bench/predictive.py,
which replays a day compressed into minutes; nothing else sets it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf
from pydantic import ValidationError

from deepseek_operator import metrics
from deepseek_operator.api import GROUP, PLURAL, VERSION, Condition, PredictiveStatus
from deepseek_operator.placement import autoscaler_floor
from deepseek_operator.predictive.decide import CONDITION_TYPE, decide
from deepseek_operator.predictive.forecast import Seasons
from deepseek_operator.predictive.prometheus import read_history
from deepseek_operator.reconcile import InvalidSpecError, parse_spec, reconcile

TIME_SCALE_ENV = "DEEPSEEK_OPERATOR_PREDICTIVE_TIME_SCALE"


def time_scale(environ: Mapping[str, str] = os.environ) -> float:
    raw = environ.get(TIME_SCALE_ENV, "").strip() or "1"
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value >= 1:
        raise ValueError(f"{TIME_SCALE_ENV}={raw!r}: set it to a number of at least 1 (1: real days)")
    return value


TIME_SCALE = time_scale()
SEASONS = Seasons().scaled(TIME_SCALE)
# How often each deployment's forecast is made (one range query, a fit of a few milliseconds).
LOOK_SECONDS = 60.0 / TIME_SCALE
# Status is written when the floor, what the forecast wants, the method, the capacity or the
# condition's reason changed, and otherwise at most this often (lastFitTime then lags by as much).
# Fewer writes, and the object stays quiet long enough for the reconcile's resync timer, which waits
# for a minute without changes (handlers.RESYNC_SECONDS).
STATUS_REFRESH_SECONDS = 300.0 / TIME_SCALE

Logger = logging.Logger | logging.LoggerAdapter[logging.Logger]


def _kube() -> Any:
    from deepseek_operator.handlers import kube

    return kube()


def _mine(status: Mapping[str, Any]) -> tuple[PredictiveStatus | None, Condition | None]:
    """The pre-scaler's own status fields as last written (what a hand edit mangled is dropped)."""
    previous: PredictiveStatus | None = None
    condition: Condition | None = None
    try:
        if status.get("predictive"):
            previous = PredictiveStatus.model_validate(status["predictive"])
    except ValidationError:
        previous = None
    for item in status.get("conditions") or []:
        if item.get("type") == CONDITION_TYPE:
            try:
                condition = Condition.model_validate(item)
            except ValidationError:
                condition = None
    return previous, condition


def worth_writing(
    previous: PredictiveStatus | None,
    previous_condition: Condition | None,
    status: PredictiveStatus,
    condition: Condition,
    now: datetime,
) -> bool:
    """Whether a look's outcome must be written now (see STATUS_REFRESH_SECONDS)."""
    if previous is None or previous_condition is None or previous.last_fit_time is None:
        return True
    significant = (
        "mode",
        "method",
        "capacity_source",
        "requests_per_second_per_replica",
        "wanted_replicas",
        "floor_replicas",
        "floor_changed_at",
        "lower_since",
    )
    if any(getattr(previous, field) != getattr(status, field) for field in significant):
        return True
    if (previous_condition.status, previous_condition.reason, previous_condition.observed_generation) != (
        condition.status,
        condition.reason,
        condition.observed_generation,
    ):
        return True
    last = status.last_fit_time or now
    return (last - previous.last_fit_time).total_seconds() >= STATUS_REFRESH_SECONDS


def look(namespace: str, name: str, logger: Logger, now: datetime | None = None) -> None:
    """One look at DeepSeekDeployment ``namespace/name`` (blocking: runs in a worker thread)."""
    kube = _kube()
    current = kube.read_deepseek_deployment(namespace, name)
    if current is None or current["metadata"].get("deletionTimestamp"):
        metrics.record_predictive(namespace, name, None, None, None)
        return
    try:
        spec = parse_spec(current)
    except InvalidSpecError:
        return  # reported by the reconcile
    status: Mapping[str, Any] = current.get("status") or {}
    previous, previous_condition = _mine(status)
    predictive = spec.autoscaling.predictive
    url = spec.monitoring.prometheus_url
    if not (spec.autoscaling.enabled and predictive.enabled) or url is None:
        if previous is not None or previous_condition is not None:
            # Nothing of the pre-scaler is left behind; the floor already went with the spec change
            # (placement.autoscaler_floor reads the spec first).
            kube.apply_predictive_status(namespace, name, {})
        metrics.record_predictive(namespace, name, None, None, None)
        return
    now = now or datetime.now(UTC).replace(microsecond=0)
    observed = read_history(url, namespace, spec, now.timestamp(), SEASONS)
    generation = int(current["metadata"].get("generation") or 0)
    decision = decide(spec, observed, previous, previous_condition, generation, now, SEASONS)
    metrics.record_predictive(namespace, name, decision.forecast_rate, decision.floor, decision.error_percent)
    if not worth_writing(previous, previous_condition, decision.status, decision.condition, now):
        return
    written = {
        "conditions": [decision.condition.model_dump(mode="json", by_alias=True, exclude_none=True)],
        "predictive": decision.status.model_dump(mode="json", by_alias=True, exclude_none=True),
    }
    if not kube.apply_predictive_status(namespace, name, written):
        return  # gone meanwhile
    before = autoscaler_floor(spec, status)
    after = autoscaler_floor(spec, written)
    if before != after:
        logger.info(
            "predictive floor of %s/%s: %s -> %s (%s)",
            namespace,
            name,
            before,
            after,
            decision.condition.message,
        )
        try:
            reconcile(kube, namespace, name, logger)
        except InvalidSpecError:
            return


@kopf.timer(GROUP, VERSION, PLURAL, id="predictive", interval=LOOK_SECONDS)
async def predictive_prescaler(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
    namespace, name = body.metadata["namespace"], body.metadata["name"]
    spec = body.get("spec") or {}
    predictive = (spec.get("autoscaling") or {}).get("predictive") or {}
    status = body.get("status") or {}
    if not predictive.get("enabled") and not status.get("predictive"):
        return  # the common case: nothing to forecast and nothing to clean up; no API call
    try:
        await asyncio.to_thread(look, namespace, name, logger)
    except Exception:  # retried at the next look; a failing look must not stop the timer
        logger.exception("predictive pre-scaler: looking at %s/%s failed", namespace, name)
