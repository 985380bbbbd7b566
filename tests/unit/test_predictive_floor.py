"""The floor arithmetic: replicas for a forecast, bounds, and the pace at which it may fall."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from deepseek_operator.predictive.floor import Bounds, FloorState, Pace, next_floor, replicas_needed

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
BOUNDS = Bounds(min_replicas=2, max_replicas=10)
# The API's default scale-down policy: 300 s window, 1 pod per 120 s.
PACE = Pace(stabilization_seconds=300, pods_per_period=1, period_seconds=120)


@pytest.mark.parametrize(
    ("rate", "per_replica", "expected"),
    [
        (0.0, 2.0, 2),  # never below the minimum
        (3.9, 2.0, 2),
        (4.1, 2.0, 3),
        (8.0, 2.0, 4),  # exactly 4 replicas' worth needs 4
        (7.9999999999, 1.0, 8),
        (12.0, 2.5, 5),
        (1000.0, 2.0, 10),  # never above the maximum
    ],
)
def test_replicas_needed(rate: float, per_replica: float, expected: int) -> None:
    assert replicas_needed(rate, per_replica, BOUNDS) == expected


def test_replicas_needed_refuses_a_capacity_of_zero() -> None:
    with pytest.raises(ValueError, match="cannot size"):
        replicas_needed(4.0, 0.0, BOUNDS)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("previous", "wanted", "now", "expected"),
    [
        # Up at once, from no floor or from a lower one.
        (FloorState(), 6, at(0), FloorState(6, at(0), None)),
        (FloorState(4, at(-600), None), 7, at(0), FloorState(7, at(0), None)),
        # Unchanged: nothing moves, not even the timestamps.
        (FloorState(6, at(-60), None), 6, at(0), FloorState(6, at(-60), None)),
        # At or below the minimum is no floor.
        (FloorState(), 2, at(0), FloorState(None, None, None)),
        (FloorState(), None, at(0), FloorState(None, None, None)),
        # Above the maximum is the maximum.
        (FloorState(), 50, at(0), FloorState(10, at(0), None)),
        # Lower wanted: the stabilization window starts, the floor holds.
        (FloorState(6, at(-600), None), 3, at(0), FloorState(6, at(-600), at(0))),
        (FloorState(6, at(-600), at(-299)), 3, at(0), FloorState(6, at(-600), at(-299))),
        # Window over: one pod down, then one per period.
        (FloorState(6, at(-600), at(-300)), 3, at(0), FloorState(5, at(0), at(-300))),
        (FloorState(5, at(-119), at(-420)), 3, at(0), FloorState(5, at(-119), at(-420))),
        (FloorState(5, at(-120), at(-420)), 3, at(0), FloorState(4, at(0), at(-420))),
        # The last step reaches what is wanted: the window is closed.
        (FloorState(4, at(-120), at(-540)), 3, at(0), FloorState(3, at(0), None)),
        # No forecast any more (None): the floor is released at the same pace, down to none.
        (FloorState(3, at(-600), None), None, at(0), FloorState(3, at(-600), at(0))),
        (FloorState(3, at(-600), at(-300)), None, at(0), FloorState(None, at(0), None)),
        # A rise while falling cancels the window.
        (FloorState(5, at(-120), at(-420)), 8, at(0), FloorState(8, at(0), None)),
        (FloorState(5, at(-120), at(-420)), 5, at(0), FloorState(5, at(-120), None)),
    ],
)
def test_next_floor(previous: FloorState, wanted: int | None, now: datetime, expected: FloorState) -> None:
    assert next_floor(previous, wanted, BOUNDS, PACE, now) == expected


def test_a_floor_above_a_lowered_maximum_is_cut_at_once() -> None:
    lowered = Bounds(min_replicas=2, max_replicas=5)
    assert next_floor(FloorState(8, at(-10), None), 8, lowered, PACE, at(0)) == FloorState(5, at(0), None)


def test_a_floor_never_falls_faster_than_the_scale_down_policy_allows() -> None:
    """Whatever the forecast does (here it flaps between 9 and 3 every minute), the floor falls by at
    most pods_per_period per period_seconds, and only after the window: replay 30 minutes."""
    state = FloorState()
    history: list[tuple[int, int | None]] = []
    for minute in range(30):
        wanted = 9 if minute % 2 == 0 and minute < 6 else 3
        state = next_floor(state, wanted, BOUNDS, PACE, at(60 * minute))
        history.append((minute, state.floor))
    floors = [floor or BOUNDS.min_replicas for _, floor in history]
    drops = [(m, a - b) for m, (a, b) in enumerate(itertools.pairwise(floors)) if b < a]
    assert all(step <= PACE.pods_per_period for _, step in drops)
    drop_minutes = [m + 1 for m, _ in drops]
    assert all(later - earlier >= 2 for earlier, later in itertools.pairwise(drop_minutes))
    # 3 is wanted from minute 5 on: nothing falls before minute 5 + 5 (the 300 s window).
    assert drop_minutes[0] >= 10
    assert floors[-1] == 3
