"""Local ``assign()`` cost: sharpen against GrowthBook's Python SDK, in the same run.

Both evaluate an equivalent 50/50 experiment on a hash of the unit id, with
exposure tracking on: sharpen queues an exposure record for its uploader,
GrowthBook calls an ``on_experiment_viewed`` callback that appends to a list.
Every call uses a new unit id, so neither side's exposure de-duplication
ever hits (the worst case for both).

Costs are process CPU time per call (``time.process_time_ns``: all threads
of this process, so sharpen's background uploader is charged too), which
other processes on a shared machine disturb far less than wall time.  Short
rounds alternate between the SDKs, so what disturbance remains hits both
alike; the best round of each is reported, with the median beside it.

    .venv/bin/python -m loadtests.bench_sdk [--calls 20000] [--rounds 15]
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from collections.abc import Callable, Sequence
from importlib.metadata import version
from typing import Any

import httpx

import sharpen

EXPERIMENT = "fraud-v7"
ETAG = '"bench"'
TARGET_NS = 1_400  # issue 18: a new unit, exposure queued
TARGET_RATIO = 5.0

CONFIG = {
    "etag": ETAG,
    "hash_version": 1,
    "experiments": {
        EXPERIMENT: {
            "key": EXPERIMENT,
            "version": 1,
            "status": "running",
            "salt": EXPERIMENT,
            "hash_version": 1,
            "variants": [
                {"key": "baseline", "weight": 50, "payload": {"model": "fraud-v6"}},
                {"key": "candidate", "weight": 50, "payload": {"model": "fraud-v7"}},
            ],
            "baseline": "baseline",
            "shipped_variant": None,
            "traffic": 1.0,
            "targeting": {},
            "layer": None,
            "layer_range": None,
            "holdout": 0.0,
        }
    },
}

GROWTHBOOK_FEATURES = {
    "fraud-model": {
        "defaultValue": "fraud-v6",
        "rules": [
            {
                "key": EXPERIMENT,
                "variations": ["fraud-v6", "fraud-v7"],
                "weights": [0.5, 0.5],
                "coverage": 1.0,
                "hashAttribute": "id",
            }
        ],
    }
}


def _service(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/v1/config":
        return httpx.Response(200, json=CONFIG, headers={"ETag": ETAG})
    return httpx.Response(202, json={"accepted": 0, "duplicates": 0})


def sharpen_client(*, upload: bool, calls: int) -> sharpen.Client:
    """A loaded client; with ``upload`` the background uploader sends every 500."""
    return sharpen.Client(
        "http://sharpen.bench",
        "bench-key",
        transport=httpx.MockTransport(_service),
        poll_interval=None,
        stream=False,  # a connected stream idles; the mock has none to offer
        flush_interval=0.5 if upload else 1e9,
        max_batch=500 if upload else calls + 1,
        max_buffer=calls + 1_000,
    )


def _time(loop: Callable[[Sequence[Any]], None], items: Sequence[Any]) -> float:
    gc.collect()
    start = time.process_time_ns()
    loop(items)
    return (time.process_time_ns() - start) / len(items)


def bench_sharpen(client: sharpen.Client, ids: Sequence[str]) -> tuple[float, float, float]:
    """(ns/call for new units, ns/call for units already exposed, candidate share)."""
    assign = client.assign
    candidate = 0

    def loop(items: Sequence[Any]) -> None:
        for uid in items:
            assign(EXPERIMENT, uid)

    ns = _time(loop, ids)
    repeat_ns = _time(loop, ids)  # same units again: exposures are not re-queued
    for uid in ids[:10_000]:
        candidate += assign(EXPERIMENT, uid).variant == "candidate"
    client.flush(timeout=30.0)
    return ns, repeat_ns, candidate / min(len(ids), 10_000)


def bench_growthbook(ids: Sequence[str], *, run_experiment: bool) -> tuple[float, float]:
    from growthbook import Experiment, GrowthBook

    viewed: list[tuple[str, Any]] = []

    def on_viewed(*, experiment: Any, result: Any, user_context: Any) -> None:
        viewed.append((experiment.key, result.variationId))

    gb = GrowthBook(features=GROWTHBOOK_FEATURES, on_experiment_viewed=on_viewed)
    attributes = [{"id": uid} for uid in ids]  # built outside the timed loop
    experiment = Experiment(key=EXPERIMENT, variations=["fraud-v6", "fraud-v7"], weights=[0.5, 0.5])
    set_attributes, eval_feature, run = gb.set_attributes, gb.eval_feature, gb.run

    def loop_feature(items: Sequence[Any]) -> None:
        for attrs in items:
            set_attributes(attrs)
            eval_feature("fraud-model")

    def loop_run(items: Sequence[Any]) -> None:
        for attrs in items:
            set_attributes(attrs)
            run(experiment)

    ns = _time(loop_run if run_experiment else loop_feature, attributes)
    share = sum(v == 1 for _, v in viewed[:10_000]) / max(min(len(viewed), 10_000), 1)
    gb.destroy()
    return ns, share


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print ns/call for each SDK and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000, help="sharpen calls per round")
    parser.add_argument("--gb-calls", type=int, default=5_000, help="GrowthBook calls per round")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    args = parser.parse_args(argv)

    results: dict[str, list[float]] = {
        "sharpen": [],
        "sharpen_repeat": [],
        "sharpen_upload": [],
        "growthbook_feature": [],
        "growthbook_run": [],
    }
    shares: dict[str, float] = {}
    for round_no in range(args.rounds):
        ids = [f"user-{round_no}-{i}" for i in range(args.calls)]
        gb_ids = ids[: args.gb_calls]
        with sharpen_client(upload=False, calls=args.calls) as client:
            ns, repeat_ns, shares["sharpen"] = bench_sharpen(client, ids)
            results["sharpen"].append(ns)
            results["sharpen_repeat"].append(repeat_ns)
            shares["sharpen_repeat"] = shares["sharpen"]
        ns, shares["growthbook_feature"] = bench_growthbook(gb_ids, run_experiment=False)
        results["growthbook_feature"].append(ns)
        with sharpen_client(upload=True, calls=args.calls) as client:
            ns, _, shares["sharpen_upload"] = bench_sharpen(client, ids)
            results["sharpen_upload"].append(ns)
        ns, shares["growthbook_run"] = bench_growthbook(gb_ids, run_experiment=True)
        results["growthbook_run"].append(ns)

    best = {name: min(values) for name, values in results.items()}
    growthbook_best = min(best["growthbook_feature"], best["growthbook_run"])
    ratio = growthbook_best / best["sharpen"]
    medians = {k: round(sorted(v)[len(v) // 2], 1) for k, v in results.items()}
    targets = {
        f"sharpen <= {TARGET_NS} ns/call": best["sharpen"] <= TARGET_NS,
        f"ratio >= {TARGET_RATIO}x": ratio >= TARGET_RATIO,
    }
    summary: dict[str, Any] = {
        "sharpen_version": sharpen.__version__,
        "growthbook_version": version("growthbook"),
        "ns_per_call": {k: round(v, 1) for k, v in best.items()},
        "median_ns_per_call": medians,
        "candidate_share": {k: round(v, 3) for k, v in shares.items()},
        "ratio": round(ratio, 1),
        "targets": targets,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(
        f"sharpen {sharpen.__version__} vs growthbook {summary['growthbook_version']}: "
        f"best of {args.rounds} rounds ({args.calls:,} / {args.gb_calls:,} calls), "
        "exposure tracking on, process CPU time"
    )
    labels = {
        "sharpen": "sharpen Client.assign (exposure queued)",
        "sharpen_repeat": "sharpen Client.assign (unit already exposed)",
        "sharpen_upload": "sharpen Client.assign (+ background upload)",
        "growthbook_feature": "growthbook eval_feature (experiment rule)",
        "growthbook_run": "growthbook run(Experiment)",
    }
    for key, label in labels.items():
        print(
            f"  {label:<46} {best[key]:>9,.0f} ns/call   "
            f"(median {medians[key]:,.0f}; "
            f"candidate share {shares[key]:.3f})"
        )
    print(f"  ratio (fastest growthbook / sharpen): {ratio:.1f}x")
    for target, ok in targets.items():
        print(f"  target {target}: {'met' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
