"""Experiment specs to start from: one builder, the shapes the tests share, one change at a time.

``spec`` makes any two-or-more-arm spec; ``metric`` any metric. The named shapes below are
the ones several folders use; a test changes one thing through ``**changes``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from service.spec.examples import FRAUD_V7

__all__ = ["fraud_spec", "guarded_spec", "metric", "simple_spec", "spec"]


def metric(
    name: str, kind: str = "proportion", *, role: str | None = None, **fields: Any
) -> dict[str, Any]:
    """A metric; ``value`` defaults to the metric's name (ratios name numerator/denominator)."""
    out: dict[str, Any] = {"name": name, "kind": kind}
    if kind != "ratio":
        out["value"] = fields.pop("value", name)
    if role is not None:
        out["role"] = role
    out.update(fields)
    return out


def spec(
    key: str,
    *,
    metrics: Sequence[dict[str, Any]],
    arms: Sequence[str] = ("baseline", "candidate"),
    weight: int = 50,
    models: Sequence[str] | None = None,
    **changes: Any,
) -> dict[str, Any]:
    """A spec with equal-weight ``arms`` (the first is the baseline), each serving
    ``{"model": models[i]}`` when ``models`` is given; ``changes`` set or replace fields."""
    variants: list[dict[str, Any]] = [{"key": arm, "weight": weight} for arm in arms]
    if models is not None:
        for variant, model in zip(variants, models, strict=True):
            variant["payload"] = {"model": model}
    doc: dict[str, Any] = {
        "key": key,
        "variants": variants,
        "baseline": arms[0],
        "metrics": [dict(m) for m in metrics],
    }
    doc.update(copy.deepcopy(changes))
    return doc


def simple_spec(key: str = "exp-a", **changes: Any) -> dict[str, Any]:
    """Control against treatment on one conversion rate (baseline 10 %)."""
    conversion = metric(
        "conversion", value="converted", role="primary", mde=0.05, baseline_mean=0.1
    )
    metrics = changes.pop("metrics", [conversion])
    return spec(key, arms=("control", "treatment"), weight=1, metrics=metrics, **changes)


def fraud_spec(**changes: Any) -> dict[str, Any]:
    """The shipped fraud-v7 example."""
    doc = copy.deepcopy(FRAUD_V7)
    doc.update(changes)
    return doc


def guarded_spec(key: str = "fraud-v7", **changes: Any) -> dict[str, Any]:
    """A two-arm spec with a recall guardrail watched by country, auto-rollback on."""
    fields: dict[str, Any] = {
        "hypothesis": "merchant features lift precision without hurting recall",
        "lever": "features",
        "unit": "user",
        "segments": ["country"],
        "metrics": [
            metric("precision", "mean", role="primary", mde=0.05, baseline_mean=0.6),
            metric("recall", "mean", role="guardrail", margin=0.02),
        ],
        "guardrails": {"auto_rollback": True},
        **changes,
    }
    return spec(key, models=("v6", "v7"), **fields)
