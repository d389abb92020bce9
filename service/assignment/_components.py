"""Wire assignment into an app: the config cache and the exposure buffer as components."""

from __future__ import annotations

from service.assignment._assigner import Assigner
from service.assignment._cache import ConfigCache
from service.assignment._exposures import ExposureBuffer
from service.assignment._stream import ConfigStreams
from service.runtime import Runtime
from service.store.config_feed import ConfigFeed
from service.store.exposures import ExposureLog

__all__ = ["add_assignment"]


def add_assignment(runtime: Runtime) -> None:
    """Component factory: builds ``runtime.assigner`` and the config streams; starts the
    cache before the buffer, so on shutdown the buffer is flushed first (components stop in
    reverse)."""
    settings = runtime.settings
    cache = ConfigCache(
        runtime.experiments,
        ConfigFeed(runtime.redis),
        poll_interval_s=settings.config_poll_interval_s,
    )
    exposure_log = ExposureLog(runtime.redis)
    buffer = ExposureBuffer(
        exposure_log,
        flush_interval_s=settings.exposure_flush_interval_s,
        max_pending=settings.exposure_buffer_max,
        on_written=runtime.metrics.count_assignments,
    )
    runtime.assigner = Assigner(cache, buffer)
    streams = ConfigStreams(
        cache,
        max_connections=settings.config_stream_max,
        max_per_key=settings.config_stream_max_per_key,
        heartbeat_s=settings.config_stream_heartbeat_s,
    )
    runtime.extras["config_streams"] = streams
    # Stopped first: the streams end before the cache and the buffer stop.
    runtime.components.extend([cache, buffer, streams])
