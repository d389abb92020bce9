"""sharpen: deterministic assignment, local evaluation and outcome tracking."""

from __future__ import annotations
