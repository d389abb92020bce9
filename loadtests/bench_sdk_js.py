"""Local ``assign()`` cost of the TypeScript SDK against GrowthBook's JS SDK, in the same run.

The work is done by ``bench_sdk_js.mjs`` under Node (see its header for the method); this
module installs and builds ``sdk-js/`` when needed, runs it, prints its figures and hands
the runner one row per sharpen figure against the fastest GrowthBook call.

    .venv/bin/python -m loadtests.bench_sdk_js [--calls 100000] [--rounds 15]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loadtests._sdk_js import install_and_build, node_tools, run

SCRIPT = Path(__file__).resolve().parent / "bench_sdk_js.mjs"

LABELS = {
    "sharpen": "TS SDK local assignSync, new unit (ns/call)",
    "sharpen_repeat": "TS SDK local assignSync, exposed unit (ns/call)",
    "sharpen_promise": "TS SDK local await assign(), new unit (ns/call)",
}


def rows(summary: dict[str, Any]) -> list[tuple[str, float, float, str]]:
    """One row per sharpen figure, against the fastest GrowthBook call of the run."""
    ns = summary["ns_per_call"]
    reference = min((k for k in ns if k.startswith("growthbook")), key=lambda k: ns[k])
    name = f"growthbook-js {summary['growthbook_version']} {reference.removeprefix('growthbook_')}"
    return [
        (f"{label} vs {name}", ns[key], ns[reference], f"{ns[reference] / ns[key]:.1f}x faster")
        for key, label in LABELS.items()
    ]


def main(argv: Sequence[str] | None = None) -> list[tuple[str, float, float, str]]:
    """Run the Node benchmark; print its summary and return the runner's rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000, help="calls per round and SDK")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3, help="rounds run first, not counted")
    args = parser.parse_args(argv)
    node, npm = node_tools()
    install_and_build(npm)
    command = [node, "--expose-gc", str(SCRIPT), "--json"]
    command += [
        "--calls",
        str(args.calls),
        "--rounds",
        str(args.rounds),
        "--warmup",
        str(args.warmup),
    ]
    summary = json.loads(run(command, timeout_s=1800).stdout)
    print(
        f"@sharpen/client {summary['sharpen_version']} vs @growthbook/growthbook "
        f"{summary['growthbook_version']} on node {summary['node_version']}: best of "
        f"{args.rounds} rounds ({args.calls:,} calls each), exposure tracking on, process CPU time"
    )
    for key, ns in summary["ns_per_call"].items():
        print(
            f"  {key:<20} {ns:>9,.0f} ns/call   (median {summary['median_ns_per_call'][key]:,.0f};"
            f" candidate share {summary['candidate_share'].get(key, '-')})"
        )
    print(f"  ratio (fastest growthbook / sharpen assignSync): {summary['ratio']}x")
    out = rows(summary)
    for work, ours, reference, ratio in out:
        print(f"  {work}: {ours:,.0f} vs {reference:,.0f} ({ratio})")
    return out


if __name__ == "__main__":
    main()
