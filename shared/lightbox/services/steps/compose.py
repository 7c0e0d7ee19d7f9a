"""Composing a shot: its request, and the tasks "Regenerate" and "Upscale".

A shot's prediction is started here and by the fan-out (`steps.fan_out`), always
through `services.predictions.start_prediction`, and bound to the shot only if the
shot still expects it: a duplicate step's prediction is cancelled.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from lightbox.catalog import ModelSpec, Scene
from lightbox.domain import avatars as avatar_domain
from lightbox.domain import planning
from lightbox.errors import NotFound
from lightbox.events import CheckResult, ImageState, SettleResult
from lightbox.models import Job, Role, Shot, ShotStatus
from lightbox.observability import logger
from lightbox.services.context import Context
from lightbox.services.predictions import Admission, PredictionFor, start_prediction

#: How long a presigned GET handed to Replicate stays valid (it fetches at once).
MODEL_INPUT_URL_SECONDS = 3600


class References:
    """Short-lived links to a job's reference images, made once per step and on demand."""

    def __init__(self, ctx: Context, job: Job) -> None:
        self._ctx = ctx
        self.job = job
        self._urls: dict[str, str] = {}
        self._lock = threading.Lock()

    def url(self, key: str | None) -> str:
        if key is None:
            raise NotFound(f"Job {self.job.job_id} is missing a reference image.")
        with self._lock:
            if key not in self._urls:
                self._urls[key] = self._ctx.objects.presigned_get(key, MODEL_INPUT_URL_SECONDS)
            return self._urls[key]


def compose_spec(ctx: Context, scene: Scene) -> ModelSpec:
    return ctx.models.compose_with_model if scene.person else ctx.models.compose


def compose_request(
    ctx: Context, shot: Shot, attempt: int, references: References
) -> tuple[ModelSpec, dict[str, object]]:
    """The model and inputs of one shot's composition, by whether its scene has a person.

    A scene with a person gets the avatar's portrait and the product as references
    (combined as models.yaml's compose_with_model says), so every shot of the job
    shows the same person.
    """
    scene = ctx.scenes[shot.scene_id]
    seed = planning.attempt_seed(shot.seed, attempt)
    job = references.job
    if not scene.person:
        spec = ctx.models.compose
        return spec, {"prompt": scene.full_prompt(),
                      spec.image_input or "input_image": references.url(job.cutout_key),
                      "seed": seed}
    with_model = ctx.models.compose_with_model
    if with_model.combine == "side_by_side":
        inputs = avatar_domain.with_model_inputs(
            with_model, scene.full_prompt(), seed,
            reference_url=references.url(job.person_reference_key))
    else:
        inputs = avatar_domain.with_model_inputs(
            with_model, scene.full_prompt(), seed,
            person_url=references.url(job.avatar_portrait_key),
            product_url=references.url(job.cutout_key))
    return with_model, inputs


def start_for_shot(
    ctx: Context,
    job: Job,
    shot: Shot,
    spec: ModelSpec,
    inputs: dict[str, Any],
    *,
    role: Role,
    attempt: int,
    expect_prediction: str | None,
    admission: Admission,
) -> str | None:
    """Start a shot's compose (or upscale) prediction, bound to the shot if it still
    expects one: no prediction yet (`expect_prediction` None), or the one it replaces."""
    purpose = PredictionFor(role=role, job_id=job.job_id, user_id=job.user_id,
                            shot_id=shot.shot_id, attempt=attempt)
    return start_prediction(ctx, spec, inputs, purpose,
                            _binder(ctx, job, shot, role, attempt, expect_prediction),
                            admission=admission)


def _binder(ctx: Context, job: Job, shot: Shot, role: Role, attempt: int,
            expect_prediction: str | None) -> Callable[[str], bool]:
    field = "prediction_id" if role == Role.SHOT else "upscale_prediction_id"
    if expect_prediction is None:
        condition = f"attribute_not_exists({field})"
        values: dict[str, object] = {}
    else:
        condition = "prediction_id = :expected AND attempt = :attempt_was"
        values = {":expected": expect_prediction, ":attempt_was": attempt - 1}
    status = ShotStatus.COMPOSING if role == Role.SHOT else ShotStatus.UPSCALING

    def bind(prediction_id: str) -> bool:
        return ctx.store.update_shot(
            job.job_id, shot.shot_id, condition=condition, condition_values=values,
            status=status, attempt=attempt, **{field: prediction_id},
        ) is not None

    return bind


def job_and_shot(ctx: Context, job_id: str, shot_id: str | None) -> tuple[Job, Shot]:
    job = ctx.store.get_job(job_id)
    shot = ctx.store.get_shot(job_id, shot_id) if shot_id else None
    if job is None or shot is None:
        raise NotFound(f"Shot {shot_id} of job {job_id} does not exist.")
    return job, shot


# --- Regenerate and Upscale -----------------------------------------------------------------


def regenerate_shot(ctx: Context, state: ImageState | CheckResult) -> SettleResult:
    """Compose the shot again with a new seed (a failed check or a failed prediction)."""
    job, shot = job_and_shot(ctx, state.job_id, state.shot_id)
    if shot.status.terminal or shot.prediction_id != state.prediction_id:
        return SettleResult(job_id=job.job_id, shot_id=shot.shot_id, job_complete=False)
    attempt = state.attempt + 1
    spec, inputs = compose_request(ctx, shot, attempt, References(ctx, job))
    start_for_shot(ctx, job, shot, spec, inputs, role=Role.SHOT, attempt=attempt,
                   expect_prediction=state.prediction_id, admission="take_one")
    logger.info("shot regenerated", extra={"job_id": job.job_id, "shot_id": shot.shot_id,
                                           "attempt": attempt})
    return SettleResult(job_id=job.job_id, shot_id=shot.shot_id, job_complete=False)


def request_upscale(ctx: Context, check: CheckResult) -> SettleResult:
    """Ask the upscaler for the size the job's presets need; its webhook continues."""
    job, shot = job_and_shot(ctx, check.job_id, check.shot_id)
    if shot.status.terminal or shot.prediction_id != check.prediction_id:
        return SettleResult(job_id=job.job_id, shot_id=shot.shot_id, job_complete=False)
    if shot.upscale_prediction_id:
        return SettleResult(job_id=job.job_id, shot_id=shot.shot_id, job_complete=False)
    if shot.image_key is None:
        raise NotFound(f"Shot {shot.shot_id} of job {job.job_id} has no image to upscale.")
    spec = ctx.models.upscale
    image_url = ctx.objects.presigned_get(shot.image_key, MODEL_INPUT_URL_SECONDS)
    start_for_shot(ctx, job, shot, spec,
                   {spec.image_input or "image": image_url, "scale": check.upscale},
                   role=Role.UPSCALE, attempt=shot.attempt, expect_prediction=None,
                   admission="take_one")
    return SettleResult(job_id=job.job_id, shot_id=shot.shot_id, job_complete=False)
