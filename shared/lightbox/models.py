"""The data Lightbox keeps and passes around, as typed models.

Storage-neutral: `lightbox.adapters.dynamo` maps these to table items. Times are
timezone-aware UTC datetimes.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


def utcnow() -> datetime:
    return datetime.now(UTC)


class JobStatus(enum.StrEnum):
    AWAITING_UPLOAD = "awaiting_upload"
    CUTTING_OUT = "cutting_out"
    COMPOSING = "composing"
    DONE = "done"
    PARTLY_DONE = "partly_done"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.PARTLY_DONE, JobStatus.FAILED)


class ShotStatus(enum.StrEnum):
    QUEUED = "queued"
    COMPOSING = "composing"
    CHECKING = "checking"
    UPSCALING = "upscaling"
    DELIVERED = "delivered"
    REJECTED = "rejected"

    @property
    def terminal(self) -> bool:
        return self in (ShotStatus.DELIVERED, ShotStatus.REJECTED)


class Role(enum.StrEnum):
    """What a prediction's output is for; the state machine routes on it."""

    CUTOUT = "cutout"
    SHOT = "shot"
    UPSCALE = "upscale"
    PORTRAIT = "portrait"


class PredictionOutcome(BaseModel):
    """A finished prediction as Replicate reported it (webhook or GET)."""

    model_config = ConfigDict(extra="ignore")

    status: str
    output: Any = None
    error: str | None = None
    predict_time: float | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    def output_url(self) -> str | None:
        """The first file the prediction produced."""
        out = self.output
        if isinstance(out, list):
            out = out[0] if out else None
        return out if isinstance(out, str) else None


TERMINAL_PREDICTION_STATUSES = frozenset({"succeeded", "failed", "canceled", "aborted"})


class ShotCheckRecord(BaseModel):
    """One fidelity check of one attempt, kept on the shot and shown to the user."""

    attempt: int
    passed: bool
    reasons: list[str] = Field(default_factory=list)
    measures: dict[str, float] = Field(default_factory=dict)


class Job(BaseModel):
    job_id: str
    user_id: str
    status: JobStatus
    scenes: list[str]
    variants: int
    presets: list[str]
    shots_total: int
    credits_reserved: int = 0
    avatar_id: str | None = None
    source_key: str
    image_key: str | None = None
    cutout_key: str | None = None
    cutout_prediction_id: str | None = None
    delivered: set[str] = Field(default_factory=set)
    rejected: set[str] = Field(default_factory=set)
    reason: str | None = None
    finisher: str | None = None
    manifest_key: str | None = None
    contact_sheet_key: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    deadline: datetime
    finished_at: datetime | None = None

    @property
    def settled(self) -> int:
        return len(self.delivered | self.rejected)


class Shot(BaseModel):
    job_id: str
    shot_id: str
    index: int
    scene_id: str
    variant: int
    seed: int
    cost: int = 1
    status: ShotStatus = ShotStatus.QUEUED
    attempt: int = 1
    prediction_id: str | None = None
    upscale_prediction_id: str | None = None
    image_key: str | None = None
    upscaled_key: str | None = None
    outputs: dict[str, str] = Field(default_factory=dict)
    compliance: dict[str, Any] = Field(default_factory=dict)
    checks: list[ShotCheckRecord] = Field(default_factory=list)
    reason: str | None = None
    updated_at: datetime = Field(default_factory=utcnow)


class Prediction(BaseModel):
    """Lightbox's record of one Replicate prediction: the webhook's and sweeper's lookup."""

    prediction_id: str
    role: Role
    job_id: str
    user_id: str
    shot_id: str | None = None
    attempt: int = 1
    model: str
    created_at: datetime = Field(default_factory=utcnow)
    deadline: datetime
    state: Literal["pending", "completed"] = "pending"
    outcome: PredictionOutcome | None = None
    asked: bool = False
