"""The messages of the "finish image" state machine (infra/finish_image.asl.json).

What each task receives and what it returns, as typed models. This module imports
no service: every step's function imports it, and nothing heavier comes with it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from lightbox.models import JobStatus, Prediction, Role

Outcome = Literal["succeeded", "failed", "stale"]


# --- what a step learns and returns --------------------------------------------------------


class ImageState(BaseModel):
    """What Fetch learns about a finished prediction; the state machine routes on it."""

    prediction_id: str
    role: Role
    job_id: str
    user_id: str
    shot_id: str | None = None
    attempt: int = 1
    outcome: Outcome
    key: str | None = None
    error: str | None = None
    can_retry: bool = False

    @classmethod
    def of(cls, prediction: Prediction, outcome: Outcome, **values: Any) -> ImageState:
        """The state of `prediction`'s image: who it is for, and what became of it."""
        return cls(**prediction.model_dump(include=_PREDICTION_FIELDS), outcome=outcome, **values)


_PREDICTION_FIELDS = {"prediction_id", "role", "job_id", "user_id", "shot_id", "attempt"}


class FanOutResult(BaseModel):
    job_id: str
    created: int
    remaining: int
    wait_seconds: int = 0


class CheckResult(BaseModel):
    job_id: str
    shot_id: str
    prediction_id: str
    attempt: int
    passed: bool
    reasons: list[str] = Field(default_factory=list)
    can_retry: bool
    upscale: float = 1.0


class SettleResult(BaseModel):
    job_id: str
    shot_id: str | None = None
    job_complete: bool


class ToolResult(BaseModel):
    """What the Tool task did with a tool's model output: settled the job's one output
    (`job_complete`), or found a fit's product too small for its preset, so the
    upscaler must enlarge the cutout `upscale` times first (the UpscaleTool task)."""

    job_id: str
    prediction_id: str
    job_complete: bool
    upscale: float = 1.0


# --- what a task receives -----------------------------------------------------------------


class FetchEvent(BaseModel):
    prediction_id: str


class ImageEvent(BaseModel):
    image: ImageState
    reasons: list[str] = Field(default_factory=list)


class UpscaleEvent(BaseModel):
    check: CheckResult


class ToolUpscaleEvent(BaseModel):
    """The UpscaleTool state: a fit's cutout needs the upscaler (`tool.upscale`)."""

    tool: ToolResult


#: What the RequestUpscale function receives: a shot's (Upscale) or a tool's (UpscaleTool).
UpscaleRequest = UpscaleEvent | ToolUpscaleEvent


class StepFailure(BaseModel):
    """What a Catch puts in `$.failure`: the error's name and its cause."""

    Error: str = "States.TaskFailed"
    Cause: str | None = None


class DeliverEvent(BaseModel):
    """A passed shot (or its upscale) is published at the job's presets."""

    action: Literal["deliver"]
    job_id: str
    shot_id: str


class RejectEvent(BaseModel):
    """A shot failed its last check (`reasons`) or its last prediction (`error`)."""

    action: Literal["reject"]
    job_id: str
    shot_id: str
    reasons: list[str] = Field(default_factory=list)
    error: str | None = None


class FailJobEvent(BaseModel):
    """The cutout failed: no shot of the job can be made."""

    action: Literal["fail_job"]
    job_id: str
    error: str | None = None


class PortraitEvent(BaseModel):
    """An avatar's portrait came back (`key`, where Fetch put it) or failed (`error`)."""

    action: Literal["portrait"]
    prediction_id: str
    key: str | None = None
    error: str | None = None


class ToolEvent(BaseModel):
    """A single-image tool's model came back: publish its image, or settle its failure."""

    action: Literal["tool"]
    image: ImageState


class GiveUpEvent(BaseModel):
    """A step failed after its retries: settle the image rather than leave it hanging."""

    action: Literal["give_up"]
    prediction_id: str
    failure: StepFailure | None = None


#: What the SettleShot function receives; the state sets `action`.
SettleEvent = Annotated[
    DeliverEvent | RejectEvent | FailJobEvent | PortraitEvent | ToolEvent | GiveUpEvent,
    Field(discriminator="action"),
]


class FinishEvent(BaseModel):
    job_id: str
    finisher: str


class FinishResult(BaseModel):
    job_id: str
    finished: bool
    status: JobStatus | None = None


def to_output(result: BaseModel) -> dict[str, Any]:
    return result.model_dump(mode="json")
