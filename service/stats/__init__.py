"""sharpen's statistics engine: pure functions on sufficient statistics.

No I/O: numbers in, frozen dataclasses out (each with `to_dict()` for JSON). Degenerate
data never raises but sets an `ErrorCode`; invalid questions raise `StatsInputError`
naming the field.

Entry points:

* `analyze(...)`: one metric row for `POST /v1/analyze` (fixed, group-sequential or
  always-valid design);
* `compare` / `compare_batch`: fixed-horizon estimators (Welch, two proportions,
  delta-method ratios, CUPED), absolute and relative;
* `group_sequential_test`, `lan_demets_boundaries`: Lan-DeMets alpha spending;
* `cs_multiplier`, `always_valid_p`: normal-mixture confidence sequences;
* `population_stability_index`, `homogeneity_p`: distribution shift of binned counts;
* `srm_check`, `adjust_p_values`, `check_guardrails`, `decide`, `plan_experiment`,
  `minimum_detectable_effect`, `ramp_timing` (the days a staged rollout takes);
* `clean`, `interval_dict`, `arm_dict`: numbers made fit for JSON (NaN and
  infinities become None).
"""

from __future__ import annotations

from service.stats._always_valid import (
    always_valid_p,
    cs_multiplier,
    effective_units,
    information_fraction,
    mixture_tuning,
)
from service.stats._analyze import (
    ArmSummary,
    Look,
    MetricAnalysis,
    analyze,
    analyze_stats,
    metric_status,
)
from service.stats._batch import StatsBatch, StatsKind
from service.stats._boundaries import (
    Spending,
    crossing_probabilities,
    lan_demets_boundaries,
    repeated_p_value,
)
from service.stats._constants import (
    SRM_THRESHOLD,
    Action,
    Correction,
    Design,
    Direction,
    ErrorCode,
    GuardrailStatus,
    MetricKind,
    MetricStatus,
    SpendingKind,
)
from service.stats._decision import Decision, decide
from service.stats._designs import DesignVerdict, PastPlan, evaluate_design
from service.stats._drift import PSI_FLOOR, homogeneity_p, population_stability_index
from service.stats._estimators import (
    ComparisonBatch,
    compare,
    compare_batch,
    cuped_test,
    ratio_test,
    two_proportions_test,
    welch_test,
)
from service.stats._exceptions import StatsInputError
from service.stats._group_sequential import (
    GroupSequentialResult,
    SequentialLook,
    group_sequential_test,
)
from service.stats._guardrails import (
    GUARDRAIL_STATUSES,
    PLAN_SHARE,
    GuardrailArrays,
    GuardrailCell,
    GuardrailResult,
    check_guardrails,
    classify_guardrail,
    guardrail_alpha,
    guardrail_arrays,
    guardrail_multiplier,
    guardrail_p_value,
    guardrail_status_codes,
)
from service.stats._intervals import fieller
from service.stats._multiple import AdjustedPValues, adjust_p_values
from service.stats._power import (
    Plan,
    design_power,
    inflation_factor,
    minimum_detectable_effect,
    plan_experiment,
)
from service.stats._ramp import RampStep, RampTiming, ramp_timing, ramp_units
from service.stats._results import Comparison, Effect, arm_dict, clean, interval_dict
from service.stats._srm import (
    SRMResult,
    chi_square_p,
    sequential_srm_p,
    srm_check,
    srm_concentration,
)
from service.stats._statistics import CupedStats, MeanStats, ProportionStats, RatioStats, Stats

__all__ = [
    "GUARDRAIL_STATUSES",
    "PLAN_SHARE",
    "PSI_FLOOR",
    "SRM_THRESHOLD",
    "Action",
    "AdjustedPValues",
    "ArmSummary",
    "Comparison",
    "ComparisonBatch",
    "Correction",
    "CupedStats",
    "Decision",
    "Design",
    "DesignVerdict",
    "Direction",
    "Effect",
    "ErrorCode",
    "GroupSequentialResult",
    "GuardrailArrays",
    "GuardrailCell",
    "GuardrailResult",
    "GuardrailStatus",
    "Look",
    "MeanStats",
    "MetricAnalysis",
    "MetricKind",
    "MetricStatus",
    "PastPlan",
    "Plan",
    "ProportionStats",
    "RampStep",
    "RampTiming",
    "RatioStats",
    "SRMResult",
    "SequentialLook",
    "Spending",
    "SpendingKind",
    "Stats",
    "StatsBatch",
    "StatsInputError",
    "StatsKind",
    "adjust_p_values",
    "always_valid_p",
    "analyze",
    "analyze_stats",
    "arm_dict",
    "check_guardrails",
    "chi_square_p",
    "classify_guardrail",
    "clean",
    "compare",
    "compare_batch",
    "crossing_probabilities",
    "cs_multiplier",
    "cuped_test",
    "decide",
    "design_power",
    "effective_units",
    "evaluate_design",
    "fieller",
    "group_sequential_test",
    "guardrail_alpha",
    "guardrail_arrays",
    "guardrail_multiplier",
    "guardrail_p_value",
    "guardrail_status_codes",
    "homogeneity_p",
    "inflation_factor",
    "information_fraction",
    "interval_dict",
    "lan_demets_boundaries",
    "metric_status",
    "minimum_detectable_effect",
    "mixture_tuning",
    "plan_experiment",
    "population_stability_index",
    "ramp_timing",
    "ramp_units",
    "ratio_test",
    "repeated_p_value",
    "sequential_srm_p",
    "srm_check",
    "srm_concentration",
    "two_proportions_test",
    "welch_test",
]
