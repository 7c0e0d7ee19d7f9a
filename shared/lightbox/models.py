"""The data Lightbox keeps and passes around, as typed models.

Storage-neutral: `lightbox.adapters.dynamo` maps these to table items. Times are
timezone-aware UTC datetimes.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


def utcnow() -> datetime:
    return datetime.now(UTC)


class JobStatus(enum.StrEnum):
    AWAITING_UPLOAD = "awaiting_upload"
    CUTTING_OUT = "cutting_out"
    COMPOSING = "composing"
    #: A single-image tool's model is working (kind "tool").
    PROCESSING = "processing"
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
    #: A single-image tool's model (cutout or upscaler) working for a tool job.
    TOOL = "tool"


class PortraitStatus(enum.StrEnum):
    """One avatar portrait: asked for (claimed), being generated, made, or not made."""

    REQUESTED = "requested"
    GENERATING = "generating"
    READY = "ready"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (PortraitStatus.READY, PortraitStatus.FAILED)


class AvatarStatus(enum.StrEnum):
    """A custom avatar: candidates being generated, waiting for the shop to keep one, ready."""

    GENERATING = "generating"
    CHOOSING = "choosing"
    READY = "ready"
    FAILED = "failed"


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


class JobCosts(BaseModel):
    """A job's costs in USD (estimates at list prices as of `prices_as_of`)."""

    replicate_usd: float
    aws_usd: float
    credits_charged: int
    #: The credits' worth at the default pack's price per credit.
    credits_value_usd: float
    predictions: dict[str, int]
    prices_as_of: str

    @property
    def margin_usd(self) -> float:
        return self.credits_value_usd - self.replicate_usd - self.aws_usd


class JobKind(enum.StrEnum):
    """A shoot (scenes composed around the product) or one single-image tool."""

    SHOOT = "shoot"
    TOOL = "tool"


class ToolName(enum.StrEnum):
    REMOVE_BACKGROUND = "remove-background"
    UPSCALE = "upscale"
    FIT = "fit"


class ToolOrder(BaseModel):
    """Which single-image tool a job runs, with its options (checked when ordered)."""

    name: ToolName
    #: upscale: how many times larger the photo comes back.
    scale: int | None = None
    #: fit: the marketplace preset the product is fitted to.
    preset: str | None = None


class ToolOutput(BaseModel):
    """What a tool made: one image in shots/, and for "fit" its compliance report."""

    key: str
    content_type: str
    width: int
    height: int
    #: The models that made it (none for an uploaded cutout fitted as it is).
    models: list[str] = Field(default_factory=list)
    compliance: dict[str, Any] | None = None


#: The one output of a tool job, counted off the job like a shot (delivered or rejected).
TOOL_OUTPUT_ID = "tool"


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
    #: The avatar's portrait when the job was ordered: every "with model" shot of the
    #: job references this one, whatever the avatar's owner keeps later.
    avatar_portrait_key: str | None = None
    #: The reference a single-image composing model gets for "with model" shots (the
    #: portrait and the product side by side), made once when the cutout is ready.
    person_reference_key: str | None = None
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
    #: What the job cost to make (set when it finishes).
    costs: JobCosts | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    deadline: datetime
    finished_at: datetime | None = None
    kind: JobKind = JobKind.SHOOT
    tool: ToolOrder | None = None
    #: The prediction the tool waits for now (its cutout or upscale), bound once.
    tool_prediction_id: str | None = None
    tool_output: ToolOutput | None = None

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
    #: The upscaler's GPU seconds, as Replicate reported them (it bills by the second).
    upscale_seconds: float | None = None
    outputs: dict[str, str] = Field(default_factory=dict)
    compliance: dict[str, Any] = Field(default_factory=dict)
    checks: list[ShotCheckRecord] = Field(default_factory=list)
    reason: str | None = None
    updated_at: datetime = Field(default_factory=utcnow)


class Prediction(BaseModel):
    """Lightbox's record of one Replicate prediction: the webhook's and sweeper's lookup.

    A portrait (Role.PORTRAIT) works for an avatar, not a job: `job_id` holds the
    avatar's id, `shot_id` the candidate's number ("01"), `attempt` the portrait's
    generation, and `user_id` its owner (lightbox.domain.avatars.CATALOGUE_OWNER for
    the catalogue's, which the operator pays for).
    """

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

    @classmethod
    def pending(cls, prediction_id: str, role: Role, *, within_seconds: int,
                **fields: Any) -> Prediction:
        """A prediction just created, due back (by webhook or sweeper) within the time."""
        now = utcnow()
        return cls(prediction_id=prediction_id, role=role, created_at=now,
                   deadline=now + timedelta(seconds=within_seconds), **fields)


class Portrait(BaseModel):
    """One portrait of an avatar: a custom avatar's candidate, or a catalogue avatar's one."""

    avatar_id: str
    candidate: int = 1
    seed: int
    status: PortraitStatus = PortraitStatus.REQUESTED
    #: Catalogue portraits count their (re)generations; a claim names the one it makes.
    generation: int = 1
    prediction_id: str | None = None
    key: str | None = None
    error: str | None = None
    requested_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    generated_at: datetime | None = None


class Avatar(BaseModel):
    """A shop's own avatar, made by the wizard; private to its owner."""

    avatar_id: str
    owner_id: str
    name: str
    attributes: dict[str, str]
    prompt: str
    status: AvatarStatus = AvatarStatus.GENERATING
    candidates: int
    #: Credits per candidate when it was ordered (the price may change later).
    price_each: int
    credits_reserved: int
    chosen: int | None = None
    portrait_key: str | None = None
    reason: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
