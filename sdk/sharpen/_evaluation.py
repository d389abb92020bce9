"""Pure evaluation: which variant a unit gets. No I/O, never raises.

The rules, in order (the first that decides wins):

1. status: ``shipped`` serves ``shipped_variant``; ``rolled_back``,
   ``stopped`` and anything not ``running`` serve the baseline.
2. targeting: every targeted attribute must be present with one of the
   allowed values, compared in canonical form (see ``_canonical``).
3. layer: the unit's layer bucket (salt = layer name) must fall in
   ``layer_range``; the service gives experiments of one layer disjoint ranges.
4. holdout: units in the first ``holdout`` share of the global holdout draw
   are held out (the same units for every experiment).
5. traffic: the traffic bucket must be below ``traffic`` x BUCKETS.
6. variant: the variant bucket picks the variant by cumulative weight.

Only rule 6 puts a unit in the experiment (``reason="assigned"``); every
other outcome serves the baseline (or the shipped variant) with the reason.
An empty or non-scalar unit id, or one longer than ``MAX_UNIT_ID`` characters, is not
bucketed: baseline, ``invalid_unit``.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from typing import Final

from sharpen._canonical import MAX_UNIT_ID, canonical
from sharpen._config import Config, ExperimentConfig
from sharpen._hashing import (
    BUCKETS,
    HOLDOUT_SALT,
    HOLDOUT_SEED,
    LAYER_SEED,
    TRAFFIC_SEED,
    VARIANT_SEED,
    encode_key,
)
from sharpen._models import EMPTY_PAYLOAD, Assignment

__all__ = ["assign_from_config", "evaluate"]

_HOLDOUT_PREFIX: Final = HOLDOUT_SALT + ":"


def evaluate(
    experiment: ExperimentConfig,
    unit_id: str,
    attributes: Mapping[str, object] | None = None,
) -> Assignment:
    """Assignment of ``unit_id`` (with its ``attributes``) in ``experiment``.

    Deterministic and pure: the same inputs give the same answer in every
    process and every SDK that implements the same hash version.  The result
    is one of the experiment's precomputed, immutable assignments.
    """
    fixed = experiment.fixed
    if fixed is not None:
        return fixed
    if type(unit_id) is not str:
        unit_id = canonical(unit_id)  # type: ignore[assignment]
    if not unit_id or len(unit_id) > MAX_UNIT_ID:
        return experiment.excluded["invalid_unit"]
    joined = experiment.key_prefix + unit_id
    key = joined if joined.isascii() else encode_key(joined)
    if experiment.gated:
        excluded = _gates(experiment, unit_id, attributes, key)
        if excluded is not None:
            return excluded
    return experiment.assigned[
        bisect_right(experiment.boundaries, experiment.hasher(key, VARIANT_SEED, False) % BUCKETS)
    ]


def _gates(
    experiment: ExperimentConfig,
    unit_id: str,
    attributes: Mapping[str, object] | None,
    key: str | bytes,
) -> Assignment | None:
    """Rules 2-5: the baseline outcome that keeps the unit out, ``None`` if it enters."""
    if experiment.targeting_items:
        if attributes is None:
            return experiment.excluded["targeting"]
        try:
            for name, allowed in experiment.targeting_items:
                value = attributes.get(name)
                if type(value) is not str:
                    value = canonical(value)
                if value not in allowed:
                    return experiment.excluded["targeting"]
        except (AttributeError, TypeError):  # attributes is not a mapping
            return experiment.excluded["targeting"]
    hasher = experiment.hasher
    layer_prefix = experiment.layer_prefix
    if layer_prefix is not None:
        start, end = experiment.layer_range  # type: ignore[misc]
        layer_bucket = hasher(encode_key(layer_prefix + unit_id), LAYER_SEED, False) % BUCKETS
        if not start <= layer_bucket < end:
            return experiment.excluded["layer"]
    cut = experiment.holdout_threshold
    if cut and hasher(encode_key(_HOLDOUT_PREFIX + unit_id), HOLDOUT_SEED, False) % BUCKETS < cut:
        return experiment.excluded["holdout"]
    cut = experiment.traffic_threshold
    if cut < BUCKETS and hasher(key, TRAFFIC_SEED, False) % BUCKETS >= cut:
        return experiment.excluded["traffic"]
    return None


def assign_from_config(
    config: Config | None,
    experiment: str,
    unit_id: str,
    attributes: Mapping[str, object] | None = None,
    *,
    default: str | None = None,
) -> Assignment:
    """Evaluate ``experiment`` from a whole config, as the SDK clients do.

    With no config at all the answer is ``default`` with reason ``fallback``;
    an experiment the config does not hold gives ``default`` with reason
    ``unknown_experiment``.
    """
    if config is None:
        return Assignment(experiment, default, EMPTY_PAYLOAD, False, "fallback")
    entry = config.experiments.get(experiment)
    if entry is None:
        return Assignment(experiment, default, EMPTY_PAYLOAD, False, "unknown_experiment")
    return evaluate(entry, unit_id, attributes)
