"""The stored experiment: its spec plus lifecycle state, version and audit trail."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from service.spec.lifecycle import Status
from service.spec.models import ExperimentSpec
from service.spec.rollout import RolloutState

__all__ = ["AuditEntry", "ExperimentRecord"]


class AuditEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: float = Field(description="Unix time, seconds.")
    actor: str = Field(description="Name of the API key (never the key), or 'monitor'.")
    action: str
    version: int
    detail: dict[str, Any] = Field(default_factory=dict)


class ExperimentRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    spec: ExperimentSpec
    status: Status = "draft"
    version: int = 1
    created_at: float
    updated_at: float
    started_at: float | None = None
    ended_at: float | None = None
    shipped_variant: str | None = None
    layer_range: tuple[int, int] | None = None
    audit: list[AuditEntry] = Field(default_factory=list)
    rollout: RolloutState | None = Field(
        default=None, description="The ramp's steps so far, when the spec has a rollout."
    )

    @property
    def current_traffic(self) -> float:
        """The share of eligible units in the experiment now: the ramp's step, else the spec's."""
        return self.rollout.traffic if self.rollout is not None else self.spec.traffic
