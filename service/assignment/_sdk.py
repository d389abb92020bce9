"""The one place the service reaches into the SDK: bucketing and evaluation live there only."""

from __future__ import annotations

from sharpen import Assignment, ConfigError
from sharpen.core import (
    Config,
    ExperimentConfig,
    canonical,
    evaluate,
    parse_config,
    parse_experiment,
)

__all__ = [
    "Assignment",
    "Config",
    "ConfigError",
    "ExperimentConfig",
    "canonical",
    "evaluate",
    "parse_config",
    "parse_experiment",
]
