"""A real Kubernetes control plane as local processes: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok (which plays every kubelet), on free loopback ports, with TLS and service-account keys.

Timings are shortened for tests and stated here: a NotReady node's pods are evicted after 5 s (production
default: 300 s, from the DefaultTolerationSeconds admission plugin), and a node that stops renewing its
lease is marked NotReady after 20 s (production default: 50 s). HorizontalPodAutoscalers are evaluated every
5 s (kube-controller-manager --horizontal-pod-autoscaler-sync-period; production default: 15 s).

The API server runs the aggregation layer (front-proxy CA and client certificate, --requestheader-*), and
with `monitoring` on (the default) the cluster also runs Prometheus and prometheus-adapter
(`localcluster.monitoring`): HorizontalPodAutoscalers scale on metrics Prometheus really scraped.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from localcluster import fleet as fleet_module
from localcluster.podspec import kwok_exclusion
from localcluster.tools import (
    CLUSTER_TOOLS,
    CONTROL_PLANE_TOOLS,
    KEDA_TOOLS,
    ProvidedTool,
    ensure_crds,
    ensure_tools,
)

STAGES_DIR = Path(__file__).parent / "stages"
SERVICE_CIDR = "10.96.0.0/16"
NOT_READY_TOLERATION_SECONDS = 5
NODE_MONITOR_GRACE_PERIOD = "20s"
HPA_SYNC_PERIOD = "5s"
# The aggregation layer's CA and the client certificate the API server proxies with (its CN is the one
# name aggregated API servers accept in --requestheader-allowed-names).
FRONT_PROXY_CA = "front-proxy-ca"
FRONT_PROXY_CLIENT = "front-proxy-client"
_PR_SET_PDEATHSIG = 1


class ClusterError(RuntimeError):
    """The local cluster could not start or stop; the message says what to look at."""


def log(message: str) -> None:
    print(f"[localcluster] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _die_with_parent() -> None:
    """Ask the kernel to SIGKILL this child when the process that started it dies abruptly.

    SIGKILL, not SIGTERM: with etcd gone at the same moment, the API server's graceful shutdown hangs.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ClusterError(f"openssl {' '.join(args)} failed: {result.stderr.strip()}")


def write_pki(directory: Path) -> None:
    """A CA, the API server's serving certificate, an admin client certificate and service-account keys;
    and the aggregation layer's own CA (front-proxy-ca) with the client certificate the API server shows
    aggregated API servers (custom and external metrics) when it proxies a request to them."""
    directory.mkdir(parents=True, exist_ok=True)
    for key in ("ca", "sa", FRONT_PROXY_CA):
        _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{key}.key", cwd=directory)
    _openssl("ec", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=directory)
    for ca, subject in (("ca", "/CN=localcluster-ca"), (FRONT_PROXY_CA, "/CN=localcluster-front-proxy-ca")):
        _openssl(
            "req", "-x509", "-new", "-key", f"{ca}.key", "-subj", subject, "-days", "3650",
            "-out", f"{ca}.crt", cwd=directory,
        )  # fmt: skip
    issue_certificate(
        directory,
        "apiserver",
        "/CN=kube-apiserver",
        "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,"
        "DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n"
        "extendedKeyUsage=serverAuth\n",
    )
    issue_certificate(
        directory, "admin", "/O=system:masters/CN=localcluster-admin", "extendedKeyUsage=clientAuth\n"
    )
    issue_certificate(
        directory,
        FRONT_PROXY_CLIENT,
        f"/CN={FRONT_PROXY_CLIENT}",
        "extendedKeyUsage=clientAuth\n",
        ca=FRONT_PROXY_CA,
    )


def issue_certificate(directory: Path, name: str, subject: str, extension: str, ca: str = "ca") -> None:
    """`<name>.key` and `<name>.crt` signed by `<ca>.crt` in `directory`, with these X.509v3 extensions."""
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{name}.key", cwd=directory)
    (directory / f"{name}.ext").write_text(extension)
    _openssl("req", "-new", "-key", f"{name}.key", "-subj", subject, "-out", f"{name}.csr", cwd=directory)
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-CAcreateserial",
        "-days", "3650", "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=directory,
    )  # fmt: skip


def kwok_stages() -> list[dict[str, Any]]:
    """kwok's Stages from stages/, with the pods the data plane runs (simulator pods) left out of every
    Pod stage: their status comes from a real process and its probes, not from a template."""
    documents: list[dict[str, Any]] = []
    for path in sorted(STAGES_DIR.glob("*.yaml")):
        stage = yaml.safe_load(path.read_text())
        if stage["spec"]["resourceRef"]["kind"] == "Pod":
            stage["spec"]["selector"]["matchExpressions"].append(kwok_exclusion())
        documents.append(stage)
    return documents


def kubeconfig_document(server: str, pki: Path) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "localcluster",
                "cluster": {"server": server, "certificate-authority": str(pki / "ca.crt")},
            }
        ],
        "users": [
            {
                "name": "localcluster-admin",
                "user": {
                    "client-certificate": str(pki / "admin.crt"),
                    "client-key": str(pki / "admin.key"),
                },
            }
        ],
        "contexts": [
            {"name": "localcluster", "context": {"cluster": "localcluster", "user": "localcluster-admin"}}
        ],
        "current-context": "localcluster",
    }


@dataclass
class LocalCluster:
    """Start with `start()` (or as a context manager); `stop()` leaves no process or port behind."""

    workdir: Path
    fleet_file: Path = fleet_module.DEFAULT_FLEET
    # Tie the processes to this Python process (tests) or let them outlive it (`make cluster`).
    tie_to_parent: bool = True
    # CRDs installed before the controllers start: the garbage collector discovers resource types only
    # at start and then every 30 s, and until it knows a kind it leaves that kind's children behind.
    crds: Sequence[Path] = ()
    # Prometheus (configured from ServiceMonitors and PrometheusRules) and prometheus-adapter serving
    # custom.metrics.k8s.io (the README has their start time and memory).
    monitoring: bool = True
    # KEDA's operator and metrics API server (external.metrics.k8s.io) and its CRDs: for ScaledObjects.
    keda: bool = False
    # How long Prometheus keeps samples: long enough for backfilled history (`backfill`; the predictive
    # tests hold 7 days and a bit).
    prometheus_retention: str = "15d"
    # Seconds every simulator pod spends "loading the model" before /health answers 200 (the
    # simulator's SIM_STARTUP_DELAY_S): a real replica takes minutes to start; 0 by default.
    model_load_seconds: float = 0.0
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def state_file(self) -> Path:
        return self.workdir / "state.json"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports['apiserver']}"

    @property
    def prometheus_url(self) -> str:
        """Base URL of the cluster's Prometheus (HTTP API under /api/v1); only with `monitoring`."""
        if "prometheus" not in self.ports:
            raise ClusterError("this local cluster runs without monitoring: no Prometheus")
        return f"http://127.0.0.1:{self.ports['prometheus']}"

    def backfill(self, lines: Iterator[str]) -> None:
        """Write OpenMetrics history into the Prometheus data directory as TSDB blocks (promtool
        `tsdb create-blocks-from openmetrics`); Prometheus loads them at its next block reload (every
        minute): wait with `localcluster.history.wait_for_history`."""
        from localcluster.history import backfill

        if "prometheus" not in self.ports:
            raise ClusterError("this local cluster runs without monitoring: no Prometheus to backfill")
        backfill(ensure_tools(["promtool"])["promtool"].path, self.workdir / "prometheus" / "data", lines)

    def prometheus_query(self, expr: str) -> list[dict[str, Any]]:
        """An instant PromQL query against the cluster's Prometheus: the result vector."""
        from localcluster.monitoring import prometheus_query

        return prometheus_query(self.prometheus_url, expr)

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # ------------------------------------------------------------------------------------------ start

    def start(self) -> None:
        started = time.monotonic()
        if self.state_file.exists():
            raise ClusterError(
                f"a local cluster already runs from {self.workdir} (see {self.state_file}): "
                "stop it with `make cluster-down` or pick another directory"
            )
        tools = ensure_tools(
            [*(CLUSTER_TOOLS if self.monitoring else CONTROL_PLANE_TOOLS), *(KEDA_TOOLS if self.keda else ())]
        )
        for stale in ("etcd", "pki", "logs"):
            shutil.rmtree(self.workdir / stale, ignore_errors=True)
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "logs").mkdir()
        pki = self.workdir / "pki"
        write_pki(pki)
        self.ports = {name: free_port() for name in ("etcd", "etcd-peer", "apiserver", "kwok")}
        try:
            self._start_etcd(tools)
            self._start_apiserver(tools, pki)
            self.kubeconfig.write_text(yaml.safe_dump(kubeconfig_document(self.server, pki)))
            self._write_state()
            self._install_crds()
            self._start_controllers(tools, pki)
            from localcluster import monitoring

            if self.monitoring:
                monitoring.start(self, tools, pki)
            if self.keda:
                monitoring.start_keda(self, tools, pki)
            self._create_fleet()
            self._wait_for("the default ServiceAccount", self._default_service_account_exists, 60)
            if self.monitoring:
                monitoring.wait_until_ready(self)
            if self.keda:
                monitoring.wait_until_keda_ready(self)
        except BaseException:
            self.stop()
            raise
        log(f"cluster ready in {time.monotonic() - started:.1f}s: export KUBECONFIG={self.kubeconfig}")

    def _spawn(self, name: str, command: list[str], env: dict[str, str] | None = None) -> None:
        log_path = self.workdir / "logs" / f"{name}.log"
        with log_path.open("ab") as log_file:
            process = subprocess.Popen(
                command,
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent if self.tie_to_parent else None,
            )
        self.processes[name] = process
        self._write_state()

    def _write_state(self) -> None:
        state = {
            "kubeconfig": str(self.kubeconfig),
            "server": self.server if "apiserver" in self.ports else None,
            "ports": self.ports,
            "prometheus_url": self.prometheus_url if "prometheus" in self.ports else None,
            "pids": {name: process.pid for name, process in self.processes.items()},
        }
        self.state_file.write_text(json.dumps(state, indent=2))

    def _start_etcd(self, tools: dict[str, ProvidedTool]) -> None:
        client = f"http://127.0.0.1:{self.ports['etcd']}"
        peer = f"http://127.0.0.1:{self.ports['etcd-peer']}"
        self._spawn(
            "etcd",
            [
                str(tools["etcd"].path),
                "--name=localcluster",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=localcluster={peer}",
                "--unsafe-no-fsync",  # test data: durability is not needed, speed is
                "--log-level=warn",
            ],
        )
        self._wait_for("etcd", lambda: self._http_ok(f"{client}/health"), 30, process="etcd")

    def _start_apiserver(self, tools: dict[str, ProvidedTool], pki: Path) -> None:
        self._spawn(
            "kube-apiserver",
            [
                str(tools["kube-apiserver"].path),
                f"--etcd-servers=http://127.0.0.1:{self.ports['etcd']}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.ports['apiserver']}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--authorization-mode=RBAC",
                "--allow-privileged=true",
                f"--default-not-ready-toleration-seconds={NOT_READY_TOLERATION_SECONDS}",
                f"--default-unreachable-toleration-seconds={NOT_READY_TOLERATION_SECONDS}",
                "--endpoint-reconciler-type=none",  # no real network: 127.0.0.1 is not a valid endpoint
                # The aggregation layer (custom.metrics.k8s.io, external.metrics.k8s.io): the API server
                # proxies with this client certificate and aggregated servers trust it by this CA and name.
                f"--requestheader-client-ca-file={pki / (FRONT_PROXY_CA + '.crt')}",
                f"--requestheader-allowed-names={FRONT_PROXY_CLIENT}",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={pki / (FRONT_PROXY_CLIENT + '.crt')}",
                f"--proxy-client-key-file={pki / (FRONT_PROXY_CLIENT + '.key')}",
            ],
        )
        self._wait_for(
            "kube-apiserver", lambda: self._http_ok(f"{self.server}/readyz"), 90, process="kube-apiserver"
        )

    def _start_controllers(self, tools: dict[str, ProvidedTool], pki: Path) -> None:
        kubeconfig = f"--kubeconfig={self.kubeconfig}"
        self._spawn(
            "kube-controller-manager",
            [
                str(tools["kube-controller-manager"].path),
                kubeconfig,
                "--leader-elect=false",
                "--secure-port=0",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--root-ca-file={pki / 'ca.crt'}",
                f"--cluster-signing-cert-file={pki / 'ca.crt'}",
                f"--cluster-signing-key-file={pki / 'ca.key'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--node-monitor-period=2s",
                f"--node-monitor-grace-period={NODE_MONITOR_GRACE_PERIOD}",
                f"--horizontal-pod-autoscaler-sync-period={HPA_SYNC_PERIOD}",
                # A pod whose node is gone is garbage-collected after this many seconds (default 40).
                "--controllers=*",
            ],
        )
        self._spawn(
            "kube-scheduler",
            [str(tools["kube-scheduler"].path), kubeconfig, "--leader-elect=false", "--secure-port=0"],
        )
        stages = self.workdir / "kwok-stages.yaml"
        stages.write_text(yaml.safe_dump_all(kwok_stages()))
        self._spawn(
            "kwok",
            [
                str(tools["kwok"].path),
                kubeconfig,
                f"--config={stages}",
                "--manage-all-nodes=true",
                "--node-lease-duration-seconds=40",
                f"--server-address=127.0.0.1:{self.ports['kwok']}",
                "--cidr=10.244.0.0/16",
                "--node-ip=10.0.0.1",
            ],
        )
        self._start_dataplane()

    def _start_dataplane(self) -> None:
        """The pod runtime and Service proxy (`localcluster.dataplane`), with this interpreter."""
        from localcluster.dataplane import READY_FILE

        (self.workdir / READY_FILE).unlink(missing_ok=True)
        self._spawn(
            "dataplane",
            [
                sys.executable,
                "-m",
                "localcluster.dataplane",
                f"--kubeconfig={self.kubeconfig}",
                f"--workdir={self.workdir}",
                f"--model-load-seconds={self.model_load_seconds}",
            ],
            # The harness's own package (e2e/), whatever the caller's PYTHONPATH.
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join(
                    [str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")]
                ),
            },
        )
        self._wait_for("the data plane", (self.workdir / READY_FILE).exists, 30, process="dataplane")

    def service_url(self, namespace: str, name: str, port_name: str = "http") -> str:
        """`http://<loopback>:<port>` of a Service, through the data plane's Service proxy."""
        from localcluster.serviceproxy import service_address

        address, port = service_address(self.workdir, namespace, name, port_name)
        return f"http://{address}:{port}"

    def _install_crds(self) -> None:
        from localcluster.crds import apply_crd

        # The ServiceMonitor and PrometheusRule CRDs come with monitoring (the operator creates both).
        crds = [
            *self.crds,
            *(ensure_crds("prometheus-operator") if self.monitoring else []),
            *(ensure_crds("keda") if self.keda else []),
        ]
        for path in crds:
            apply_crd(self.api_client(), yaml.safe_load(path.read_text()))
        if crds:
            log(f"installed {len(crds)} CRD(s) before the controllers started")

    # ------------------------------------------------------------------------------------------ fleet

    def api_client(self) -> Any:
        from localcluster.kube import api_client_for

        return api_client_for(self.kubeconfig)

    def _create_fleet(self) -> None:
        log(f"creating the fleet of {self.fleet_file.name}")
        self.restore_fleet()

    def restore_fleet(self) -> None:
        """Recreate removed fleet nodes and clear injected node faults; returns when every node is Ready."""
        from kubernetes import client

        from localcluster.faults import FAULT_LABEL

        nodes = fleet_module.fleet_nodes(fleet_module.load_fleet(self.fleet_file))
        # Any: the client's typed API wants model objects; plain dicts are what the fleet renders.
        core: Any = client.CoreV1Api(self.api_client())
        existing = {node.metadata.name: node for node in core.list_node().items}
        for node in nodes:
            name = node["metadata"]["name"]
            if name not in existing:
                core.create_node(body=node)
                # Node status is not taken from a create request: set capacity through the status subresource.
                core.patch_node_status(name, {"status": node["status"]})
            elif FAULT_LABEL in (existing[name].metadata.labels or {}):
                core.patch_node(name, {"metadata": {"labels": {FAULT_LABEL: None}}})
        names = {node["metadata"]["name"] for node in nodes}

        def all_ready() -> bool:
            not_ready = names - self._ready_nodes(core)
            if not_ready:
                raise ClusterError(f"{len(not_ready)} not Ready yet: {', '.join(sorted(not_ready))}")
            return True

        self._wait_for("fleet nodes Ready", all_ready, 60)

    def add_fleet(self, fleet_file: Path, name: str) -> list[str]:
        """Add the nodes of another fleet file (its own regions and zones, e.g. fleets/gke.yaml), labelled
        with fleet `name`; returns their names once they are Ready. Creating one that exists is skipped."""
        from kubernetes import client

        nodes = fleet_module.fleet_nodes(fleet_module.load_fleet(fleet_file), fleet_name=name)
        core: Any = client.CoreV1Api(self.api_client())
        existing = {node.metadata.name for node in core.list_node().items}
        for node in nodes:
            if node["metadata"]["name"] not in existing:
                core.create_node(body=node)
                core.patch_node_status(node["metadata"]["name"], {"status": node["status"]})
        names = {node["metadata"]["name"] for node in nodes}

        def all_ready() -> bool:
            not_ready = names - self._ready_nodes(core)
            if not_ready:
                raise ClusterError(f"{len(not_ready)} not Ready yet: {', '.join(sorted(not_ready))}")
            return True

        self._wait_for(f"the nodes of {fleet_file.name} Ready", all_ready, 60)
        return sorted(names)

    def remove_fleet(self, name: str) -> list[str]:
        """Delete the nodes `add_fleet` added under `name`."""
        from kubernetes import client

        core: Any = client.CoreV1Api(self.api_client())
        names = [
            n.metadata.name for n in core.list_node(label_selector=f"{fleet_module.FLEET_LABEL}={name}").items
        ]
        for node in names:
            core.delete_node(node)
        return sorted(names)

    @staticmethod
    def _ready_nodes(core: Any) -> set[str]:
        ready: set[str] = set()
        for node in core.list_node().items:
            # The node lifecycle controller lifts its not-ready/unreachable taints a moment after Ready.
            lifecycle_taints = [t for t in node.spec.taints or [] if t.key.startswith("node.kubernetes.io/")]
            for condition in node.status.conditions or []:
                if condition.type == "Ready" and condition.status == "True" and not lifecycle_taints:
                    ready.add(node.metadata.name)
        return ready

    def _default_service_account_exists(self) -> bool:
        """True once it exists; the API's answer (404 until the controller creates it) is the reason."""
        from kubernetes import client

        client.CoreV1Api(self.api_client()).read_namespaced_service_account("default", "default")
        return True

    # ------------------------------------------------------------------------------------------ waiting

    def _http_ok(self, url: str) -> bool:
        """True on 200; otherwise raises with what answered (or did not), for `_wait_for` to report."""
        context = ssl.create_default_context(cafile=str(self.workdir / "pki" / "ca.crt"))
        context.load_cert_chain(
            str(self.workdir / "pki" / "admin.crt"), str(self.workdir / "pki" / "admin.key")
        )
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as response:  # noqa: S310 (loopback)
                if int(response.status) == 200:
                    return True
                raise ClusterError(f"{url} answered {response.status}")
        except urllib.error.HTTPError as error:
            body = error.read().decode(errors="replace").strip()
            raise ClusterError(f"{url} answered {error.code}: {body[-500:]}") from error

    def _wait_for(
        self, what: str, check: Callable[[], bool], timeout: float, process: str | None = None
    ) -> None:
        """Poll `check` until it returns True. A check says why it is not there yet by raising; on
        timeout the error names the last reason (a refused connection, a 500 from /readyz, ...)."""
        deadline = time.monotonic() + timeout
        last = "the check never ran"
        while True:
            if process and self.processes[process].poll() is not None:
                raise ClusterError(
                    f"{process} exited with code {self.processes[process].returncode}: "
                    f"see {self.workdir / 'logs' / (process + '.log')}\n{self._log_tail(process)}"
                )
            try:
                if check():
                    return
                last = "the check returned False"
            except Exception as error:  # any failure of the check is the reason to report
                last = f"{type(error).__name__}: {error}"[:1000]
            if time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        raise ClusterError(
            f"timed out after {timeout:.0f}s waiting for {what}; last error: {last}; "
            f"logs are in {self.workdir / 'logs'}"
        )

    def _log_tail(self, process: str, lines: int = 20) -> str:
        path = self.workdir / "logs" / f"{process}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    # ------------------------------------------------------------------------------------------ stop

    def stop(self) -> None:
        pids = {name: process.pid for name, process in self.processes.items()}
        stop_processes(pids)
        for process in self.processes.values():
            with contextlib.suppress(Exception):
                process.wait(timeout=1)
        self.processes.clear()
        self.state_file.unlink(missing_ok=True)
        shutil.rmtree(self.workdir / "etcd", ignore_errors=True)


def stop_processes(pids: dict[str, int], timeout: float = 10) -> None:
    """Stop each process group in reverse start order, each before the next: kwok and the controllers
    first, the API server while etcd still answers (its graceful shutdown needs etcd), etcd last."""
    for name, pid in reversed(list(pids.items())):
        try:
            os.killpg(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            continue
        log(f"stopping {name} (pid {pid})")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
        if _alive(pid):
            log(f"{name} (pid {pid}) ignored SIGTERM for {timeout:.0f}s: killing it")
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        # Not our child (the CLI that started it has exited): ask the kernel whether it still exists.
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return _not_zombie(pid)
    return finished == 0


def _not_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def stop_from_state(workdir: Path) -> bool:
    """Stop a cluster started by another process (`make cluster-down`); False when none runs there."""
    state_file = workdir / "state.json"
    if not state_file.exists():
        return False
    state = json.loads(state_file.read_text())
    stop_processes({name: int(pid) for name, pid in state["pids"].items()})
    state_file.unlink()
    shutil.rmtree(workdir / "etcd", ignore_errors=True)
    return True
