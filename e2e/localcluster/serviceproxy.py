"""kube-proxy for the local cluster: every Service gets a loopback address of its own on the machine,
and each TCP connection to it goes to one endpoint picked at random from the Service's EndpointSlices.

Endpoints are chosen as kube-proxy chooses them: ready ones; when there are none, endpoints that are
serving while terminating (KEP-1669); when there is none of those either, the connection is refused
(closed at once). An endpoint is reached at its pod's loopback address (the annotation the pod runtime
writes), never at the pod IP the EndpointSlice names; endpoints without such an address (pods that kwok
only pretends to run) are never chosen.

The address of each Service is written to `services.json` in the cluster's directory (see
`service_address`), so tests, benchmarks and people can call a Service from the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localcluster.addresses import AddressAllocator, NotLoopbackError, require_loopback

log = logging.getLogger("localcluster.serviceproxy")

SERVICES_FILE = "services.json"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
CONNECT_TIMEOUT_SECONDS = 5.0
# Services of the control plane itself: nothing listens behind them on the local cluster.
IGNORED_SERVICES = frozenset({"default/kubernetes"})


@dataclass(frozen=True)
class Endpoint:
    pod_namespace: str
    pod_name: str
    port: int
    ready: bool
    serving: bool
    terminating: bool


@dataclass
class ProxiedService:
    key: str  # namespace/name
    address: str
    ports: dict[str, int]  # Service port name -> Service port
    servers: dict[int, asyncio.Server] = field(default_factory=dict)


def endpoints_for_port(slices: list[dict[str, Any]], port_name: str) -> list[Endpoint]:
    """The endpoints of a Service port, from its EndpointSlices (pure: what the API returned)."""
    found: list[Endpoint] = []
    for endpoint_slice in slices:
        ports = [p for p in endpoint_slice.get("ports") or [] if (p.get("name") or "") == port_name]
        if not ports or ports[0].get("port") is None:
            continue
        port = int(ports[0]["port"])
        for endpoint in endpoint_slice.get("endpoints") or []:
            target = endpoint.get("targetRef") or {}
            if target.get("kind") != "Pod":
                continue
            conditions = endpoint.get("conditions") or {}
            # A nil condition means true (the EndpointSlice API's convention).
            ready = conditions.get("ready") is not False
            found.append(
                Endpoint(
                    pod_namespace=str(target.get("namespace") or endpoint_slice["metadata"]["namespace"]),
                    pod_name=str(target["name"]),
                    port=port,
                    ready=ready,
                    serving=conditions.get("serving", ready) is not False,
                    terminating=conditions.get("terminating") is True,
                )
            )
    return found


def choose_endpoints(endpoints: list[Endpoint]) -> list[Endpoint]:
    """kube-proxy's choice: ready endpoints, else serving-and-terminating ones, else none."""
    ready = [e for e in endpoints if e.ready and not e.terminating]
    if ready:
        return ready
    return [e for e in endpoints if e.serving and e.terminating]


class ServiceProxy:
    """Listens for every Service and forwards connections to its endpoints' loopback addresses."""

    def __init__(
        self,
        allocator: AddressAllocator,
        state_dir: Path,
        pod_address: Callable[[str, str], str | None],
    ) -> None:
        self.allocator = allocator
        self.state_file = state_dir / SERVICES_FILE
        self.pod_address = pod_address
        self.services: dict[str, ProxiedService] = {}
        self.slices: dict[str, dict[str, dict[str, Any]]] = {}  # service key -> slice name -> slice
        self._random = random.Random()  # load spreading, not security

    async def close(self) -> None:
        for service in list(self.services.values()):
            await self._stop_listening(service)
        self.services.clear()

    # -------------------------------------------------------------------------------- watch events

    async def on_service(self, event: str, service: dict[str, Any]) -> None:
        metadata = service["metadata"]
        key = f"{metadata['namespace']}/{metadata['name']}"
        if key in IGNORED_SERVICES:
            return
        if event == "DELETED":
            existing = self.services.pop(key, None)
            if existing is not None:
                await self._stop_listening(existing)
                self._write_state()
            return
        ports = {
            str(p.get("name") or ""): int(p["port"])
            for p in (service.get("spec") or {}).get("ports") or []
            if (p.get("protocol") or "TCP") == "TCP"
        }
        existing = self.services.get(key)
        if existing is not None and existing.ports == ports:
            return
        if existing is not None:
            await self._stop_listening(existing)
        proxied = ProxiedService(key=key, address=self.allocator.service_address(key), ports=ports)
        self.services[key] = proxied
        for name, port in ports.items():
            try:
                proxied.servers[port] = await asyncio.start_server(
                    self._forwarder(key, name), proxied.address, port
                )
            except OSError as error:
                log.warning("service %s: cannot listen on %s:%d: %s", key, proxied.address, port, error)
        log.info("service %s: %s ports %s", key, proxied.address, ports)
        self._write_state()

    def on_endpoint_slice(self, event: str, endpoint_slice: dict[str, Any]) -> None:
        metadata = endpoint_slice["metadata"]
        service = (metadata.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if not service:
            return
        key = f"{metadata['namespace']}/{service}"
        slices = self.slices.setdefault(key, {})
        if event == "DELETED":
            slices.pop(metadata["name"], None)
        else:
            slices[metadata["name"]] = endpoint_slice

    async def _stop_listening(self, service: ProxiedService) -> None:
        for server in service.servers.values():
            server.close()
            with contextlib.suppress(Exception):
                await server.wait_closed()
        service.servers.clear()

    def _write_state(self) -> None:
        state = {key: {"address": s.address, "ports": s.ports} for key, s in sorted(self.services.items())}
        temporary = self.state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(state, indent=2))
        os.replace(temporary, self.state_file)

    # -------------------------------------------------------------------------------- forwarding

    def pick(self, key: str, port_name: str) -> tuple[str, int] | None:
        """A loopback (address, port) behind the Service port, or None when nothing can serve."""
        candidates = choose_endpoints(endpoints_for_port(list(self.slices.get(key, {}).values()), port_name))
        reachable = [
            (address, endpoint.port)
            for endpoint in candidates
            if (address := self.pod_address(endpoint.pod_namespace, endpoint.pod_name)) is not None
        ]
        return self._random.choice(reachable) if reachable else None

    def _forwarder(
        self, key: str, port_name: str
    ) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
        async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._forward(reader, writer, key, port_name)

        return forward

    async def _forward(
        self,
        client_reader: asyncio.StreamReader,
        client_writer: asyncio.StreamWriter,
        key: str,
        port_name: str,
    ) -> None:
        target = self.pick(key, port_name)
        if target is None:
            _reset(client_writer)  # like kube-proxy's REJECT for a Service without endpoints
            return
        try:
            address = require_loopback(target[0])
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(address, target[1]), timeout=CONNECT_TIMEOUT_SECONDS
            )
        except (OSError, TimeoutError, NotLoopbackError) as error:
            log.info("service %s: endpoint %s:%d unreachable: %s", key, target[0], target[1], error)
            _reset(client_writer)
            return
        await _splice(client_reader, client_writer, upstream_reader, upstream_writer)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset, so the client sees 'connection reset' at once rather than a hang."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()


async def _splice(
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    upstream_reader: asyncio.StreamReader,
    upstream_writer: asyncio.StreamWriter,
) -> None:
    """Copy both ways. The client's EOF half-closes towards the server (the answer may still come);
    the server's EOF or any error ends the connection both ways."""

    async def client_to_upstream() -> None:
        while chunk := await client_reader.read(65536):
            upstream_writer.write(chunk)
            await upstream_writer.drain()
        if upstream_writer.can_write_eof():
            upstream_writer.write_eof()

    async def upstream_to_client() -> None:
        while chunk := await upstream_reader.read(65536):
            client_writer.write(chunk)
            await client_writer.drain()

    sending = asyncio.create_task(client_to_upstream())
    try:
        await upstream_to_client()
    except (ConnectionError, OSError):
        pass
    finally:
        sending.cancel()
        await asyncio.gather(sending, return_exceptions=True)
        for writer in (client_writer, upstream_writer):
            with contextlib.suppress(Exception):
                writer.close()


def service_address(state_dir: Path, namespace: str, name: str, port_name: str = "") -> tuple[str, int]:
    """Where the Service `namespace/name` listens on this machine (raises KeyError when unknown)."""
    state = json.loads((state_dir / SERVICES_FILE).read_text())
    entry = state[f"{namespace}/{name}"]
    ports: dict[str, int] = entry["ports"]
    if port_name not in ports:
        if len(ports) == 1 and not port_name:
            return str(entry["address"]), next(iter(ports.values()))
        raise KeyError(f"service {namespace}/{name} has no port {port_name!r}; it has {sorted(ports)}")
    return str(entry["address"]), ports[port_name]
