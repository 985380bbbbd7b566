"""`python -m localcluster`: provide tools, start and stop a local cluster, inject faults.

python -m localcluster tools            # build or find the pinned binaries
python -m localcluster up               # start a cluster in .local-cluster/ and print KUBECONFIG
                                        # (with Prometheus and prometheus-adapter; --no-monitoring: without)
python -m localcluster down             # stop it
python -m localcluster fail-region us-east | restore-region us-east | remove-region us-east
python -m localcluster cordon-pool h100-spot [--region us-east] [--zone us-east-1a]   # spot short of capacity
python -m localcluster uncordon-pool h100-spot [--region ...] [--zone ...]
python -m localcluster remove-pool h100-spot [--region ...]    # its nodes deleted; `restore-fleet` brings them back
python -m localcluster restore-fleet                            # recreate removed nodes, lift interruption taints
python -m localcluster interrupt-node NODE... --provider karpenter|karpenter-v0|eks|gke|aks
                                        [--drain-after S] [--reclaim-after S]
                                        # the provider's notice (taint), then the drain, then the node goes
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
    _add_spot_commands(commands)
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
        elif args.command in SPOT_COMMANDS:
            return _run_spot_command(args, workdir)
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


# ------------------------------------------------------------------------------------------ spot faults

SPOT_COMMANDS = ("cordon-pool", "uncordon-pool", "remove-pool", "restore-fleet", "interrupt-node")


def _add_spot_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name, help_text in (
        ("cordon-pool", "cordon a pool's nodes: no new pod lands there (spot short of capacity)"),
        ("uncordon-pool", "make a pool's nodes schedulable again"),
        ("remove-pool", "delete a pool's nodes, as when its capacity is reclaimed"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("pool", help="fleet pool name, e.g. h100-spot")
        command.add_argument("--region")
        command.add_argument("--zone")
    commands.add_parser(
        "restore-fleet", help="recreate removed fleet nodes; lift interruption taints and cordons"
    )
    interrupt = commands.add_parser("interrupt-node", help="a provider's spot interruption of nodes")
    interrupt.add_argument("nodes", nargs="+")
    interrupt.add_argument("--provider", choices=sorted(faults.INTERRUPTION_TAINTS), default="karpenter")
    interrupt.add_argument(
        "--drain-after", type=float, default=0.0, help="seconds from the notice to the drain (default 0)"
    )
    interrupt.add_argument(
        "--reclaim-after",
        type=float,
        default=None,
        help="seconds from the notice until the nodes are deleted (default: the provider's notice)",
    )


def _run_spot_command(args: argparse.Namespace, workdir: Path) -> int:
    core = _core_api(workdir)
    if args.command == "restore-fleet":
        LocalCluster(workdir=workdir, fleet_file=args.fleet).restore_fleet()
        names = faults.clear_interruptions(core, fleet.FLEET_LABEL)
        print(f"restore-fleet: {len(names)} nodes Ready, schedulable, without interruption taints")
        return 0
    if args.command == "interrupt-node":
        faults.interrupt_nodes(
            core,
            list(args.nodes),
            args.provider,
            drain_after=args.drain_after,
            reclaim_after=args.reclaim_after,
            log=lambda message: print(f"interrupt-node: {message}", flush=True),
        )
        return 0
    selector = faults.pool_selector(pool=args.pool, region=args.region, zone=args.zone)
    action = {
        "cordon-pool": faults.cordon_nodes,
        "uncordon-pool": faults.uncordon_nodes,
        "remove-pool": faults.remove_nodes,
    }[args.command]
    names = action(core, selector)
    if not names:
        print(f"no fleet node matches {selector}", file=sys.stderr)
        return 1
    print(f"{args.command}: {', '.join(names)}")
    return 0
