"""`deepseek-operator`: run the operator (kopf) with the project's handlers.

Every argument but the operator's own is passed to `kopf run`, e.g. `deepseek-operator --all-namespaces`
or `deepseek-operator --namespace serving --liveness http://0.0.0.0:8080/healthz`. Logs are JSON unless
`--log-format` says otherwise; without `--peering`, the operator runs standalone (one replica).

The operator's own option:
  --probe-address-annotation=<key>   probe pods at the address in this annotation instead of
                                     status.podIP, for operators outside the pod network (a pod without
                                     the annotation is not probed: its engine check is Unknown)
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Sequence

HANDLERS_MODULE = "deepseek_operator.handlers"
PROBE_ADDRESS_ANNOTATION_FLAG = "--probe-address-annotation"
# Read by deepseek_operator.failover.controller (handlers run in this process).
PROBE_ADDRESS_ANNOTATION_ENV = "DEEPSEEK_OPERATOR_PROBE_ADDRESS_ANNOTATION"


def operator_options(argv: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """The operator's own options (as environment variables for its handlers), and the rest for kopf."""
    options: dict[str, str] = {}
    rest: list[str] = []
    arguments = list(argv)
    while arguments:
        argument = arguments.pop(0)
        if argument == PROBE_ADDRESS_ANNOTATION_FLAG:
            if not arguments:
                raise SystemExit(f"{PROBE_ADDRESS_ANNOTATION_FLAG} needs a value: an annotation key")
            options[PROBE_ADDRESS_ANNOTATION_ENV] = arguments.pop(0)
        elif argument.startswith(f"{PROBE_ADDRESS_ANNOTATION_FLAG}="):
            options[PROBE_ADDRESS_ANNOTATION_ENV] = argument.split("=", 1)[1]
        else:
            rest.append(argument)
    return options, rest


def kopf_arguments(argv: Sequence[str]) -> list[str]:
    arguments = ["run", "-m", HANDLERS_MODULE]
    if not any(arg.startswith("--log-format") for arg in argv):
        arguments.append("--log-format=json")
    if not any(arg.startswith(("--peering", "--standalone")) for arg in argv):
        arguments.append("--standalone")
    peering = any(arg.startswith("--peering") for arg in argv)
    if peering and not any(arg.startswith("--priority") for arg in argv):
        # kopf pauses every peer when two share the highest priority: each replica draws its own.
        arguments.append(f"--priority={secrets.randbelow(2**31)}")
    if not any(arg.startswith(("--namespace", "-n", "--all-namespaces", "-A")) for arg in argv):
        arguments.append("--all-namespaces")
    return [*arguments, *argv]


def main(argv: Sequence[str] | None = None) -> int:
    from kopf.cli import main as kopf_main

    options, rest = operator_options(sys.argv[1:] if argv is None else argv)
    os.environ.update(options)
    kopf_main(kopf_arguments(rest), prog_name="deepseek-operator")
    return 0


if __name__ == "__main__":
    sys.exit(main())
