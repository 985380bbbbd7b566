"""The local cluster's monitoring stack: a real Prometheus, the sync loop that configures it from the
cluster's ServiceMonitor and PrometheusRule objects (`localcluster.promsync`), and a real
prometheus-adapter serving `custom.metrics.k8s.io` through the API server's aggregation layer, so that
HorizontalPodAutoscalers scale on the metrics Prometheus scrapes. They listen on 127.0.0.1 only; so does
KEDA (`start_keda`), but for one listener of its metrics API server.

Prometheus scrapes only pods that carry a loopback address (`localcluster.addresses`): see
`localcluster.promconfig`. Timings are shortened for tests: global scrape and rule evaluation every 5 s
(prometheus-operator's default: 30 s), and the adapter re-lists the available series every 5 s
(`--metrics-relist-interval`, default 10 m) with series seen in the last 60 s (`--metrics-max-age`).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from localcluster import promsync
from localcluster.tools import ProvidedTool

if TYPE_CHECKING:
    from localcluster.cluster import LocalCluster

CHART = Path(__file__).resolve().parents[2] / "charts" / "deepseek-operator"
E2E_DIR = Path(__file__).resolve().parents[1]
# The aggregated API servers run on the host; their Services point at it (as kwokctl's binary runtime does).
SYSTEM_NAMESPACE = "kube-system"
ADAPTER_SERVICE = "prometheus-adapter"
CUSTOM_METRICS_GROUP = "custom.metrics.k8s.io"
CUSTOM_METRICS_VERSIONS = ("v1beta1", "v1beta2")
ADAPTER_RELIST_INTERVAL = "5s"
ADAPTER_MAX_AGE = "60s"
SYNC_INTERVAL_SECONDS = 1.0


class MonitoringError(RuntimeError):
    """The monitoring stack could not start; the message says what to look at."""


def adapter_rules(helm: Path) -> str:
    """prometheus-adapter's config.yaml exactly as the chart renders it (never a copy of the rules)."""
    command = [
        str(helm), "template", "localcluster", str(CHART),
        "--set", "prometheusAdapterRules.enabled=true",
        "--show-only", "templates/prometheus-adapter-rules.yaml",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise MonitoringError(f"{' '.join(command)} failed: {result.stderr.strip()}")
    rules: str = yaml.safe_load(result.stdout)["data"]["config.yaml"]
    return rules


def prometheus_api(prometheus_url: str, path: str, params: dict[str, str] | None = None) -> Any:
    """GET a Prometheus HTTP API path (e.g. /api/v1/targets) and return its `data`."""
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    with urllib.request.urlopen(f"{prometheus_url}{path}{query}", timeout=10) as response:  # noqa: S310 (loopback)
        body = json.loads(response.read())
    if body.get("status") != "success":
        raise MonitoringError(f"Prometheus {path}: {body}")
    return body["data"]


def prometheus_query(prometheus_url: str, expr: str) -> list[dict[str, Any]]:
    """An instant PromQL query; the result vector (each item has `metric` and `value`)."""
    data = prometheus_api(prometheus_url, "/api/v1/query", {"query": expr})
    result: list[dict[str, Any]] = data["result"]
    return result


def _prometheus_ready(prometheus_url: str) -> bool:
    with urllib.request.urlopen(f"{prometheus_url}/-/ready", timeout=2) as response:  # noqa: S310 (loopback)
        return int(response.status) == 200


def start(cluster: LocalCluster, tools: dict[str, ProvidedTool], pki: Path) -> None:
    """Start Prometheus, its sync loop and prometheus-adapter, and register the custom metrics API.

    Returns without waiting: `wait_until_ready` does, so the rest of the cluster starts meanwhile.
    """
    from localcluster.cluster import issue_certificate

    for name in ("prometheus", "prometheus-adapter"):
        cluster.ports[name] = cluster.ports.get(name) or _free_port()
    config_dir = cluster.workdir / "prometheus"
    shutil.rmtree(config_dir, ignore_errors=True)
    url = cluster.prometheus_url
    promtool = tools["promtool"].path if "promtool" in tools else None
    custom: Any = _custom_objects(cluster)
    promsync.sync_files(
        config_dir,
        cluster.kubeconfig,
        promsync.list_objects(custom, "servicemonitors"),
        promsync.list_objects(custom, "prometheusrules"),
        promtool,
    )
    cluster._spawn(
        "prometheus",
        [
            str(tools["prometheus"].path),
            f"--config.file={config_dir / 'prometheus.yml'}",
            f"--storage.tsdb.path={config_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{cluster.ports['prometheus']}",
            "--web.enable-lifecycle",  # POST /-/reload, used by the sync loop
            f"--storage.tsdb.retention.time={cluster.prometheus_retention}",
            "--log.level=warn",
        ],
    )
    cluster._spawn(
        "promsync",
        [
            sys.executable, "-m", "localcluster.promsync",
            f"--kubeconfig={cluster.kubeconfig}",
            f"--config-dir={config_dir}",
            f"--prometheus-url={url}",
            f"--interval={SYNC_INTERVAL_SECONDS}",
            *([f"--promtool={promtool}"] if promtool else []),
        ],
        env=python_env(),
    )  # fmt: skip

    adapter_dir = cluster.workdir / "prometheus-adapter"
    shutil.rmtree(adapter_dir, ignore_errors=True)
    adapter_dir.mkdir(parents=True)
    (adapter_dir / "config.yaml").write_text(adapter_rules(tools["helm"].path))
    # The aggregator checks the serving certificate against the APIService's caBundle, for the Service's name.
    issue_certificate(
        pki,
        "prometheus-adapter",
        "/CN=prometheus-adapter",
        f"subjectAltName=DNS:{ADAPTER_SERVICE}.{SYSTEM_NAMESPACE}.svc,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    cluster._spawn(
        "prometheus-adapter",
        [
            str(tools["prometheus-adapter"].path),
            f"--lister-kubeconfig={cluster.kubeconfig}",
            f"--authentication-kubeconfig={cluster.kubeconfig}",
            f"--authorization-kubeconfig={cluster.kubeconfig}",
            f"--prometheus-url={url}/",
            f"--config={adapter_dir / 'config.yaml'}",
            f"--metrics-relist-interval={ADAPTER_RELIST_INTERVAL}",
            f"--metrics-max-age={ADAPTER_MAX_AGE}",
            "--bind-address=127.0.0.1",
            f"--secure-port={cluster.ports['prometheus-adapter']}",
            f"--cert-dir={adapter_dir}",
            f"--tls-cert-file={pki / 'prometheus-adapter.crt'}",
            f"--tls-private-key-file={pki / 'prometheus-adapter.key'}",
        ],
    )
    register_api_service(
        cluster.api_client(),
        ADAPTER_SERVICE,
        cluster.ports["prometheus-adapter"],
        CUSTOM_METRICS_GROUP,
        CUSTOM_METRICS_VERSIONS,
        (pki / "ca.crt").read_bytes(),
    )


def wait_until_ready(cluster: LocalCluster) -> None:
    """Prometheus answers, and the API server serves custom.metrics.k8s.io (its APIServices are Available)."""
    cluster._wait_for(
        "Prometheus", lambda: _prometheus_ready(cluster.prometheus_url), 60, process="prometheus"
    )
    api_client = cluster.api_client()
    for version in CUSTOM_METRICS_VERSIONS:
        cluster._wait_for(
            f"APIService {version}.{CUSTOM_METRICS_GROUP} to be Available",
            functools.partial(api_service_available, api_client, f"{version}.{CUSTOM_METRICS_GROUP}"),
            90,
            process="prometheus-adapter",
        )


def register_api_service(
    api_client: Any,
    service: str,
    port: int,
    group: str,
    versions: tuple[str, ...],
    ca_bundle: bytes,
    namespace: str = SYSTEM_NAMESPACE,
) -> None:
    """An ExternalName Service at 127.0.0.1 and one APIService per version pointing at it."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core: Any = client.CoreV1Api(api_client)
    registration: Any = client.ApiregistrationV1Api(api_client)
    body = {
        "metadata": {"name": service, "namespace": namespace},
        "spec": {
            "type": "ExternalName",
            "externalName": "127.0.0.1",
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        },
    }
    try:
        core.create_namespaced_service(namespace, body)
    except ApiException as error:
        if error.status != 409:
            raise
        core.patch_namespaced_service(service, namespace, {"spec": body["spec"]})
    for priority, version in enumerate(versions, start=1):
        name = f"{version}.{group}"
        api_service: dict[str, Any] = {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": name},
            "spec": {
                "group": group,
                "version": version,
                "service": {"name": service, "namespace": namespace, "port": port},
                "caBundle": base64.b64encode(ca_bundle).decode(),
                "groupPriorityMinimum": 100,
                "versionPriority": 100 * priority,
            },
        }
        try:
            registration.create_api_service(api_service)
        except ApiException as error:
            if error.status != 409:
                raise
            current = registration.read_api_service(name)
            api_service["metadata"]["resourceVersion"] = current.metadata.resource_version
            registration.replace_api_service(name, api_service)


def api_service_available(api_client: Any, name: str) -> bool:
    from kubernetes import client

    registration: Any = client.ApiregistrationV1Api(api_client)
    conditions = registration.read_api_service(name).status.conditions or []
    return any(c.type == "Available" and c.status == "True" for c in conditions)


def python_env() -> dict[str, str]:
    """The environment of a `python -m localcluster...` child: it must find the harness (pytest's
    `pythonpath` setting changes sys.path only, not the environment)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(E2E_DIR), env.get("PYTHONPATH")]))
    return env


def _custom_objects(cluster: LocalCluster) -> Any:
    from kubernetes import client

    return client.CustomObjectsApi(cluster.api_client())


def _free_port() -> int:
    from localcluster.cluster import free_port

    return free_port()


# ------------------------------------------------------------------------------------------------ KEDA

KEDA_NAMESPACE = "keda"
KEDA_OPERATOR_SERVICE = "keda-operator"
KEDA_METRICS_SERVICE = "keda-metrics-apiserver"
EXTERNAL_METRICS_GROUP = "external.metrics.k8s.io"
EXTERNAL_METRICS_VERSIONS = ("v1beta1",)
# The discard port on loopback: nothing listens there, so a connection to it is refused at once.
DEAD_END_PROXY = "http://127.0.0.1:9"


def start_keda(cluster: LocalCluster, tools: dict[str, ProvidedTool], pki: Path) -> None:
    """Start KEDA's operator and metrics API server and register `external.metrics.k8s.io`.

    They talk gRPC over mutual TLS with the certificates in `--cert-dir` (ca.crt, tls.crt, tls.key; KEDA's
    own rotation is off, `--enable-cert-rotation=false`). The operator's Prometheus scaler queries each
    ScaledObject's serverAddress, which must be the local Prometheus: any other host is unreachable
    (`DEAD_END_PROXY`). The metrics API
    server's own /metrics listener binds every interface (KEDA builds its address as ":<--port>", no flag
    narrows it); everything else listens on 127.0.0.1.
    """
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    from localcluster.cluster import issue_certificate

    for name in (
        "keda-grpc",
        "keda-operator-metrics",
        "keda-operator-health",
        "keda-adapter",
        "keda-adapter-metrics",
    ):
        cluster.ports[name] = cluster.ports.get(name) or _free_port()
    core: Any = client.CoreV1Api(cluster.api_client())
    try:
        core.create_namespace({"metadata": {"name": KEDA_NAMESPACE}})
    except ApiException as error:
        if error.status != 409:
            raise
    keda_dir = cluster.workdir / "keda"
    shutil.rmtree(keda_dir, ignore_errors=True)
    certs = keda_dir / "certs"
    certs.mkdir(parents=True)
    issue_certificate(
        pki,
        "keda",
        f"/CN={KEDA_OPERATOR_SERVICE}",
        f"subjectAltName=DNS:{KEDA_OPERATOR_SERVICE},DNS:{KEDA_OPERATOR_SERVICE}.{KEDA_NAMESPACE}.svc,"
        f"DNS:{KEDA_METRICS_SERVICE}.{KEDA_NAMESPACE}.svc,IP:127.0.0.1\n"
        "extendedKeyUsage=serverAuth,clientAuth\n",
    )
    for source, target in (("ca.crt", "ca.crt"), ("keda.crt", "tls.crt"), ("keda.key", "tls.key")):
        shutil.copyfile(pki / source, certs / target)
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig),
        "WATCH_NAMESPACE": "",  # every namespace
        "POD_NAMESPACE": KEDA_NAMESPACE,
        "KEDA_CLUSTER_OBJECT_NAMESPACE": KEDA_NAMESPACE,
        # A scaler contacts whatever address a ScaledObject names. Go sends every request to a
        # non-loopback host through this proxy, where nothing listens: such requests fail on loopback
        # and no packet (not even a DNS query) leaves the machine. Loopback hosts are never proxied.
        **dict.fromkeys(("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"), DEAD_END_PROXY),
        "NO_PROXY": "",
        "no_proxy": "",
    }
    grpc = f"127.0.0.1:{cluster.ports['keda-grpc']}"
    cluster._spawn(
        "keda",
        [
            str(tools["keda"].path),
            "--leader-elect=false",
            f"--metrics-bind-address=127.0.0.1:{cluster.ports['keda-operator-metrics']}",
            f"--health-probe-bind-address=127.0.0.1:{cluster.ports['keda-operator-health']}",
            f"--metrics-service-bind-address={grpc}",
            f"--cert-dir={certs}",
            "--enable-cert-rotation=false",
            "--enable-webhook-patching=false",
            "--enable-apiservice-patching=false",
            f"--ca-dir={certs}",
        ],
        env=env,
    )
    cluster._spawn(
        "keda-adapter",
        [
            str(tools["keda-adapter"].path),
            f"--lister-kubeconfig={cluster.kubeconfig}",
            f"--authentication-kubeconfig={cluster.kubeconfig}",
            f"--authorization-kubeconfig={cluster.kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={cluster.ports['keda-adapter']}",
            f"--cert-dir={certs}",  # also the gRPC client's certificates
            f"--tls-cert-file={pki / 'keda.crt'}",
            f"--tls-private-key-file={pki / 'keda.key'}",
            f"--metrics-service-address={grpc}",
            f"--port={cluster.ports['keda-adapter-metrics']}",
        ],
        env=env,
    )
    register_api_service(
        cluster.api_client(),
        KEDA_METRICS_SERVICE,
        cluster.ports["keda-adapter"],
        EXTERNAL_METRICS_GROUP,
        EXTERNAL_METRICS_VERSIONS,
        (pki / "ca.crt").read_bytes(),
        namespace=KEDA_NAMESPACE,
    )


def wait_until_keda_ready(cluster: LocalCluster) -> None:
    api_client = cluster.api_client()
    for version in EXTERNAL_METRICS_VERSIONS:
        cluster._wait_for(
            f"APIService {version}.{EXTERNAL_METRICS_GROUP} to be Available",
            functools.partial(api_service_available, api_client, f"{version}.{EXTERNAL_METRICS_GROUP}"),
            120,
            process="keda-adapter",
        )


def operator_service_monitor_endpoint(helm: Path) -> dict[str, Any]:
    """The endpoint of the ServiceMonitor the chart renders for the operator (path, interval, honorLabels)."""
    command = [
        str(helm), "template", "localcluster", str(CHART),
        "--set", "metrics.serviceMonitor.enabled=true",
        "--show-only", "templates/servicemonitor.yaml",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise MonitoringError(f"{' '.join(command)} failed: {result.stderr.strip()}")
    (endpoint,) = yaml.safe_load(result.stdout)["spec"]["endpoints"]
    return dict(endpoint)


def scrape_process(
    workdir: Path, prometheus_url: str, name: str, address: str, interval: str | None = None
) -> None:
    """Have the cluster's Prometheus scrape a process that runs on this machine rather than in the
    cluster (the operator under `make dev` and the tests), with the chart's ServiceMonitor contract:
    its path and honorLabels (the operator's series carry their own `namespace` label)."""
    from localcluster.promconfig import STATIC_DIRECTORY, static_scrape_config
    from localcluster.tools import ensure_tools

    endpoint = operator_service_monitor_endpoint(ensure_tools(["helm"])["helm"].path)
    if interval is not None:
        endpoint["interval"] = interval
    target = workdir / "prometheus" / STATIC_DIRECTORY / f"{name}.yaml"
    promsync.write_if_changed(target, yaml.safe_dump(static_scrape_config(name, address, endpoint)))
    promsync.reload_prometheus(prometheus_url)


def stop_scraping_process(workdir: Path, prometheus_url: str, name: str) -> None:
    from localcluster.promconfig import STATIC_DIRECTORY

    target = workdir / "prometheus" / STATIC_DIRECTORY / f"{name}.yaml"
    if target.exists():
        target.unlink()
        with contextlib.suppress(OSError):
            promsync.reload_prometheus(prometheus_url)
