"""`make dev`: a local cluster with a simulated GPU fleet, the CRD, the operator, and a sample.

Runs until Ctrl-C (then stops everything it started), or exits once the sample is Ready with
`--exit-when-ready` (used by the test that keeps this command working).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from deepseek_operator.status import is_ready_for_its_generation
from kubernetes import client
from localcluster.cluster import LocalCluster
from localcluster.operator import CRD_FILE, OperatorProcess, install_crd_and_priority_classes
from localcluster.tools import ensure_tools
from localcluster.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SAMPLE = REPO_ROOT / "manifests" / "samples" / "production.yaml"
NAMESPACE = "deepseek-dev"


def say(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def is_ready(api: Any, name: str) -> bool:
    custom: Any = client.CustomObjectsApi(api)
    found = custom.get_namespaced_custom_object(
        "serving.deepseek-operator.io", "v1alpha1", NAMESPACE, "deepseekdeployments", name
    )
    return is_ready_for_its_generation(found)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sample", type=Path, default=DEFAULT_SAMPLE, help="DeepSeekDeployment to apply")
    parser.add_argument(
        "--dir", type=Path, default=REPO_ROOT / ".local-cluster" / "dev", help="state directory"
    )
    parser.add_argument("--exit-when-ready", action="store_true", help="stop once the sample is Ready")
    args = parser.parse_args()

    kubectl = str(ensure_tools(["kubectl"])["kubectl"].path)
    shutil.rmtree(args.dir, ignore_errors=True)
    cluster = LocalCluster(workdir=args.dir.resolve(), crds=[CRD_FILE])
    started = time.monotonic()
    with cluster:
        api = cluster.api_client()
        say("installing the CRD and the priority classes")
        install_crd_and_priority_classes(api)
        core: Any = client.CoreV1Api(api)  # Any: the typed client wants models; a dict is the manifest
        core.create_namespace({"metadata": {"name": NAMESPACE}})
        log_path = args.dir.resolve() / "operator.log"
        with OperatorProcess(cluster.kubeconfig, log_path) as operator:
            say(f"operator running (log: {log_path}, metrics: http://{operator.metrics_address}/metrics)")
            sample = yaml.safe_load(args.sample.read_text())
            name = sample["metadata"]["name"]

            def kubectl_run(*arguments: str) -> None:
                subprocess.run([kubectl, f"--kubeconfig={cluster.kubeconfig}", *arguments], check=False)

            applied_at = time.monotonic()
            kubectl_run("apply", "-n", NAMESPACE, "-f", str(args.sample))
            say(f"waiting for {name} to become Ready")
            wait_until(lambda: is_ready(api, name), 120, f"{name} to become Ready")
            say(
                f"{name} Ready {time.monotonic() - applied_at:.1f}s after apply "
                f"({time.monotonic() - started:.1f}s since start)"
            )
            kubectl_run("get", "dsd", "-n", NAMESPACE, "-o", "wide")
            kubectl_run(
                "get", "pods", "-n", NAMESPACE, "-o",
                "custom-columns=POD:.metadata.name,REGION:.metadata.labels.serving\\.deepseek-operator\\.io/region,"
                "POOL:.metadata.labels.serving\\.deepseek-operator\\.io/pool,NODE:.spec.nodeName,PHASE:.status.phase",
            )  # fmt: skip
            kubectl_run("get", "deployments,services,hpa,pdb", "-n", NAMESPACE)
            if args.exit_when_ready:
                return 0
            say(f"export KUBECONFIG={cluster.kubeconfig}   # in another shell, to look around")
            say(f"try: python -m localcluster --dir {args.dir} fail-region us-east   # (with PYTHONPATH=e2e)")
            say(
                f"spot short: python -m localcluster --dir {args.dir} cordon-pool h100-spot --region us-east; "
                f"kubectl delete pods -n {NAMESPACE} -l serving.deepseek-operator.io/pool=spot; after "
                "spot.fallback.pendingTimeoutSeconds, kubectl get dsd shows FALLBACK and FALLBACK-REASON"
            )
            say(
                f"spot interrupted: python -m localcluster --dir {args.dir} interrupt-node "
                "gpu-us-east-1a-h100-spot-0 --provider karpenter   # on-demand stand-ins at once"
            )
            say("Ctrl-C stops the operator and the cluster")
            try:
                while operator.process is not None and operator.process.poll() is None:
                    time.sleep(1)
            except KeyboardInterrupt:
                say("stopping")
            return 0 if operator.process is None or operator.process.poll() is None else 1


if __name__ == "__main__":
    sys.exit(main())
