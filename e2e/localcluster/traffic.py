"""Bounded loopback traffic through a Service of the local cluster, recording who answered what and when.

For the failover tests and benchmark: a few workers send small chat completions back to back, each on a
new TCP connection (so the Service proxy picks an endpoint for every request, as it would for new
clients), at most `max_per_second` in total. Every answer records when it was sent and received, its
status (None when the connection failed) and the pod that served it (the simulator's X-Served-By
header). Loopback only: the target must be a Service proxy address (`require_loopback`).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field

from localcluster.addresses import require_loopback

SERVED_BY_HEADER = "X-Served-By"


@dataclass(frozen=True)
class Answer:
    sent: float  # time.monotonic()
    received: float
    status: int | None
    served_by: str | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200

    def region(self, deployment: str, regions: Sequence[str]) -> str | None:
        """The region of the pod that answered (pods are named <deployment>-<region>-<pool>-...)."""
        if self.served_by is None:
            return None
        return next((r for r in regions if self.served_by.startswith(f"{deployment}-{r}-")), None)


@dataclass
class Traffic:
    url: str
    model: str
    workers: int = 4
    max_per_second: float = 20.0
    timeout: float = 10.0
    max_tokens: int = 2
    answers: list[Answer] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _next_slot: float = 0.0

    def __post_init__(self) -> None:
        parts = urllib.parse.urlsplit(self.url)
        self._host = require_loopback(parts.hostname or "")
        self._port = parts.port or 80
        self._body = json.dumps(
            {
                "model": self.model,
                "messages": [{"role": "user", "content": "Say hello."}],
                "max_tokens": self.max_tokens,
            }
        ).encode()

    def start(self) -> Traffic:
        self._next_slot = time.monotonic()
        self._threads = [
            threading.Thread(target=self._work, name=f"traffic-{index}", daemon=True)
            for index in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> list[Answer]:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout + 5)
        return self.snapshot()

    def snapshot(self) -> list[Answer]:
        with self._lock:
            return sorted(self.answers, key=lambda answer: answer.received)

    def __enter__(self) -> Traffic:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _wait_for_slot(self) -> None:
        """At most max_per_second requests start per second, across the workers."""
        with self._lock:
            slot = max(self._next_slot, time.monotonic())
            self._next_slot = slot + 1.0 / self.max_per_second
        delay = slot - time.monotonic()
        if delay > 0:
            self._stop.wait(delay)

    def _work(self) -> None:
        while not self._stop.is_set():
            self._wait_for_slot()
            if self._stop.is_set():
                return
            answer = self._send()
            with self._lock:
                self.answers.append(answer)
            if answer.status is None:
                self._stop.wait(0.05)  # a refused connection answers at once: do not spin

    def _send(self) -> Answer:
        sent = time.monotonic()
        connection = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        try:
            connection.request(
                "POST",
                "/v1/chat/completions",
                body=self._body,
                headers={"Content-Type": "application/json", "Connection": "close"},
            )
            response = connection.getresponse()
            response.read()
            return Answer(sent, time.monotonic(), response.status, response.getheader(SERVED_BY_HEADER))
        except (OSError, http.client.HTTPException) as error:
            return Answer(sent, time.monotonic(), None, None, f"{type(error).__name__}: {error}")
        finally:
            connection.close()


@dataclass(frozen=True)
class SwitchSeen:
    """What a client saw of a switch from `old` to `new` (times are time.monotonic())."""

    last_old_ok: float | None
    first_new_ok: float | None
    failed: int  # answers that were not a success, sent after the fault and before first_new_ok
    answered: int

    @property
    def gap(self) -> float | None:
        if self.last_old_ok is None or self.first_new_ok is None:
            return None
        return self.first_new_ok - self.last_old_ok


def switch_seen(
    answers: Sequence[Answer], deployment: str, regions: Sequence[str], old: str, new: str, fault_at: float
) -> SwitchSeen:
    """The client-side view: the last success from the old region before the first success from the new
    one after the fault, and the failed requests in between."""
    new_ok = [
        a.received for a in answers if a.ok and a.sent >= fault_at and a.region(deployment, regions) == new
    ]
    first_new = min(new_ok) if new_ok else None
    old_ok = [
        a.received
        for a in answers
        if a.ok and a.region(deployment, regions) == old and (first_new is None or a.received <= first_new)
    ]
    end = first_new if first_new is not None else float("inf")
    window = [a for a in answers if fault_at <= a.sent < end]
    return SwitchSeen(
        last_old_ok=max(old_ok) if old_ok else None,
        first_new_ok=first_new,
        failed=sum(1 for a in window if not a.ok),
        answered=len(window),
    )
