"""Plots drawn on the server as SVG strings: pure functions, no I/O, no dependencies.

Every plotted number is also written, exactly (``repr``), into ``data-*`` attributes of
the element that draws it, so tests and scripts can read the figures back.
"""

from __future__ import annotations

from service.ui.plots._forest import ForestRow, forest_plot
from service.ui.plots._improvement import ImprovementStep, ModelLine, improvement_chart
from service.ui.plots._mde import MdePoint, mde_curve
from service.ui.plots._pareto import ParetoRegion, pareto_curve
from service.ui.plots._reliability import ReliabilityBin, reliability_diagram
from service.ui.plots._sequential import Look, sequential_plot
from service.ui.plots._trend import TrendDay, trend_plot
from service.ui.plots._units import StepMark, TimePoint, units_plot

__all__ = [
    "ForestRow",
    "ImprovementStep",
    "Look",
    "MdePoint",
    "ModelLine",
    "ParetoRegion",
    "ReliabilityBin",
    "StepMark",
    "TimePoint",
    "TrendDay",
    "forest_plot",
    "improvement_chart",
    "mde_curve",
    "pareto_curve",
    "reliability_diagram",
    "sequential_plot",
    "trend_plot",
    "units_plot",
]
