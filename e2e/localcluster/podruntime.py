"""The kubelet of simulator pods: a real `deepseek-simulator` process behind each pod whose image is the
simulator (`podspec.runs_simulator`), on a loopback address of its own.

For each such pod, once the scheduler has bound it to a Ready node:
- the process starts with the pod's own container environment (the `DSD_*` contract the operator
  renders), `SIM_HOST` = the pod's loopback address and the container port; the address is recorded on
  the pod (`addresses.LOOPBACK_ADDRESS_ANNOTATION`), a non-loopback pod IP goes in its status (so the
  EndpointSlice controller publishes it as usual; nothing is ever sent there);
- the pod's startup, readiness and liveness probes run against the process as a kubelet runs them
  (period, timeout, thresholds), and the pod's Ready condition follows them; a failed liveness probe
  or a process that exits restarts the container with kubelet's back-off;
- deleting the pod runs its preStop sleep, then SIGTERM, then SIGKILL when the grace period is over,
  then removes the pod (as the kubelet does once its containers have stopped);
- a node that turns NotReady or disappears takes its processes with it (SIGKILL, like a machine that
  is lost); they start again if the node comes back while the pod is still bound to it.

One simplification, for speed: the first probe runs as soon as the process says it listens, instead of
at container start (a real kubelet may wait up to one probe period longer).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from localcluster.addresses import LOOPBACK_ADDRESS_ANNOTATION, AddressAllocator, require_loopback
from localcluster.podspec import (
    ContainerConfigError,
    ContainerPlan,
    ContainerState,
    Probe,
    container_plan,
    pod_status,
    restart_backoff_seconds,
    runs_simulator,
)

log = logging.getLogger("localcluster.podruntime")

SIMULATOR_SOURCE = Path(__file__).resolve().parents[2] / "images" / "simulator"
# A process that has not said it listens after this long is treated as crashed.
LISTEN_TIMEOUT_SECONDS = 30.0
# A process that ran this long without exiting resets the restart back-off, as the kubelet does.
BACKOFF_RESET_SECONDS = 600.0
_PR_SET_PDEATHSIG = 1


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _die_with_parent() -> None:
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class PodApi:
    """The few API calls the runtime makes, run in threads (the kubernetes client is synchronous)."""

    def __init__(self, api_client: Any) -> None:
        from kubernetes import client

        self.core: Any = client.CoreV1Api(api_client)

    async def annotate(self, namespace: str, name: str, key: str, value: str) -> None:
        await asyncio.to_thread(
            self.core.patch_namespaced_pod, name, namespace, {"metadata": {"annotations": {key: value}}}
        )

    async def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        await asyncio.to_thread(
            self.core.patch_namespaced_pod_status,
            name,
            namespace,
            {"status": status},
            _content_type="application/strategic-merge-patch+json",
        )

    async def remove(self, namespace: str, name: str, uid: str) -> None:
        """Delete the pod now that its containers have stopped (the kubelet's final delete)."""
        from kubernetes.client.exceptions import ApiException

        body = {"gracePeriodSeconds": 0, "preconditions": {"uid": uid}}
        try:
            await asyncio.to_thread(self.core.delete_namespaced_pod, name, namespace, body=body)
        except ApiException as error:
            if error.status not in (404, 409):
                raise

    def _data(
        self, read: Callable[..., Any], namespace: str, name: str, binary: bool
    ) -> dict[str, str] | None:
        import base64

        from kubernetes.client.exceptions import ApiException

        try:
            found = read(name, namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        data = found.data or {}
        if binary:
            return {key: base64.b64decode(value).decode() for key, value in data.items()}
        return dict(data)

    def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        return self._data(self.core.read_namespaced_secret, namespace, name, binary=True)

    def read_config_map(self, namespace: str, name: str) -> dict[str, str] | None:
        return self._data(self.core.read_namespaced_config_map, namespace, name, binary=False)


@dataclass
class ProbeState:
    probe: Probe
    successes: int = 0
    failures: int = 0
    next_at: float = 0.0


@dataclass
class Container:
    """One run of the pod's container: the process, its probes and what they concluded."""

    plan: ContainerPlan
    address: str
    process: asyncio.subprocess.Process
    started_at: str
    started_monotonic: float
    listening: asyncio.Event = field(default_factory=asyncio.Event)
    started: bool = False
    ready: bool = False
    liveness_failed: bool = False
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    @property
    def exited(self) -> bool:
        return self.process.returncode is not None


class PodWorker:
    """Drives one pod through its life; woken by every change of the pod or of its node."""

    def __init__(self, runtime: PodRuntime, pod: dict[str, Any]) -> None:
        self.runtime = runtime
        self.pod = pod
        self.namespace: str = pod["metadata"]["namespace"]
        self.name: str = pod["metadata"]["name"]
        self.uid: str = pod["metadata"]["uid"]
        self.changed = asyncio.Event()
        self.gone = False  # the pod object was deleted
        self.address: str | None = None
        self.pod_ip: str | None = None
        self.container: Container | None = None
        self.state: ContainerState | None = None
        self.restarts = 0
        self.restart_not_before = 0.0
        self.start_time = now_iso()
        self._published: dict[str, Any] | None = None
        self._publish_lock = asyncio.Lock()
        self.task: asyncio.Task[None] | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def update(self, pod: dict[str, Any]) -> None:
        self.pod = pod
        self.changed.set()

    async def _wait(self, seconds: float | None) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.changed.wait(), timeout=seconds)
        self.changed.clear()

    # -------------------------------------------------------------------------------- lifecycle

    async def run(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            await self._kill()
            raise
        except Exception:
            log.exception("pod %s: runtime error", self.key)
            await self._kill()
        finally:
            self.runtime.forget(self)

    async def _run(self) -> None:
        while True:
            if self.gone:
                await self._kill()
                return
            metadata = self.pod["metadata"]
            node = self.pod["spec"].get("nodeName")
            if metadata.get("deletionTimestamp"):
                await self._terminate()
                return
            if not node:
                await self._wait(None)
                continue
            if not self.runtime.node_ready(node):
                if self.container is not None:
                    log.info("pod %s: node %s is not ready: its process dies with it", self.key, node)
                    await self._kill()
                    self.container = None
                await self._wait(None)
                continue
            if self.container is None or self.container.exited or self.container.liveness_failed:
                await self._start_or_restart()
                continue
            await self._wait(1.0)

    async def _start_or_restart(self) -> None:
        container = self.container
        if container is not None:
            # A restart: stop what runs (a failed liveness probe), record how it ended, back off.
            if not container.exited:
                log.info("pod %s: liveness probe failed: restarting the container", self.key)
                await self._stop_container(container, container.plan.grace_seconds)
            ran_for = time.monotonic() - container.started_monotonic
            if ran_for >= BACKOFF_RESET_SECONDS:
                self.restarts = 0
            self.restarts += 1
            self.restart_not_before = time.monotonic() + restart_backoff_seconds(self.restarts)
            finished = now_iso()
            code = container.process.returncode
            last = {
                "exitCode": code if code is not None and code >= 0 else 128 + -(code or -9),
                "reason": "Completed" if code == 0 else "Error",
                "startedAt": container.started_at,
                "finishedAt": finished,
            }
            self.container = None
            self.state = ContainerState(
                name=container.plan.name,
                image=container.plan.image,
                phase="waiting",
                reason="CrashLoopBackOff",
                message=f"back-off restarting the container (restart {self.restarts})",
                restart_count=self.restarts,
                last_terminated=last,
            )
            await self.publish()
        delay = self.restart_not_before - time.monotonic()
        if delay > 0:
            await self._wait(delay)
            if self.gone or self.pod["metadata"].get("deletionTimestamp"):
                return
            if time.monotonic() < self.restart_not_before:
                return  # woken by a change: the loop looks again
        await self._start()

    async def _start(self) -> None:
        try:
            plan = await asyncio.to_thread(
                container_plan, self.pod, self.runtime.api.read_secret, self.runtime.api.read_config_map
            )
        except ContainerConfigError as error:
            image = str(self.pod["spec"]["containers"][0].get("image", ""))
            name = str(self.pod["spec"]["containers"][0].get("name", ""))
            self.state = ContainerState(
                name=name,
                image=image,
                phase="waiting",
                reason="CreateContainerConfigError",
                message=str(error),
                restart_count=self.restarts,
            )
            await self.publish()
            self.restart_not_before = time.monotonic() + 10
            await self._wait(10)
            return
        if self.address is None:
            self.address = self.runtime.allocator.pod_address()
            self.pod_ip = self.runtime.allocator.pod_ip()
            await self.runtime.api.annotate(
                self.namespace, self.name, LOOPBACK_ADDRESS_ANNOTATION, self.address
            )
        container = await self._spawn(plan, self.address)
        self.container = container
        self.state = ContainerState(
            name=plan.name,
            image=plan.image,
            phase="running",
            started_at=container.started_at,
            restart_count=self.restarts,
            last_terminated=self.state.last_terminated if self.state else None,
            container_id=f"localcluster://{container.process.pid}",
            started=plan.startup is None,
        )
        await self.publish()
        container.tasks.append(asyncio.create_task(self._probe_loop(container)))
        container.tasks.append(asyncio.create_task(self._watch_exit(container)))

    async def _spawn(self, plan: ContainerPlan, address: str) -> Container:
        require_loopback(address)
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(SIMULATOR_SOURCE),
            "HOSTNAME": self.name,
            **(
                {"SIM_STARTUP_DELAY_S": str(self.runtime.model_load_seconds)}
                if self.runtime.model_load_seconds
                else {}
            ),
            **plan.env,
            "SIM_HOST": address,
        }
        log_path = self.runtime.log_dir / f"{self.namespace}_{self.name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "deepseek_simulator",
            env=environment,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        container = Container(
            plan=plan,
            address=address,
            process=process,
            started_at=now_iso(),
            started_monotonic=time.monotonic(),
        )
        container.tasks.append(asyncio.create_task(self._read_log(container, log_path)))
        log.info("pod %s: started pid %d on %s:%d", self.key, process.pid, address, plan.port)
        return container

    async def _read_log(self, container: Container, log_path: Path) -> None:
        stream = container.process.stderr
        assert stream is not None
        with log_path.open("ab") as sink:
            async for line in stream:
                sink.write(line)
                sink.flush()
                if not container.listening.is_set() and b'"listening"' in line:
                    with contextlib.suppress(ValueError):
                        if json.loads(line).get("msg") == "listening":
                            container.listening.set()

    async def _watch_exit(self, container: Container) -> None:
        code = await container.process.wait()
        log.info("pod %s: process %d exited with %s", self.key, container.process.pid, code)
        self.changed.set()

    # -------------------------------------------------------------------------------- probes

    async def _probe_loop(self, container: Container) -> None:
        plan = container.plan
        try:
            await asyncio.wait_for(container.listening.wait(), timeout=LISTEN_TIMEOUT_SECONDS)
        except TimeoutError:
            log.warning("pod %s: the process did not start listening: killing it", self.key)
            container.liveness_failed = True
            self.changed.set()
            return
        begin = time.monotonic()
        states = {
            kind: ProbeState(probe, next_at=begin + probe.initial_delay_seconds)
            for kind, probe in (
                ("startup", plan.startup),
                ("readiness", plan.readiness),
                ("liveness", plan.liveness),
            )
            if probe is not None
        }
        if "startup" not in states:
            container.started = True
        if "readiness" not in states and container.started:
            await self._set_ready(container, True)
        while not container.exited:
            now = time.monotonic()
            active = ["startup"] if not container.started else ["readiness", "liveness"]
            due = [kind for kind in active if kind in states and states[kind].next_at <= now]
            for kind in due:
                state = states[kind]
                ok = await self.runtime.probe(container.address, state.probe)
                state.next_at = time.monotonic() + state.probe.period_seconds
                if ok:
                    state.successes, state.failures = state.successes + 1, 0
                else:
                    state.successes, state.failures = 0, state.failures + 1
                await self._conclude(container, kind, state, states)
            upcoming = [
                states[k].next_at
                for k in (["startup"] if not container.started else ["readiness", "liveness"])
                if k in states
            ]
            await asyncio.sleep(max(0.05, min(upcoming, default=time.monotonic() + 1.0) - time.monotonic()))

    async def _conclude(
        self, container: Container, kind: str, state: ProbeState, states: dict[str, ProbeState]
    ) -> None:
        if kind == "startup":
            if state.successes >= 1:
                container.started = True
                now = time.monotonic()
                for other in ("readiness", "liveness"):
                    if other in states:
                        states[other].next_at = now + states[other].probe.initial_delay_seconds
                if "readiness" not in states:
                    await self._set_ready(container, True)
                else:
                    await self.publish()
            elif state.failures >= state.probe.failure_threshold:
                container.liveness_failed = True  # a failed startup probe restarts the container
                self.changed.set()
        elif kind == "readiness":
            if state.successes >= state.probe.success_threshold and not container.ready:
                await self._set_ready(container, True)
            elif state.failures >= state.probe.failure_threshold and container.ready:
                await self._set_ready(container, False)
        elif kind == "liveness" and state.failures >= state.probe.failure_threshold:
            container.liveness_failed = True
            self.changed.set()

    async def _set_ready(self, container: Container, ready: bool) -> None:
        container.ready = ready
        if self.container is container and self.state is not None:
            self.state = replace(self.state, ready=ready, started=container.started)
            await self.publish()
            log.info("pod %s: %s", self.key, "ready" if ready else "not ready")

    # -------------------------------------------------------------------------------- shutdown

    async def _stop_container(self, container: Container, grace: float) -> None:
        """preStop sleep, SIGTERM, SIGKILL once `grace` seconds (counted from now) are over."""
        deadline = time.monotonic() + grace
        if container.plan.pre_stop_sleep_seconds and not container.exited:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    container.process.wait(), timeout=min(container.plan.pre_stop_sleep_seconds, grace)
                )
        if not container.exited:
            with contextlib.suppress(ProcessLookupError):
                container.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    container.process.wait(), timeout=max(0.0, deadline - time.monotonic())
                )
        if not container.exited:
            log.info("pod %s: grace period over: SIGKILL", self.key)
            with contextlib.suppress(ProcessLookupError):
                container.process.kill()
            await container.process.wait()
        for task in container.tasks:
            task.cancel()

    async def _terminate(self) -> None:
        metadata = self.pod["metadata"]
        grace = metadata.get("deletionGracePeriodSeconds")
        if grace is None:
            grace = self.pod["spec"].get("terminationGracePeriodSeconds", 30)
        container = self.container
        node = self.pod["spec"].get("nodeName")
        if container is not None and not container.exited and (node is None or self.runtime.node_ready(node)):
            log.info("pod %s: deleted: preStop, then SIGTERM (grace %ss)", self.key, grace)
            await self._stop_container(container, float(grace))
        else:
            await self._kill()
        if container is not None and self.state is not None:
            code = container.process.returncode
            self.state = replace(
                self.state,
                phase="terminated",
                ready=False,
                exit_code=code if code is not None and code >= 0 else 128 + -(code or -9),
                reason="Completed" if code == 0 else "Error",
                finished_at=now_iso(),
            )
            with contextlib.suppress(Exception):
                await self.publish(phase="Succeeded" if code == 0 else "Failed")
        if not self.gone:
            await self.runtime.api.remove(self.namespace, self.name, self.uid)

    async def _kill(self) -> None:
        container = self.container
        if container is None:
            return
        if not container.exited:
            with contextlib.suppress(ProcessLookupError):
                container.process.kill()
            await container.process.wait()
        for task in container.tasks:
            task.cancel()

    # -------------------------------------------------------------------------------- status

    async def publish(self, phase: str | None = None) -> None:
        """Write the pod status the kubelet would report, when it differs from the last one written."""
        if self.state is None or self.gone:
            return
        async with self._publish_lock:
            if phase is None:
                phase = "Running" if self.state.phase == "running" else "Pending"
                if self.state.reason == "CrashLoopBackOff":
                    phase = "Running"
            node = self.pod["spec"].get("nodeName")
            status = pod_status(
                self.state,
                phase,
                self.pod_ip,
                self.runtime.node_ip(node) if node else None,
                self.start_time,
                (self.pod.get("status") or {}).get("conditions") or [],
                now_iso(),
            )
            comparable = {**status, "conditions": [(c["type"], c["status"]) for c in status["conditions"]]}
            if comparable == self._published:
                return
            from kubernetes.client.exceptions import ApiException

            try:
                await self.runtime.api.patch_status(self.namespace, self.name, status)
            except ApiException as error:
                if error.status == 404:
                    self.gone = True
                    return
                raise
            self._published = comparable


class PodRuntime:
    """All PodWorkers, the node cache they consult, and the shared probe client."""

    def __init__(
        self, api_client: Any, allocator: AddressAllocator, log_dir: Path, model_load_seconds: float = 0.0
    ) -> None:
        self.api = PodApi(api_client)
        # The simulator's simulated model load (SIM_STARTUP_DELAY_S), unless the pod sets its own.
        self.model_load_seconds = model_load_seconds
        self.allocator = allocator
        self.log_dir = log_dir
        self.workers: dict[str, PodWorker] = {}
        self.nodes: dict[str, dict[str, Any]] = {}
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        for worker in list(self.workers.values()):
            if worker.task is not None:
                worker.task.cancel()
        await asyncio.gather(*(w.task for w in self.workers.values() if w.task), return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    # -------------------------------------------------------------------------------- cache

    def node_ready(self, name: str) -> bool:
        node = self.nodes.get(name)
        if node is None:
            return False
        for condition in (node.get("status") or {}).get("conditions") or []:
            if condition.get("type") == "Ready":
                return bool(condition.get("status") == "True")
        return False

    def node_ip(self, name: str) -> str | None:
        node = self.nodes.get(name) or {}
        for address in (node.get("status") or {}).get("addresses") or []:
            if address.get("type") == "InternalIP":
                return str(address["address"])
        return None

    def on_node(self, event: str, node: dict[str, Any]) -> None:
        name = node["metadata"]["name"]
        was_ready = self.node_ready(name)
        if event == "DELETED":
            self.nodes.pop(name, None)
        else:
            self.nodes[name] = node
        if self.node_ready(name) != was_ready:
            for worker in self.workers.values():
                if worker.pod["spec"].get("nodeName") == name:
                    worker.changed.set()

    def on_pod(self, event: str, pod: dict[str, Any]) -> None:
        if not runs_simulator(pod):
            return
        uid = pod["metadata"]["uid"]
        worker = self.workers.get(uid)
        if event == "DELETED":
            if worker is not None:
                worker.gone = True
                worker.changed.set()
            return
        if worker is None:
            if pod["metadata"].get("deletionTimestamp") and not pod["spec"].get("nodeName"):
                return
            worker = PodWorker(self, pod)
            self.workers[uid] = worker
            worker.task = asyncio.create_task(worker.run(), name=f"pod {worker.key}")
        else:
            worker.update(pod)

    def forget(self, worker: PodWorker) -> None:
        if self.workers.get(worker.uid) is worker:
            del self.workers[worker.uid]

    def address_of(self, namespace: str, name: str) -> str | None:
        for worker in self.workers.values():
            if worker.namespace == namespace and worker.name == name:
                return worker.address
        return None

    # -------------------------------------------------------------------------------- probes

    async def probe(self, address: str, probe: Probe) -> bool:
        """One httpGet probe: success for any 2xx or 3xx answer within the timeout."""
        if self._session is None:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
        url = f"http://{require_loopback(address)}:{probe.port}{probe.path}"
        try:
            async with self._session.get(
                url, timeout=aiohttp.ClientTimeout(total=probe.timeout_seconds), allow_redirects=False
            ) as response:
                return 200 <= response.status < 400
        except (aiohttp.ClientError, TimeoutError, OSError):
            return False
