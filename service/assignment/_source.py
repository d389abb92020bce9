"""Where assignment reads its config from: the live cache, or a fixed config (tests, tools)."""

from __future__ import annotations

from typing import Protocol

from service.assignment._compile import CompiledConfig

__all__ = ["ConfigSource", "StaticConfig"]


class ConfigSource(Protocol):
    @property
    def current(self) -> CompiledConfig | None: ...

    async def refresh(self, *, force: bool = False) -> bool: ...


class StaticConfig:
    """A :class:`ConfigSource` that always holds the same compiled config."""

    def __init__(self, config: CompiledConfig) -> None:
        self._config = config

    @property
    def current(self) -> CompiledConfig:
        return self._config

    async def refresh(self, *, force: bool = False) -> bool:
        return False
