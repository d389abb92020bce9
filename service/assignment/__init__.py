"""Assignment on the service side: the in-memory config, request decoding, exposure logging.

Bucketing and evaluation are the SDK's (``sharpen``); this package only feeds them.
"""

from __future__ import annotations

from service.assignment._assigner import Assigner
from service.assignment._cache import ConfigCache, ConfigSource, StaticConfig
from service.assignment._compile import CompiledConfig, compile_config, compile_entries
from service.assignment._exposures import ExposureBuffer, ExposureStats
from service.assignment._requests import MAX_BATCH, MAX_EXPOSURES, MAX_UNIT_ID
from service.assignment._stream import ConfigStreams, StreamTicket

__all__ = [
    "MAX_BATCH",
    "MAX_EXPOSURES",
    "MAX_UNIT_ID",
    "Assigner",
    "CompiledConfig",
    "ConfigCache",
    "ConfigSource",
    "ConfigStreams",
    "ExposureBuffer",
    "ExposureStats",
    "StaticConfig",
    "StreamTicket",
    "compile_config",
    "compile_entries",
]
