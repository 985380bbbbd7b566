"""metav1.Condition-shaped status conditions, one rule for every writer (the reconcile and the
controllers): lastTransitionTime moves only when the condition's status changes."""

from __future__ import annotations

from datetime import datetime

from deepseek_operator.api import Condition, ConditionStatus


def transition(
    kind: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    generation: int | None,
    previous: Condition | None,
    now: datetime,
) -> Condition:
    """The condition `kind` now; `previous` is the one in status before (None when there is none)."""
    unchanged = (
        previous is not None and previous.status is status and previous.last_transition_time is not None
    )
    return Condition(
        type=kind,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=previous.last_transition_time if unchanged and previous else now,
        observed_generation=generation,
    )
