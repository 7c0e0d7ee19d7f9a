"""The typed events the state machine's tasks receive (see infra/finish_image.asl.json)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from lightbox.services.finish import CheckResult, ImageState


class FetchEvent(BaseModel):
    prediction_id: str


class ImageEvent(BaseModel):
    image: ImageState
    reasons: list[str] = Field(default_factory=list)


class UpscaleEvent(BaseModel):
    check: CheckResult


class StepFailure(BaseModel):
    Error: str = "States.TaskFailed"
    Cause: str | None = None


class SettleEvent(BaseModel):
    action: Literal["deliver", "reject", "fail_job", "give_up", "portrait"]
    job_id: str | None = None
    shot_id: str | None = None
    prediction_id: str | None = None
    #: "portrait": where Fetch put the portrait (None when the model made none).
    key: str | None = None
    reasons: list[str] = Field(default_factory=list)
    error: str | None = None
    failure: StepFailure | None = None


class FinishEvent(BaseModel):
    job_id: str
    finisher: str


def to_output(result: BaseModel) -> dict[str, Any]:
    return result.model_dump(mode="json")
