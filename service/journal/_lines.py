"""Model lines: the sequence of experiments that refine one production model."""

from __future__ import annotations

import re

from service.spec import ExperimentSpec

__all__ = ["line_of"]

_ITERATION = re.compile(r"^(?P<line>.+?)-v\d+(?:-.+)?$")


def line_of(spec: ExperimentSpec) -> str:
    """The model line an experiment iterates on.

    The spec's ``layer`` when set (experiments on one model share a layer), otherwise the
    key up to its ``-v<N>`` (``fraud-v7`` and ``fraud-v7-win-s7`` -> ``fraud``), otherwise
    the key.
    """
    if spec.layer is not None:
        return spec.layer
    match = _ITERATION.match(spec.key)
    return match.group("line") if match else spec.key
