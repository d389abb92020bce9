"""What a staged rollout saves: units that saw a harmful candidate before its rollback,
with and without a ramp. Seeded.

    .venv/bin/python scripts/rollout_sim.py [--sims 400] [--seed 20261201]

Each simulated experiment gets ``--daily-units`` eligible units a day (Poisson arrivals
every ``--look-minutes``), half of those inside it on the candidate; one guardrail, a
proportion at ``--rate`` with a 2 % margin, watched by the engine's own always-valid
guardrail intervals (``guardrail_arrays``, tuned to the spec's plan) at every look. A
breach rolls back (``guardrails.auto_rollback``). With a ramp (the rollout of
``examples/fraud-v8-rollout.yaml``: 1 % for 2 h and 100 units, 5 % for 6 h and 500 units,
25 % for a day, then 100 %) a step advances when its minimum time and units are reached
and no guardrail is ``warning`` or ``breached``; without one, the candidate has its full
share from the first minute. The gate is applied to all experiments at once here, and
checked against the service's own :func:`service.rollout.rollout_gate` along the way.

Prints, per candidate (catastrophic -50 %, subtle -5 %, harmless) and with or without
the ramp: the share rolled back within ``--days``, the days it took (median), the step
it happened at, and the units that saw the candidate before the rollback (median, 90th
percentile, mean); one table per outcome delay (``--delays``: hours from exposure to the
outcome event; a unit counts in the analysis at once, its outcome when it arrives).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

from service.results import planned_units_per_variant, spec_plan
from service.rollout import rollout_gate
from service.spec import ExperimentRecord, ExperimentSpec, RolloutState, StepEntry, parse_spec
from service.stats import GUARDRAIL_STATUSES, StatsBatch, guardrail_alpha, guardrail_arrays

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "fraud-v8-rollout.yaml"
MARGIN = 0.02
ALPHA = 0.05
T0 = 1_800_000_000.0
_WARNING = GUARDRAIL_STATUSES.index("warning")
_BREACHED = GUARDRAIL_STATUSES.index("breached")

Ints = npt.NDArray[np.int64]


def sim_spec(rate: float, daily_units: float, ramped: bool) -> ExperimentSpec:
    """The example's design, one proportion guardrail at ``rate``; with or without its ramp."""
    example = yaml.safe_load(EXAMPLE.read_text())
    spec: dict[str, Any] = {
        "key": "sim-v2",
        "variants": [{"key": "baseline", "weight": 50}, {"key": "candidate", "weight": 50}],
        "baseline": "baseline",
        "metrics": [
            {"name": "precision", "kind": "proportion", "value": "tp", "role": "primary",
             "mde": 0.05, "baseline_mean": 0.62},
            {"name": "ok", "kind": "proportion", "value": "ok", "role": "guardrail",
             "margin": MARGIN, "baseline_mean": rate},
        ],
        "analysis": {"alpha": ALPHA, "min_days": 14, "expected_daily_units": daily_units},
        "guardrails": {"auto_rollback": True},
    }  # fmt: skip
    if ramped:
        spec["rollout"] = example["rollout"]
    return parse_spec(spec)


@dataclass
class Outcome:
    rolled_back: npt.NDArray[np.bool_]
    days: npt.NDArray[np.float64]
    exposed: Ints
    full_share_days: npt.NDArray[np.float64]
    step_at: Ints
    gate_checks: int


def _gate_agrees(
    spec: ExperimentSpec, step: int, started: float, at_start: int, units: tuple[int, int],
    status: int, now: float, advance: bool,
) -> None:  # fmt: skip
    """The service's gate says the same as the vectorised one, for one experiment."""
    assert spec.rollout is not None
    entry = StepEntry(
        step=step + 1, traffic=spec.rollout.steps[step].traffic,
        started_at=T0 + started * 86_400, units_at_start=at_start, actor="monitor",
    )  # fmt: skip
    record = ExperimentRecord(
        key=spec.key, spec=spec, status="running", created_at=T0, updated_at=T0,
        started_at=T0, rollout=RolloutState(history=[entry]),
    )  # fmt: skip
    doc = {
        "units": {"baseline": units[0], "candidate": units[1]},
        "srm": {"ok": True},
        "guardrails": [{"metric": "ok", "variant": "candidate", "segment": None,
                        "status": GUARDRAIL_STATUSES[status], "relative": {}}],
    }  # fmt: skip
    gate = rollout_gate(record, doc, T0 + now * 86_400)
    assert gate is not None and gate.advance == advance, (gate, advance)


def simulate(
    spec: ExperimentSpec,
    harm: float,
    rate: float,
    *,
    sims: int,
    daily_units: float,
    days: float,
    look_minutes: float,
    delay_hours: float,
    rng: np.random.Generator,
) -> Outcome:
    plan = spec_plan(spec)
    planned, _ = planned_units_per_variant(plan, spec)
    alpha_each = guardrail_alpha(ALPHA, 1)  # one guardrail, one candidate, no segment
    if spec.rollout is None:
        shares = np.array([spec.traffic])
        min_days = np.zeros(1)
        min_units = np.zeros(1)
    else:
        shares = np.array([s.traffic for s in spec.rollout.steps])
        min_days = np.array([s.min_duration / 86_400 for s in spec.rollout.steps])
        min_units = np.array([s.min_units for s in spec.rollout.steps], dtype=float)
    last = len(shares) - 1
    step = np.zeros(sims, dtype=np.int64)
    step_start = np.zeros(sims)
    at_start = np.zeros(sims, dtype=np.int64)
    full_day = np.where(step == last, 0.0, np.nan)
    nc = np.zeros(sims, dtype=np.int64)
    nt = np.zeros(sims, dtype=np.int64)
    sc = np.zeros(sims, dtype=np.int64)
    st = np.zeros(sims, dtype=np.int64)
    done = np.zeros(sims, dtype=bool)
    when = np.full(sims, np.nan)
    exposed = np.zeros(sims, dtype=np.int64)
    step_at = np.zeros(sims, dtype=np.int64)
    dt = look_minutes / 1440
    lag = round(delay_hours * 60 / look_minutes)
    # outcomes of the last `lag` looks' units, not yet arrived: (control, treatment) rows
    pending = np.zeros((lag + 1, 2, sims), dtype=np.int64)
    checks = 0
    for look in range(1, int(days / dt) + 1):
        now = look * dt
        live = ~done
        arriving = rng.poisson(daily_units * dt * shares[step]) * live
        treated = rng.binomial(arriving, 0.5)
        nc += arriving - treated
        nt += treated
        slot = look % (lag + 1)
        pending[slot, 0] = rng.binomial(arriving - treated, rate)
        pending[slot, 1] = rng.binomial(treated, rate * (1 + harm))
        arrived = pending[(look - lag) % (lag + 1)]  # the outcomes of units `lag` looks ago
        sc += arrived[0]
        st += arrived[1]
        status = guardrail_arrays(
            StatsBatch.from_columns("proportion", nc.astype(float), sc.astype(float)),
            StatsBatch.from_columns("proportion", nt.astype(float), st.astype(float)),
            harmful_up=False,
            margin=MARGIN,
            alpha_each=alpha_each,
            planned_units_per_variant=planned,
        ).status
        breach = live & (status == _BREACHED)
        done |= breach
        when[breach] = now
        exposed[breach] = nt[breach]
        step_at[breach] = step[breach] + 1
        ramping = ~done & (step < last)
        advance = (
            ramping
            & (now - step_start >= min_days[step] - 1e-12)
            & (nc + nt - at_start >= min_units[step])
            & (status < _WARNING)
        )
        if spec.rollout is not None and look % 97 == 0:
            for i in np.flatnonzero(ramping)[:3]:
                units = (int(nc[i]), int(nt[i]))
                _gate_agrees(spec, int(step[i]), float(step_start[i]), int(at_start[i]), units,
                             int(status[i]), now, bool(advance[i]))  # fmt: skip
                checks += 1
        step = step + advance
        step_start = np.where(advance, now, step_start)
        at_start = np.where(advance, nc + nt, at_start)
        full_day = np.where(advance & (step == last), now, full_day)
        if done.all():
            break
    exposed[~done] = nt[~done]
    return Outcome(done, when, exposed, full_day, step_at, checks)


def _row(label: str, ramp: str, out: Outcome) -> str:
    back = out.rolled_back
    days = f"{np.median(out.days[back]):.2f}" if back.any() else "-"
    if back.any():
        units = out.exposed[back]
        seen = f"{np.median(units):,.0f} | {np.percentile(units, 90):,.0f} | {units.mean():,.0f}"
    else:
        seen = "- | - | -"
    still = out.exposed[~back]
    running = f"{np.median(still):,.0f}" if still.size else "-"
    full = out.full_share_days[np.isfinite(out.full_share_days)]
    reach = f"{np.median(full):.2f}" if full.size else "-"
    steps = out.step_at[back]
    shares = {k: float(np.mean(steps == k)) for k in sorted(set(steps.tolist()))}
    where = " · ".join(f"{k}: {'<1%' if f < 0.01 else f'{f:.0%}'}" for k, f in shares.items())
    return (
        f"| {label} | {ramp} | {back.mean():.1%} | {days} | {where or '-'} | {seen} "
        f"| {running} | {reach} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sims", type=int, default=400)
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--daily-units", type=float, default=20_000)
    parser.add_argument("--rate", type=float, default=0.5, help="the guardrail's baseline rate")
    parser.add_argument("--days", type=float, default=28)
    parser.add_argument("--look-minutes", type=float, default=5)
    parser.add_argument(
        "--delays",
        default="0,2",
        help="hours from a unit's exposure to its outcome event, comma-separated: one table each",
    )
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    print(
        f"{args.sims} experiments per row, seed {args.seed}, {args.daily_units:,.0f} eligible "
        f"units a day, guardrail rate {args.rate} (margin {MARGIN:.0%}), a look every "
        f"{args.look_minutes:g} min for {args.days:g} days\n"
    )
    checks = 0
    for delay in (float(d) for d in args.delays.split(",")):
        checks += _table(args, delay, rng)
    print(
        f"\nthe vectorised gate agreed with service.rollout.rollout_gate in {checks} checks; "
        f"{time.perf_counter() - started:.0f} s"
    )


def _table(args: argparse.Namespace, delay: float, rng: np.random.Generator) -> int:
    print(f"\noutcomes arrive {delay:g} h after the exposure (units count at once):\n")
    print(
        "| candidate | ramp | rolled back | days to rollback (median) | at step "
        "| units that saw it before the rollback: median | 90th pct | mean "
        "| units that saw it, not rolled back (median) | days to the full share (median) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    checks = 0
    for label, harm in (("catastrophic (-50 %)", -0.5), ("subtle (-5 %)", -0.05),
                        ("harmless (0 %)", 0.0)):  # fmt: skip
        for ramped in (False, True):
            spec = sim_spec(args.rate, args.daily_units, ramped)
            out = simulate(
                spec, harm, args.rate, sims=args.sims, daily_units=args.daily_units,
                days=args.days, look_minutes=args.look_minutes, delay_hours=delay, rng=rng,
            )  # fmt: skip
            checks += out.gate_checks
            print(_row(label, "1 % → 5 % → 25 % → 100 %" if ramped else "none", out))
    return checks


if __name__ == "__main__":
    main()
