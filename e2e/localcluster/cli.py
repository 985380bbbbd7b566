"""`python -m localcluster`: provide tools, start and stop a local cluster, inject faults.

python -m localcluster tools            # build or find the pinned binaries
python -m localcluster up               # start a cluster in .local-cluster/ and print KUBECONFIG
                                        # (with Prometheus and prometheus-adapter; --no-monitoring: without)
python -m localcluster down             # stop it
python -m localcluster fail-region us-east | restore-region us-east | remove-region us-east
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from localcluster import faults, fleet, tools
from localcluster.cluster import ClusterError, LocalCluster, stop_from_state

DEFAULT_DIR = Path(".local-cluster")


def _core_api(workdir: Path) -> object:
    from kubernetes import client

    from localcluster.kube import api_client_for

    if not (workdir / "state.json").exists():
        raise ClusterError(f"no local cluster runs from {workdir}: start one with `make cluster`")
    return client.CoreV1Api(api_client_for(workdir / "kubeconfig"))


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] == "tools":
        return tools.main(args_list[1:])
    parser = argparse.ArgumentParser(
        prog="python -m localcluster",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--dir", type=Path, default=DEFAULT_DIR, help="state directory (default: .local-cluster)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start a cluster that outlives this command")
    up.add_argument(
        "--fleet", type=Path, default=fleet.DEFAULT_FLEET, help="fleet YAML (default: the built-in one)"
    )
    up.add_argument(
        "--no-monitoring",
        action="store_true",
        help="without Prometheus and prometheus-adapter (the custom metrics API)",
    )
    commands.add_parser("down", help="stop the cluster")
    commands.add_parser("env", help="print the export line for KUBECONFIG")
    for name in ("fail-region", "restore-region", "remove-region"):
        command = commands.add_parser(name, help=f"{name.replace('-', ' ')} (its fleet nodes)")
        command.add_argument("region")
    args = parser.parse_args(args_list)
    workdir: Path = args.dir.resolve()
    try:
        if args.command == "up":
            cluster = LocalCluster(
                workdir=workdir, fleet_file=args.fleet, tie_to_parent=False, monitoring=not args.no_monitoring
            )
            cluster.start()
            print(f"export KUBECONFIG={workdir / 'kubeconfig'}")
            if cluster.monitoring:
                print(f"# Prometheus: {cluster.prometheus_url} (also in {cluster.state_file})")
        elif args.command == "down":
            if not stop_from_state(workdir):
                print(f"no local cluster runs from {workdir}", file=sys.stderr)
        elif args.command == "env":
            _core_api(workdir)  # fails with a clear message when none runs
            print(f"export KUBECONFIG={workdir / 'kubeconfig'}")
        else:
            action = {
                "fail-region": faults.fail_nodes,
                "restore-region": faults.restore_nodes,
                "remove-region": faults.remove_nodes,
            }[args.command]
            names = action(_core_api(workdir), faults.region_selector(args.region))
            if not names:
                print(f"no fleet node in region {args.region!r}", file=sys.stderr)
                return 1
            print(f"{args.command}: {', '.join(names)}")
    except (ClusterError, tools.ToolError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
