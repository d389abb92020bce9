"""The taxonomy on real data shipped with statsmodels: the RAND Health Insurance Experiment.

20,190 people; the model predicts whether a person saw a doctor at all (``mdvis > 0``)
from the other nine columns with a logistic regression fitted on the first half (its
training rows, uploaded as the reference). The second half is the production traffic,
segmented by coinsurance plan. Nothing is planted, so only properties that must hold are
asserted: every error gets exactly one lever, shares sum to 1, shift is blamed only when
novel records err significantly more, and the 0/1 columns (``hlthp`` is 1 in 1.5 % of
rows) are binary, never given a percentile range.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import statsmodels.api as sm

from service.analysis import LEVERS, Reference, run_analysis

BINARY = ("idp", "hlthg", "hlthf", "hlthp")


@pytest.fixture(scope="module")
def rand_hie() -> tuple[list[dict[str, Any]], Reference]:
    data = sm.datasets.randhie.load_pandas().data
    rng = np.random.default_rng(0)
    data = data.iloc[rng.permutation(len(data))].reset_index(drop=True)
    features = [c for c in data.columns if c != "mdvis"]
    y = (data["mdvis"] > 0).astype(int).to_numpy()
    x = data[features].to_numpy(dtype=float)
    half = len(data) // 2
    model = sm.Logit(y[:half], sm.add_constant(x[:half])).fit(disp=0)
    score = model.predict(sm.add_constant(x[half:]))
    records = [
        {
            "record_id": f"p{i}",
            "timestamp": 1_700_000_000.0 + 60.0 * i,
            "prediction": float(score[i]),
            "label": int(y[half + i]),
            "features": {c: float(x[half + i, j]) for j, c in enumerate(features)},
            "attributes": {"plan": f"coins{round(float(data['lncoins'].iloc[half + i]), 1)}"},
        }
        for i in range(len(data) - half)
    ]
    reference = Reference(
        columns=tuple(features), rows=x[:half], source="uploaded", labels=y[:half].astype(float)
    )
    return records, reference


def test_rand_hie_properties(rand_hie: tuple[list[dict[str, Any]], Reference]) -> None:
    records, reference = rand_hie
    result = run_analysis(records, reference=reference)
    report = result.report
    errors = report["overall"]["errors"]
    assert errors > 1000
    # Every labelled error gets exactly one lever.
    ids = [e["record_id"] for e in result.errors]
    assert len(ids) == len(set(ids)) == errors
    assert {e["lever"] for e in result.errors} <= set(LEVERS)
    rows = {r["lever"]: r for r in report["levers"]}
    assert sum(r["errors"] for r in rows.values()) == errors
    assert sum(r["share"] for r in rows.values()) == pytest.approx(1.0)
    # Shift is blamed only when novel records err significantly more than the rest.
    test = rows["distribution_shift"]["facts"]["test"]
    novel_rate = test["novel_errors"] / test["novel"]
    rest_rate = test["rest_errors"] / test["rest"]
    if rows["distribution_shift"]["errors"]:
        assert test["passed"] and novel_rate > rest_rate
    else:
        assert not test["passed"]
        assert any(
            "nothing is blamed on shift" in e for e in rows["distribution_shift"]["evidence"]
        )
    # 0/1 columns are binary: a share, never a percentile range, never "invalid".
    for name in BINARY:
        described = report["reference"]["features"][name]
        assert described["kind"] == "binary" and "p1" not in described, name
    assert report["reference"]["features"]["hlthp"]["share_of_high"] == pytest.approx(
        0.015, abs=0.004
    )
    assert not [
        e for e in result.errors if e["lever"] == "data" and e["evidence"].get("feature") in BINARY
    ]
    assert report["calibration"]["of"] == "probability"
    print(
        "\nRAND HIE:",
        f"{errors} errors;",
        ", ".join(f"{r['lever']} {r['errors']} ({r['share']:.1%})" for r in report["levers"]),
        f"; novel {test['novel']} err {novel_rate:.1%} vs {rest_rate:.1%}",
        f"(Holm p {test['p_adjusted']:.2g})",
    )
