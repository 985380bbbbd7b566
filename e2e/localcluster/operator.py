"""Install the operator's cluster-wide pieces and run the operator as a real process, for dev and tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from localcluster.addresses import LOOPBACK_ADDRESS_ANNOTATION
from localcluster.cluster import LocalCluster, free_port
from localcluster.crds import apply_crd
from localcluster.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = REPO_ROOT / "crds" / "serving.deepseek-operator.io_deepseekdeployments.yaml"


def install_crd_and_priority_classes(api_client: client.ApiClient) -> None:
    """What the Helm chart installs cluster-wide: the CRD and the tier PriorityClasses."""
    from deepseek_operator.render.priority import render_priority_classes

    apply_crd(api_client, yaml.safe_load(CRD_FILE.read_text()))
    scheduling: Any = client.SchedulingV1Api(api_client)  # Any: the typed API wants models, we have dicts
    for priority_class in render_priority_classes():
        try:
            scheduling.create_priority_class(priority_class)
        except ApiException as error:
            if error.status != 409:
                raise


# The operator runs on this machine, outside the pod network: it probes each pod's engine at the loopback
# address the pod runtime records on the pod, never at the pod IP (which belongs to nobody).
PROBE_ADDRESS_ARGUMENT = f"--probe-address-annotation={LOOPBACK_ADDRESS_ANNOTATION}"


@dataclass
class OperatorProcess:
    """`deepseek-operator` as a child process against a kubeconfig; its log goes to `log_path`.

    It always gets `--probe-address-annotation` with the pod runtime's loopback annotation (the failover
    controller's engine probes stay on loopback)."""

    kubeconfig: Path
    log_path: Path
    extra_args: list[str] = field(default_factory=list)
    start_timeout: float = 60
    # A local cluster whose Prometheus should scrape the operator's metrics (as the chart's
    # ServiceMonitor has Prometheus scrape the operator's Service), every `scrape_interval`.
    monitored_by: LocalCluster | None = None
    scrape_interval: str = "1s"
    process: subprocess.Popen[bytes] | None = None
    liveness_url: str = ""
    metrics_address: str = ""
    _log: IO[bytes] | None = None

    def start(self) -> None:
        self.metrics_address = f"127.0.0.1:{free_port()}"
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "DEEPSEEK_OPERATOR_METRICS_ADDRESS": self.metrics_address,
        }
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.liveness_url = f"http://127.0.0.1:{free_port()}/healthz"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "deepseek_operator",
                f"--liveness={self.liveness_url}",
                PROBE_ADDRESS_ARGUMENT,
                *self.extra_args,
            ],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            wait_until(
                lambda: self._live() or self._exited(), self.start_timeout, "the operator's liveness endpoint"
            )
        except BaseException:
            self.stop()  # a start that fails must not leave the operator running (nothing calls __exit__)
            raise
        if self._exited():
            self.stop()
            raise RuntimeError(f"the operator exited at start; its log:\n{self.log_tail()}")
        if self.monitored_by is not None and self.monitored_by.monitoring:
            from localcluster.monitoring import scrape_process

            scrape_process(
                self.monitored_by.workdir,
                self.monitored_by.prometheus_url,
                self._scrape_job,
                self.metrics_address,
                self.scrape_interval,
            )

    @property
    def _scrape_job(self) -> str:
        return "deepseek-operator-" + self.metrics_address.rpartition(":")[2]

    def _exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def _live(self) -> bool:
        try:
            with urllib.request.urlopen(self.liveness_url, timeout=2) as response:  # noqa: S310 (loopback)
                return int(response.status) == 200
        except (urllib.error.URLError, OSError):
            return False

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL: an operator crash, with no chance to finish anything."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.monitored_by is not None and self.monitored_by.monitoring and self.metrics_address:
            from localcluster.monitoring import stop_scraping_process

            stop_scraping_process(
                self.monitored_by.workdir, self.monitored_by.prometheus_url, self._scrape_job
            )
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> OperatorProcess:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
