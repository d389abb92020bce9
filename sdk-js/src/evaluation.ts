/**
 * Pure evaluation: which variant a unit gets. No I/O, never throws.
 *
 * The rules, in order (the first that decides wins):
 *
 * 1. status: `shipped` serves `shipped_variant`; `rolled_back`, `stopped` and
 *    anything not `running` serve the baseline.
 * 2. targeting: every targeted attribute must be present with one of the
 *    allowed values, compared in canonical form (see canonical.ts).
 * 3. layer: the unit's layer bucket (salt = layer name) must fall in `layer_range`.
 * 4. holdout: units in the first `holdout` share of the global holdout draw
 *    are held out (the same units for every experiment).
 * 5. traffic: the traffic bucket must be below `traffic` × BUCKETS.
 * 6. variant: the variant bucket picks the variant by cumulative weight.
 *
 * Only rule 6 puts a unit in the experiment (reason `assigned`); every other
 * outcome serves the baseline (or the shipped variant) with the reason. An
 * empty or non-scalar unit id, or one longer than `MAX_UNIT_ID` characters, is not
 * bucketed: baseline, `invalid_unit`.
 */

import { canonical, tooLong } from "./canonical.js";
import type { Config, ExperimentConfig } from "./config.js";
import { BUCKETS, HOLDOUT_SALT, HOLDOUT_SEED, PrefixHasher } from "./hashing.js";
import { type Assignment, type Attributes, EMPTY_PAYLOAD, assignment } from "./models.js";

const HOLDOUT = new PrefixHasher(`${HOLDOUT_SALT}:`, HOLDOUT_SEED);

/**
 * Assignment of `unitId` (with its `attributes`) in `experiment`.
 *
 * Deterministic and pure: the same inputs give the same answer in every process
 * and every SDK that implements the same hash version. The result is one of the
 * experiment's precomputed, frozen assignments.
 */
export function evaluate(
  experiment: ExperimentConfig,
  unitId: unknown,
  attributes?: Attributes | null,
): Assignment {
  const fixed = experiment.fixed;
  if (fixed !== null) return fixed;
  const unit = typeof unitId === "string" ? unitId : canonical(unitId);
  if (!unit || tooLong(unit)) return experiment.excluded.invalid_unit;
  if (experiment.gated) {
    const excluded = gates(experiment, unit, attributes);
    if (excluded !== null) return excluded;
  }
  const draw = experiment.variantHasher.hash(unit) % BUCKETS;
  const boundaries = experiment.boundaries;
  let i = 0;
  while (draw >= boundaries[i]!) i++; // the last boundary is BUCKETS
  return experiment.assigned[i]!;
}

/** Rules 2-5: the baseline outcome that keeps the unit out, null if it enters. */
function gates(
  experiment: ExperimentConfig,
  unit: string,
  attributes: Attributes | null | undefined,
): Assignment | null {
  const rules = experiment.targetingItems;
  if (rules.length > 0) {
    if (attributes === null || typeof attributes !== "object") return experiment.excluded.targeting;
    for (const [name, allowed] of rules) {
      const value = attributes[name];
      const text = typeof value === "string" ? value : canonical(value);
      if (text === null || !allowed.has(text)) return experiment.excluded.targeting;
    }
  }
  const layer = experiment.layerHasher;
  if (layer !== null) {
    const [start, end] = experiment.layerRange!;
    const layerBucket = layer.hash(unit) % BUCKETS;
    if (!(start <= layerBucket && layerBucket < end)) return experiment.excluded.layer;
  }
  const holdout = experiment.holdoutThreshold;
  if (holdout > 0 && HOLDOUT.hash(unit) % BUCKETS < holdout) {
    return experiment.excluded.holdout;
  }
  const traffic = experiment.trafficThreshold;
  if (traffic < BUCKETS && experiment.trafficHasher.hash(unit) % BUCKETS >= traffic) return experiment.excluded.traffic;
  return null;
}

/**
 * Evaluate `experiment` from a whole config, as the client does.
 *
 * With no config at all the answer is `fallback` (the `default` variant, if
 * given); an experiment the config does not hold gives `unknown_experiment`.
 */
export function assignFromConfig(
  config: Config | null,
  experiment: string,
  unitId: unknown,
  attributes?: Attributes | null,
  fallbackVariant: string | null = null,
): Assignment {
  if (config === null) return assignment(experiment, fallbackVariant, EMPTY_PAYLOAD, false, "fallback");
  const entry = config.experiments.get(experiment);
  if (entry === undefined) {
    return assignment(experiment, fallbackVariant, EMPTY_PAYLOAD, false, "unknown_experiment");
  }
  return evaluate(entry, unitId, attributes);
}
