"""sharpen service: online experimentation for refining production ML models."""

from __future__ import annotations

__version__ = "0.1.0"
