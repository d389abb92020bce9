"""Load the Lua scripts shipped next to this module."""

from __future__ import annotations

from functools import cache
from importlib import resources

__all__ = ["lua"]


@cache
def lua(name: str) -> str:
    """Source of ``service/store/lua/<name>.lua``."""
    return (resources.files("service.store") / "lua" / f"{name}.lua").read_text("utf-8")
