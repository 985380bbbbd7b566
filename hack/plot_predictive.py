"""Draw docs/predictive-day.png from a trace of bench/predictive.py: the request rate sent, the
forecast the operator made, and the replicas of the reactive and the predictive deployment (with the
predictive floor), over the replayed day.

    pip install matplotlib        # or: pip install -e '.[plot]'
    PYTHONPATH=e2e:operator:images/simulator .venv/bin/python bench/predictive.py --trace /tmp/day.jsonl
    .venv/bin/python hack/plot_predictive.py /tmp/day.jsonl docs/predictive-day.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

PER_REPLICA = 2.5  # bench/predictive.py's requests per second per replica


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("trace", type=Path, help="JSON lines written by bench/predictive.py --trace")
    parser.add_argument("output", type=Path, help="the PNG to write, e.g. docs/predictive-day.png")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows: list[dict[str, Any]] = [json.loads(line) for line in args.trace.read_text().splitlines() if line]
    hours = [row["hour"] for row in rows]
    figure, (rates, replicas) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True, height_ratios=[1, 1.2])
    rates.plot(hours, [row["rate"] for row in rows], color="black", linewidth=1, label="request rate sent")
    forecast = [row["predictive"].get("forecast") for row in rows]
    rates.plot(
        hours,
        [value if value is not None else float("nan") for value in forecast],
        color="tab:orange",
        linewidth=1.2,
        label="forecast (highest within the next 15 min)",
    )
    rates.set_ylabel("requests / s")
    rates.legend(loc="upper left", fontsize=8)
    rates.grid(alpha=0.3)
    for name, color in (("reactive", "tab:blue"), ("predictive", "tab:green")):
        replicas.step(
            hours,
            [row[name]["replicas"] for row in rows],
            where="post",
            color=color,
            label=f"{name}: replicas",
        )
    replicas.step(
        hours,
        [row["predictive"].get("floor") or float("nan") for row in rows],
        where="post",
        color="tab:green",
        linestyle=":",
        label="predictive: floor",
    )
    replicas.step(
        hours,
        [row["rate"] / PER_REPLICA for row in rows],
        where="post",
        color="black",
        linewidth=0.8,
        alpha=0.5,
        label=f"replicas the rate needs ({PER_REPLICA:g} req/s each)",
    )
    replicas.set_ylabel("replicas")
    replicas.set_xlabel("hour of the replayed day (compressed: one hour per real minute)")
    replicas.set_xticks(range(0, 25, 3))
    replicas.legend(loc="upper left", fontsize=8)
    replicas.grid(alpha=0.3)
    figure.suptitle("Predictive pre-scaling: forecast vs actual vs replicas (bench/predictive.py)")
    figure.tight_layout()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.output, dpi=110)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
