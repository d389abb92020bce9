"""Service settings, read from ``SHARPEN_*`` environment variables and validated at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.webhook_targets import check_url

__all__ = ["Settings"]


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Everything the service can be configured with. Unsafe values are refused by name."""

    model_config = SettingsConfigDict(env_prefix="SHARPEN_", extra="ignore", frozen=True)

    redis_url: str | None = Field(
        default=None,
        description="redis:// or rediss:// URL; unset means an embedded redis-server child.",
    )
    redis_cluster: bool = Field(default=False, description="Treat redis_url as a Redis Cluster.")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    data_dir: Path = Path(".sharpen")
    dev: bool = False
    admin_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    client_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)

    max_body_bytes: int = Field(default=1 << 20, ge=1024)
    max_events_body_bytes: int = Field(default=8 << 20, ge=1024)
    # Monitored models (POST /v1/models/{name}/records, analysis, backtests).
    model_max_records: int = Field(
        default=1_000_000, ge=100, le=50_000_000, description="Records kept per model (oldest go)."
    )
    model_reference_records: int = Field(
        default=1000, ge=50, le=1_000_000, description="First N records freeze the feature ranges."
    )
    records_max_batch: int = Field(default=10_000, ge=1, le=100_000)
    model_reference_max_bytes: int = Field(
        default=64 << 20, ge=1024, description="Body limit of POST /v1/models/{name}/reference."
    )
    model_reference_max_values: int = Field(
        default=4_000_000, ge=1000, le=50_000_000, description="Rows x features of a reference."
    )
    model_analysis_slots: int = Field(
        default=1, ge=1, le=16, description="Model analyses run at once per process (else 503)."
    )

    # The model monitor (service/modelwatch): deployed models watched between experiments.
    model_monitor_interval_s: float = Field(default=60.0, gt=0, le=3600)
    model_monitor_alpha: float = Field(
        default=0.05, gt=0, lt=0.5, description="False-alarm budget per model (all cells)."
    )
    model_monitor_margin: float = Field(
        default=0.05, ge=0, lt=1, description="Relative drop beyond which a segment is degraded."
    )
    model_monitor_min_labelled: int = Field(
        default=200, ge=20, le=1_000_000, description="Labelled records a side needs to decide."
    )
    model_monitor_psi: float = Field(
        default=0.2, gt=0, le=10, description="PSI an input needs (besides the test) to drift."
    )
    model_monitor_reference_days: int = Field(
        default=28, ge=1, le=365, description="Reference: these days before the last week."
    )
    model_monitor_attributes: int = Field(
        default=8, ge=0, le=64, description="Attributes per model watched as segments."
    )
    model_monitor_features: int = Field(
        default=32, ge=0, le=256, description="Features per model watched for drift."
    )
    model_monitor_values: int = Field(
        default=20, ge=1, le=1000, description="Values per attribute counted (Space-Saving)."
    )
    model_monitor_max_models: int = Field(
        default=200, ge=1, le=100_000, description="Models watched (the most recently active)."
    )
    model_monitor_batch_items: int = Field(
        default=50_000, ge=100, le=10_000_000, description="Records+labels applied per pass."
    )
    model_monitor_backlog_max: int = Field(
        default=2_000_000, ge=1000, description="Unapplied records+labels per model before 503."
    )

    exposure_flush_interval_s: float = Field(default=0.005, gt=0, le=5)
    exposure_buffer_max: int = Field(
        default=100_000,
        ge=20_000,  # twice the largest request (10,000 exposures): one always fits when idle
        le=10_000_000,
        description="Exposures admitted and not yet written, all experiments; one experiment "
        "may hold at most the free part (alone: half). More: 429/503 + Retry-After.",
    )
    event_dedup_window_s: int = Field(default=3600, ge=1)
    idempotency_window_s: int = Field(default=86_400, ge=1)
    config_poll_interval_s: float = Field(default=0.5, gt=0, le=30)
    # GET /v1/config/stream (service/assignment/_stream.py); limits are per worker process.
    config_stream_max: int = Field(
        default=1000, ge=0, le=100_000, description="Config streams one worker holds; more: 503."
    )
    config_stream_max_per_key: int = Field(
        default=500,
        ge=0,
        le=100_000,
        description="Config streams of one API key per worker; more: 429.",
    )
    config_stream_heartbeat_s: float = Field(default=15.0, gt=0, le=300)
    monitor_interval_s: float = Field(default=15.0, gt=0)
    # Guardrail monitor, Prometheus metrics, webhooks (service/monitor, service/metrics.py).
    monitor_lease_ttl_s: float | None = Field(
        default=None, gt=0, description="Monitor lease per experiment; default 3 x the interval."
    )
    metrics_segment_values_max: int = Field(
        default=10, ge=1, le=1000, description="Segment label values per attribute; more: other."
    )
    metrics_ended_retention_s: int = Field(
        default=3600, ge=0, description="Guardrail series of an ended experiment stay this long."
    )
    webhook_allow_private: bool = Field(
        default=False,
        description="Let webhooks go to loopback, private and link-local addresses.",
    )
    webhook_urls: Annotated[list[str], NoDecode] = Field(default_factory=list, max_length=20)
    webhook_secret: str | None = Field(default=None, description="HMAC-SHA256 key of webhooks.")
    webhook_timeout_s: float = Field(default=5.0, gt=0, le=120)
    webhook_max_attempts: int = Field(default=6, ge=1, le=30)
    webhook_backoff_s: float = Field(default=0.5, gt=0, le=600)
    webhook_queue_max: int = Field(default=1000, ge=1, le=1_000_000)
    worker_metrics_port: int | None = Field(
        default=None, ge=1, le=65535, description="sharpen worker: serve its /metrics here."
    )
    aggregator_block_ms: int = Field(default=200, ge=1, le=60_000)
    # Outcome ingestion (POST /v1/events) and aggregation.
    events_max_batch: int = Field(default=10_000, ge=1, le=100_000)
    event_grace_s: int = Field(
        default=86_400, ge=0, description="Events still accepted this long after the end."
    )
    experiment_state_retention_s: int = Field(
        default=7 * 86_400,
        ge=3 * 3600,
        le=3650 * 86_400,
        description="An ended experiment's statistics, units and streams are deleted this long "
        "after it ends (spec, audit and journal are kept).",
    )
    event_max_age_s: int = Field(default=7 * 86_400, ge=60, le=90 * 86_400)
    event_max_future_s: int = Field(default=300, ge=0, le=86_400)
    event_max_values: int = Field(default=64, ge=1, le=1000)
    event_max_attributes: int = Field(default=32, ge=0, le=1000)
    event_max_attribute_chars: int = Field(default=256, ge=1, le=10_000)
    segment_max_values: int = Field(
        default=50,
        ge=1,
        le=1000,
        description="Undeclared values per segment with their own row, the largest by units; "
        "the rest show as __other__.",
    )
    segment_candidates_max: int = Field(
        default=1000,
        ge=10,
        le=100_000,
        description="Values counted per segment to rank them by volume (Space-Saving).",
    )
    ingest_max_backlog: int = Field(
        default=2_000_000, ge=1000, description="Unaggregated events per experiment before 503."
    )
    aggregator_batch_entries: int = Field(
        default=4, ge=1, le=10_000, description="Events-stream entries (batches) per Lua call."
    )
    aggregator_batch_exposures: int = Field(
        default=2000, ge=1, le=100_000, description="Exposures per Lua call."
    )
    aggregator_claim_idle_ms: int = Field(default=30_000, ge=50, le=3_600_000)
    aggregator_trim_interval_s: float = Field(default=1.0, gt=0, le=600)
    run_worker: bool = True
    admin_rate_limit_per_s: float = Field(default=50.0, gt=0)
    admin_rate_limit_burst: int = Field(
        default=100, ge=1, le=100_000, description="Admin requests a key may make at once."
    )
    # Failed-authentication limits (service/auth_limits.py): per client address, and overall.
    auth_fail_burst: int = Field(
        default=10, ge=1, le=10_000, description="Failed authentications an address may make."
    )
    auth_fail_per_min: float = Field(
        default=6.0, gt=0, le=6000, description="Then this many a minute per address."
    )
    auth_fail_global_burst: int = Field(
        default=200, ge=1, le=1_000_000, description="Failed authentications from all addresses."
    )
    auth_fail_global_per_min: float = Field(
        default=120.0, gt=0, le=600_000, description="Then this many a minute overall."
    )
    auth_fail_max_addresses: int = Field(
        default=10_000, ge=100, le=10_000_000, description="Addresses tracked (memory bound)."
    )
    forwarded_allow_ips: str = Field(
        default="127.0.0.1",
        description="sharpen serve: proxies whose X-Forwarded-For is trusted (uvicorn's option).",
    )
    # Logging (service/logs.py): every line of a request carries its X-Request-ID.
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = Field(default=False, description="One log line per request.")
    ui_session_ttl_s: int = Field(default=8 * 3600, ge=60, le=7 * 86_400)
    ui_refresh_interval_s: float = Field(default=5.0, ge=1, le=300)

    @field_validator("admin_keys", "client_keys", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("admin_keys", "client_keys")
    @classmethod
    def _strong_keys(cls, keys: list[str]) -> list[str]:
        for entry in keys:
            secret = entry.split("=", 1)[1] if "=" in entry else entry
            if len(secret) < 8:
                raise ValueError("every API key must be at least 8 characters long")
        return keys

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return url or None

    @field_validator("webhook_urls", mode="before")
    @classmethod
    def _webhook_csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("webhook_urls")
    @classmethod
    def _webhook_targets(cls, urls: list[str], info: ValidationInfo) -> list[str]:
        # Names are resolved and checked at every delivery (service/webhook_targets.py).
        allow_private = bool(info.data.get("webhook_allow_private", False))
        for index, url in enumerate(urls, start=1):
            try:
                check_url(url, allow_private=allow_private)
            except ValueError as exc:
                raise ValueError(f"URL {index}: {exc}") from None
        return urls

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret_strong(cls, secret: str | None) -> str | None:
        if secret is not None and len(secret) < 16:
            raise ValueError("the webhook secret must be at least 16 characters long")
        return secret or None

    @model_validator(mode="after")
    def _webhooks_signed(self) -> Settings:
        if self.webhook_urls and self.webhook_secret is None:
            raise ValueError("SHARPEN_WEBHOOK_URLS needs SHARPEN_WEBHOOK_SECRET: bodies are signed")
        return self

    @model_validator(mode="after")
    def _retention_after_grace(self) -> Settings:
        if self.experiment_state_retention_s < self.event_grace_s + 7200:
            raise ValueError(
                "SHARPEN_EXPERIMENT_STATE_RETENTION_S must be at least SHARPEN_EVENT_GRACE_S "
                "+ 2 h: the state of an experiment is still written that long after it ends"
            )
        return self

    @model_validator(mode="after")
    def _keys_or_dev(self) -> Settings:
        if not self.dev and not (self.admin_keys and self.client_keys):
            raise ValueError(
                "no API keys: set SHARPEN_ADMIN_KEYS and SHARPEN_CLIENT_KEYS "
                "(comma-separated, optionally name=key), or run `sharpen serve --dev`"
            )
        if self.redis_cluster and self.redis_url is None:
            raise ValueError("SHARPEN_REDIS_CLUSTER=true needs SHARPEN_REDIS_URL")
        return self
