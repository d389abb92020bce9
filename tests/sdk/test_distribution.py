"""Statistical properties of the bucketing: uniform, independent, stable under ramps."""

from __future__ import annotations

from collections import Counter

import pytest
from scipy import stats

from sharpen.core import HOLDOUT_SALT, HOLDOUT_SEED, LAYER_SEED, bucket, evaluate, parse_experiment
from tests.sdk.fakes import entry

ALPHA = 0.001


def _variants(*weights: float) -> list[dict[str, object]]:
    return [{"key": f"v{i}", "weight": w} for i, w in enumerate(weights)]


@pytest.fixture(scope="module")
def ids_1m() -> list[str]:
    return [f"user-{i}" for i in range(1_000_000)]


@pytest.fixture(scope="module")
def ids_100k(ids_1m: list[str]) -> list[str]:
    return ids_1m[:100_000]


def test_split_20_30_50_is_uniform_over_1m_ids(ids_1m: list[str]) -> None:
    exp = parse_experiment(entry("uniform", variants=_variants(20, 30, 50), baseline="v0"))
    counts = Counter(evaluate(exp, uid).variant for uid in ids_1m)
    observed = [counts["v0"], counts["v1"], counts["v2"]]
    expected = [0.2 * len(ids_1m), 0.3 * len(ids_1m), 0.5 * len(ids_1m)]
    assert sum(observed) == len(ids_1m)
    assert stats.chisquare(observed, expected).pvalue > ALPHA


def test_raw_buckets_are_uniform(ids_100k: list[str]) -> None:
    deciles = Counter(bucket("uniform", uid, seed=LAYER_SEED) // 1000 for uid in ids_100k)
    observed = [deciles[d] for d in range(10)]
    assert stats.chisquare(observed).pvalue > ALPHA


def test_two_experiments_assign_independently(ids_100k: list[str]) -> None:
    first = parse_experiment(entry("exp-one"))
    second = parse_experiment(entry("exp-two"))
    table = Counter((evaluate(first, u).variant, evaluate(second, u).variant) for u in ids_100k)
    keys = ("baseline", "candidate")
    contingency = [[table[(a, b)] for b in keys] for a in keys]
    assert stats.chi2_contingency(contingency).pvalue > ALPHA


def test_traffic_draw_is_independent_of_variant_draw(ids_100k: list[str]) -> None:
    exp = parse_experiment(entry("ramp", traffic=0.1))
    included = Counter(a.variant for a in (evaluate(exp, u) for u in ids_100k) if a.in_experiment)
    n = included["baseline"] + included["candidate"]
    assert stats.binomtest(included["candidate"], n, 0.5).pvalue > ALPHA
    assert stats.binomtest(n, len(ids_100k), 0.1).pvalue > ALPHA


def test_traffic_ramp_moves_no_unit_between_variants(ids_100k: list[str]) -> None:
    before = parse_experiment(entry("ramp", traffic=0.1))
    after = parse_experiment(entry("ramp", traffic=0.5))
    was_in = 0
    for uid in ids_100k:
        a, b = evaluate(before, uid), evaluate(after, uid)
        if a.in_experiment:
            was_in += 1
            assert b.in_experiment and b.variant == a.variant, uid
    assert 9_000 < was_in < 11_000


def test_layer_ranges_are_exclusive_and_proportional(ids_100k: list[str]) -> None:
    ranges = [[0, 3000], [3000, 6000], [6000, 10000]]
    exps = [
        parse_experiment(entry(f"layered-{i}", layer="fraud-models", layer_range=r))
        for i, r in enumerate(ranges)
    ]
    counts = [0, 0, 0]
    for uid in ids_100k:
        members = [i for i, e in enumerate(exps) if evaluate(e, uid).reason != "layer"]
        assert len(members) == 1, (uid, members)
        counts[members[0]] += 1
    expected = [0.3 * len(ids_100k), 0.3 * len(ids_100k), 0.4 * len(ids_100k)]
    assert stats.chisquare(counts, expected).pvalue > ALPHA


def test_layer_membership_is_independent_of_variant(ids_100k: list[str]) -> None:
    exp = parse_experiment(entry("layered", layer="fraud-models", layer_range=[0, 5000]))
    included = Counter(evaluate(exp, u).variant for u in ids_100k if evaluate(exp, u).in_experiment)
    n = included["baseline"] + included["candidate"]
    assert stats.binomtest(included["candidate"], n, 0.5).pvalue > ALPHA


def test_holdout_is_the_same_units_for_every_experiment(ids_100k: list[str]) -> None:
    first = parse_experiment(entry("exp-one", holdout=0.05))
    second = parse_experiment(entry("exp-two", holdout=0.05, traffic=0.5))
    held_first = {u for u in ids_100k if evaluate(first, u).reason == "holdout"}
    held_second = {u for u in ids_100k if evaluate(second, u).reason == "holdout"}
    assert held_first == held_second
    expected = {u for u in ids_100k if bucket(HOLDOUT_SALT, u, seed=HOLDOUT_SEED) < 500}
    assert held_first == expected
    assert stats.binomtest(len(held_first), len(ids_100k), 0.05).pvalue > ALPHA
    # Held-out units never reach the variant draw; the rest split evenly.
    for uid in list(held_first)[:100]:
        assert not evaluate(first, uid).in_experiment


def test_growing_the_holdout_only_adds_units(ids_100k: list[str]) -> None:
    small = parse_experiment(entry("exp-one", holdout=0.02))
    large = parse_experiment(entry("exp-one", holdout=0.05))
    held_small = {u for u in ids_100k if evaluate(small, u).reason == "holdout"}
    held_large = {u for u in ids_100k if evaluate(large, u).reason == "holdout"}
    assert held_small < held_large
