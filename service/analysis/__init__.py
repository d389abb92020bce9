"""Performance analysis of a production model: where it fails, and which lever to pull.

Pure functions over numpy arrays (numpy, scipy, statsmodels, scikit-learn; no I/O).
Records come in the stored shape (see :mod:`service.store.records`): dicts with
``record_id``, ``timestamp`` (epoch seconds), ``prediction``, ``offline_prediction``,
``label``, ``confidence``, ``attributes``, ``features``, ``flags`` and
``error_category``.

Definitions: a record is evaluated when it has a label; it is an error when the
model gave no prediction or its prediction is wrong: scored binary models (fractional
scores in [0, 1], binary labels) predict ``score >= threshold`` and are scored by log
loss; regression models (a ``tolerance`` is set) err when ``|prediction - label| >
tolerance``; label models by 0-1 loss. Rates carry Wilson intervals; rows with fewer
than ``min_support`` labelled records are flagged ``low_support``. Slices:
:mod:`service.analysis._slices`. Levers: :mod:`service.analysis.taxonomy` (the
evidence) and :mod:`service.analysis._levers` (expected fixes, ranking). Reference and
novelty: :mod:`service.analysis._reference`, :mod:`service.analysis._novelty`.
Recalibration and probe: :mod:`service.analysis._probe`. Backtests:
:mod:`service.analysis.backtest`.
"""

from __future__ import annotations

from service.analysis._backtest_input import nest_rows, rows_from_csv
from service.analysis._frame import Frame, build_frame, normalise
from service.analysis._names import EVIDENCE_ORDER, FLAGS, LEVERS, Flag, Lever
from service.analysis._reference import (
    Reference,
    build_reference,
    feature_matrix,
    pack_rows,
    reference_meta,
    unpack,
)
from service.analysis._report import Analysis, AnalysisParams, analyze, run_analysis

__all__ = [
    "EVIDENCE_ORDER",
    "FLAGS",
    "LEVERS",
    "Analysis",
    "AnalysisParams",
    "Flag",
    "Frame",
    "Lever",
    "Reference",
    "analyze",
    "build_frame",
    "build_reference",
    "feature_matrix",
    "nest_rows",
    "normalise",
    "pack_rows",
    "reference_meta",
    "rows_from_csv",
    "run_analysis",
    "unpack",
]
