"""Loopback addresses of the live data plane, and the guard that keeps every packet on loopback.

kwok invents pod IPs that belong to nobody, and the EndpointSlice controller refuses loopback pod IPs.
So a pod keeps a non-loopback IP in its status (published in EndpointSlices as usual), and the process
that runs behind it listens on a loopback address of its own, recorded on the pod in
`LOOPBACK_ADDRESS_ANNOTATION`. Everything that sends traffic to a pod (the Service proxy, Prometheus,
tests) goes to that annotation's address, never to the pod IP.

Each running local cluster owns one /16 block of 127.0.0.0/8 (held by a lock file for its lifetime),
so two clusters on one machine (a `make dev` beside a `make test`) never bind the same address.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

LOOPBACK_ADDRESS_ANNOTATION = "localcluster.deepseek-operator.io/loopback-address"
LOOPBACK_NETWORK = ipaddress.IPv4Network("127.0.0.0/8")
# Pod IPs for the pods the harness runs: a range next to kwok's --cidr (10.244.0.0/16), never used by
# anything, so nothing answers there; the harness never sends to it (see `require_loopback`).
POD_NETWORK = ipaddress.IPv4Network("10.246.0.0/16")
# Second octets a cluster may take: 127.0.0.1 (the control plane) stays out of every block.
FIRST_BLOCK, LAST_BLOCK = 16, 250
# Within a block: pods from 127.N.1.0, Services from 127.N.200.0 (up to 14,000 pods and 14,000 Services
# a cluster's lifetime; addresses are never reused, so a late packet never reaches a newer process).
POD_SUBNETS = range(1, 200)
SERVICE_SUBNETS = range(200, 255)


class NotLoopbackError(ValueError):
    """An address outside 127.0.0.0/8 was about to receive traffic."""


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.IPv4Address(address) in LOOPBACK_NETWORK
    except ValueError:
        return False


def require_loopback(address: str) -> str:
    """`address`, if it is a loopback IPv4 address; otherwise raise (the one guard before any connect)."""
    if not is_loopback(address):
        raise NotLoopbackError(
            f"refusing to send traffic to {address!r}: the local cluster only sends to 127.0.0.0/8 "
            "(pod IPs in status are invented by the simulation and belong to nobody)"
        )
    return address


def _lock_dir() -> Path:
    return Path(tempfile.gettempdir()) / "deepseek-operator-loopback"


@contextlib.contextmanager
def claim_block() -> Iterator[int]:
    """Hold one free /16 block of loopback (its second octet) until the context exits."""
    directory = _lock_dir()
    directory.mkdir(parents=True, exist_ok=True)
    handle: IO[str] | None = None
    for octet in range(FIRST_BLOCK, LAST_BLOCK + 1):
        candidate = (directory / f"127.{octet}.lock").open("w")
        try:
            fcntl.flock(candidate, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            candidate.close()
            continue
        candidate.write(f"{os.getpid()}\n")
        candidate.flush()
        handle = candidate
        break
    if handle is None:
        raise RuntimeError(
            f"every loopback block 127.{FIRST_BLOCK}-{LAST_BLOCK}.0.0/16 is held by a running local "
            f"cluster (lock files in {directory}): stop some of them"
        )
    try:
        yield octet
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


@dataclass
class AddressAllocator:
    """Hands out addresses of one block, each once: pods' loopback addresses, Services' proxy addresses,
    and the (non-loopback, never contacted) pod IPs shown in pod status."""

    block: int
    _next_pod: int = 0
    _next_service: int = 0
    _next_pod_ip: int = 0
    _services: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def _nth(subnets: range, index: int, block: int) -> str:
        per_subnet = 254  # .1 .. .254
        subnet, host = divmod(index, per_subnet)
        if subnet >= len(subnets):
            raise RuntimeError(f"loopback block 127.{block}.0.0/16 is exhausted: restart the local cluster")
        return f"127.{block}.{subnets[subnet]}.{host + 1}"

    def pod_address(self) -> str:
        address = self._nth(POD_SUBNETS, self._next_pod, self.block)
        self._next_pod += 1
        return address

    def service_address(self, key: str) -> str:
        """The same address for the same Service key (namespace/name) for the cluster's lifetime."""
        if key not in self._services:
            self._services[key] = self._nth(SERVICE_SUBNETS, self._next_service, self.block)
            self._next_service += 1
        return self._services[key]

    def pod_ip(self) -> str:
        self._next_pod_ip += 1
        if self._next_pod_ip >= POD_NETWORK.num_addresses - 1:
            raise RuntimeError(f"pod IP range {POD_NETWORK} is exhausted: restart the local cluster")
        return str(POD_NETWORK.network_address + self._next_pod_ip)
