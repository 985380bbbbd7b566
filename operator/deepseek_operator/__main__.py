"""`deepseek-operator`: run the operator (kopf) with the project's handlers.

Every argument is passed to `kopf run`, e.g. `deepseek-operator --all-namespaces` or
`deepseek-operator --namespace serving --liveness http://0.0.0.0:8080/healthz`. Logs are JSON unless
`--log-format` says otherwise; without `--peering`, the operator runs standalone (one replica).
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Sequence

HANDLERS_MODULE = "deepseek_operator.handlers"


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

    kopf_main(kopf_arguments(sys.argv[1:] if argv is None else argv), prog_name="deepseek-operator")
    return 0


if __name__ == "__main__":
    sys.exit(main())
