"""The steps of the "finish image" state machine, one function per task.

One execution runs per finished prediction (named after it). The state machine in
infra/finish_image.asl.json routes between these steps; each step is written so that
running it twice (Step Functions retries, duplicate deliveries, the sweeper) has the
effect of running it once: writes are conditional on the state they expect, and a
step that finds its work already done says so and ends.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from PIL import Image
from pydantic import BaseModel, Field

from lightbox.adapters.s3 import work_prefix
from lightbox.catalog import ModelSpec, Scene
from lightbox.domain import avatars as avatar_domain
from lightbox.domain import planning
from lightbox.domain.fidelity import CheckThresholds, check_shot_bytes
from lightbox.errors import ModelError, NotFound
from lightbox.models import (
    Job,
    JobStatus,
    Prediction,
    Role,
    Shot,
    ShotCheckRecord,
    ShotStatus,
)
from lightbox.observability import logger
from lightbox.services import avatars, delivery
from lightbox.services.context import Context

if TYPE_CHECKING:
    from lightbox.events import SettleEvent

#: Model outputs larger than this are refused rather than copied.
MAX_OUTPUT_BYTES = 64 * 2**20
MODEL_INPUT_URL_SECONDS = 3600

Outcome = Literal["succeeded", "failed", "stale"]


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


class FinishResult(BaseModel):
    job_id: str
    finished: bool
    status: JobStatus | None = None


# --- Fetch ------------------------------------------------------------------------------


def fetch_output(ctx: Context, prediction_id: str) -> ImageState:
    """Copy a finished prediction's output into S3 (Replicate's URLs expire)."""
    prediction = ctx.store.get_prediction(prediction_id)
    if prediction is None or prediction.outcome is None:
        raise NotFound(f"Prediction {prediction_id} has no recorded outcome.")
    state = ImageState.of(prediction, "succeeded",
                          can_retry=prediction.attempt < planning.MAX_ATTEMPTS)
    if _is_stale(ctx, prediction):
        return state.model_copy(update={"outcome": "stale"})
    outcome = prediction.outcome
    if not outcome.succeeded:
        reason = outcome.error or f"the model's prediction ended {outcome.status}"
        return state.model_copy(update={"outcome": "failed", "error": reason})
    url = outcome.output_url()
    if url is None:
        return state.model_copy(update={"outcome": "failed", "error": "the model returned no image"})

    data, content_type = _download(ctx, url)
    key = _output_key(prediction, content_type)
    ctx.objects.put(key, data, content_type)
    _record_fetched(ctx, prediction, key)
    return state.model_copy(update={"key": key})


def _is_stale(ctx: Context, prediction: Prediction) -> bool:
    """A prediction nobody is waiting for any more (superseded, or its shot settled)."""
    if prediction.role == Role.CUTOUT:
        job = ctx.store.get_job(prediction.job_id)
        return job is None or job.status != JobStatus.CUTTING_OUT
    if prediction.role == Role.PORTRAIT:
        return avatars.is_stale(ctx, prediction)
    if prediction.role in (Role.SHOT, Role.UPSCALE) and prediction.shot_id:
        shot = ctx.store.get_shot(prediction.job_id, prediction.shot_id)
        if shot is None or shot.status.terminal:
            return True
        current = shot.prediction_id if prediction.role == Role.SHOT else shot.upscale_prediction_id
        return current != prediction.prediction_id
    return False


def _download(ctx: Context, url: str) -> tuple[bytes, str]:
    if url.startswith("s3://"):
        key = url.removeprefix("s3://")
        return ctx.objects.get(key), "image/png"
    with ctx.http.stream("GET", url) as response:
        if response.status_code >= 500:
            from lightbox.errors import TransientError

            raise TransientError(f"The model output could not be fetched ({response.status_code}).")
        if response.status_code >= 400:
            raise ModelError(f"The model output is gone ({response.status_code}).")
        chunks, size = [], 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > MAX_OUTPUT_BYTES:
                raise ModelError("The model output is larger than Lightbox accepts.")
            chunks.append(chunk)
        content_type = response.headers.get("content-type", "application/octet-stream")
    data = b"".join(chunks)
    return data, _image_type(data) or content_type.split(";")[0]


def _image_type(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


def _output_key(prediction: Prediction, content_type: str) -> str:
    ext = _EXTENSIONS.get(content_type, "bin")
    if prediction.role == Role.PORTRAIT:
        return avatars.portrait_output_key(prediction, ext)
    base = work_prefix(prediction.user_id, prediction.job_id)
    if prediction.role == Role.CUTOUT:
        return f"{base}/cutout-output.{ext}"
    if prediction.role == Role.SHOT:
        return f"{base}/shots/{prediction.shot_id}/attempt-{prediction.attempt}.{ext}"
    if prediction.role == Role.UPSCALE:
        return f"{base}/shots/{prediction.shot_id}/upscaled.{ext}"
    return f"{base}/{prediction.role}/{prediction.prediction_id}.{ext}"


def _record_fetched(ctx: Context, prediction: Prediction, key: str) -> None:
    if prediction.role == Role.SHOT and prediction.shot_id:
        ctx.store.update_shot(
            prediction.job_id, prediction.shot_id,
            status=ShotStatus.CHECKING, image_key=key,
            condition="prediction_id = :p",
            condition_values={":p": prediction.prediction_id},
        )
    elif prediction.role == Role.UPSCALE and prediction.shot_id:
        ctx.store.update_shot(
            prediction.job_id, prediction.shot_id, upscaled_key=key,
            condition="upscale_prediction_id = :p",
            condition_values={":p": prediction.prediction_id},
        )


# --- FanOut -----------------------------------------------------------------------------


def fan_out(ctx: Context, state: ImageState) -> FanOutResult:
    """Create one compose prediction per shot still waiting, within the shared budget.

    Called again by the state machine (after a free Wait) while shots remain, so a
    200-shot job takes its turns with everyone else's jobs.
    """
    job = ctx.store.get_job(state.job_id)
    if job is None or job.status.terminal:
        return FanOutResult(job_id=state.job_id, created=0, remaining=0)
    if job.status == JobStatus.CUTTING_OUT:
        reference_key = _prepare_reference(ctx, job, state.key)
        job = ctx.store.update_job(
            job.job_id,
            expect=[JobStatus.CUTTING_OUT],
            status=JobStatus.COMPOSING,
            cutout_key=reference_key,
            person_reference_key=_prepare_person_reference(ctx, job, reference_key),
        ) or ctx.store.get_job(job.job_id)
        assert job is not None
    if job.cutout_key is None:
        raise NotFound(f"Job {job.job_id} has no cutout.")
    waiting = [s for s in ctx.store.get_shots(job.job_id) if s.prediction_id is None
               and s.status == ShotStatus.QUEUED]
    if not waiting:
        return FanOutResult(job_id=job.job_id, created=0, remaining=0)
    turn = waiting[: ctx.settings.fan_out_chunk]
    grant = ctx.budget.take(len(turn))
    admitted = turn[: grant.granted]
    references = _References(ctx, job)
    created = 0
    if admitted:
        workers = min(ctx.settings.fan_out_concurrency, len(admitted))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(
                lambda shot: _start_compose(ctx, job, shot, references), admitted
            ))
        created = sum(results)
        ctx.budget.give_back(len(admitted) - created)
    remaining = len(waiting) - created
    wait = 0 if grant.granted == len(turn) else max(1, round(grant.retry_after))
    logger.info("fan-out turn", extra={"job_id": job.job_id, "shots_started": created,
                                       "remaining": remaining})
    return FanOutResult(job_id=job.job_id, created=created, remaining=remaining,
                        wait_seconds=wait)


def _start_compose(ctx: Context, job: Job, shot: Shot, references: _References) -> bool:
    """Create one shot's prediction and bind it to the shot (once)."""
    spec, inputs = _compose_request(ctx, shot, shot.attempt, references)
    prediction_id = ctx.replicate.create_prediction(spec, inputs, webhook=ctx.webhook_url())
    return _bind_prediction(ctx, job, shot, prediction_id, Role.SHOT, shot.attempt,
                            spec.model, expect_prediction=None)


class _References:
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


def _compose_request(
    ctx: Context, shot: Shot, attempt: int, references: _References
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


def _compose_spec(ctx: Context, scene: Scene) -> ModelSpec:
    return ctx.models.compose_with_model if scene.person else ctx.models.compose


def _bind_prediction(
    ctx: Context,
    job: Job,
    shot: Shot,
    prediction_id: str,
    role: Role,
    attempt: int,
    model: str,
    *,
    expect_prediction: str | None,
) -> bool:
    """Record a new prediction, then point the shot at it if nobody else did first.

    The record goes first so that its webhook, which can arrive at once, finds it. If
    the shot has moved on meanwhile (a duplicate step), the new prediction is
    cancelled and its record stays unbound: its webhook then finds it stale.
    """
    ctx.store.put_prediction(Prediction.pending(
        prediction_id, role, within_seconds=ctx.settings.prediction_deadline_seconds,
        job_id=job.job_id, user_id=job.user_id, shot_id=shot.shot_id, attempt=attempt,
        model=model,
    ))
    field = "prediction_id" if role == Role.SHOT else "upscale_prediction_id"
    if expect_prediction is None:
        condition = f"attribute_not_exists({field})"
        values: dict[str, object] = {}
    else:
        condition = "prediction_id = :expected AND attempt = :attempt_was"
        values = {":expected": expect_prediction, ":attempt_was": attempt - 1}
    status = ShotStatus.COMPOSING if role == Role.SHOT else ShotStatus.UPSCALING
    bound = ctx.store.update_shot(
        job.job_id, shot.shot_id,
        condition=condition, condition_values=values,
        status=status, attempt=attempt, **{field: prediction_id},
    )
    if bound is None:
        ctx.replicate.cancel_prediction(prediction_id)
        return False
    return True


def _prepare_reference(ctx: Context, job: Job, cutout_key: str | None) -> str:
    """The model's reference image: the product on white, with its alpha kept.

    A model that ignores alpha sees the product on a clean white backdrop; one that
    reads alpha (and the local engine) gets the exact cutout. Trimmed to the product
    with a margin and squared, so scenes frame the product, not the old photo.
    """
    if cutout_key is None:
        raise NotFound(f"Job {job.job_id} has no cutout output.")
    cutout = Image.open(io.BytesIO(ctx.objects.get(cutout_key)))
    cutout.load()
    reference = delivery.reference_from_cutout(cutout)
    key = f"{work_prefix(job.user_id, job.job_id)}/cutout.png"
    buffer = io.BytesIO()
    reference.save(buffer, format="PNG", compress_level=3)
    ctx.objects.put(key, buffer.getvalue(), "image/png")
    return key


def _prepare_person_reference(ctx: Context, job: Job, product_key: str) -> str | None:
    """For a single-image composing model: the avatar's portrait and the product side by
    side, made once per job (None when the job has no scene with a person, or the
    model takes each reference in its own input)."""
    if not any(ctx.scenes[s].person for s in job.scenes):
        return None
    if ctx.models.compose_with_model.combine != "side_by_side":
        return None
    if job.avatar_portrait_key is None:
        raise NotFound(f"Job {job.job_id} has scenes with a person but no avatar portrait.")
    portrait = Image.open(io.BytesIO(ctx.objects.get(job.avatar_portrait_key)))
    product = Image.open(io.BytesIO(ctx.objects.get(product_key)))
    reference = avatar_domain.side_by_side_reference(portrait, product)
    key = f"{work_prefix(job.user_id, job.job_id)}/person-reference.png"
    ctx.objects.put(key, avatar_domain.png_bytes(reference), "image/png")
    return key


# --- Check ------------------------------------------------------------------------------


class _CutoutCache:
    """Decoded cutouts by key: a warm container checks many shots of the same job."""

    def __init__(self, size: int = 8) -> None:
        self._items: OrderedDict[str, Image.Image] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def get(self, ctx: Context, key: str) -> Image.Image:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        image = Image.open(io.BytesIO(ctx.objects.get(key)))
        image.load()
        image = image.convert("RGBA")
        with self._lock:
            self._items[key] = image
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return image


_cutouts = _CutoutCache()


def check_shot(ctx: Context, state: ImageState) -> CheckResult:
    """Judge a composed shot against the cutout: product fidelity, faces, size."""
    if state.shot_id is None or state.key is None:
        raise NotFound("Check needs a shot and its image.")
    job = ctx.store.get_job(state.job_id)
    if job is None or job.cutout_key is None:
        raise NotFound(f"Job {state.job_id} has no cutout.")
    shot = ctx.store.get_shot(state.job_id, state.shot_id)
    if shot is None:
        raise NotFound(f"Shot {state.shot_id} of job {state.job_id} does not exist.")
    scene = ctx.scenes[shot.scene_id]
    data = ctx.objects.get(state.key)
    result = check_shot_bytes(
        data,
        _cutouts.get(ctx, job.cutout_key),
        expect_person=scene.person,
        min_long_side=ctx.settings.min_shot_long_side,
        aspect_ratio=delivery.compose_aspect_ratio(_compose_spec(ctx, scene)),
        thresholds=_thresholds_for(scene.props, scene.person),
    )
    record = ShotCheckRecord(attempt=state.attempt, passed=result.passed,
                             reasons=result.reasons, measures=result.measures)
    ctx.store.update_shot(state.job_id, state.shot_id, append_check=record,
                          status=ShotStatus.CHECKING)
    scale = 1.0
    if result.passed:
        size = (int(result.measures.get("width", 0)), int(result.measures.get("height", 0)))
        scale = delivery.upscale_needed(size, job.presets, ctx.models.upscale.max_scale)
    logger.info("shot checked", extra={"job_id": state.job_id, "shot_id": state.shot_id,
                                       "passed": result.passed, "reasons": result.reasons})
    return CheckResult(
        job_id=state.job_id, shot_id=state.shot_id, prediction_id=state.prediction_id,
        attempt=state.attempt, passed=result.passed, reasons=result.reasons,
        can_retry=state.attempt < planning.MAX_ATTEMPTS, upscale=scale,
    )


@lru_cache(maxsize=16)
def _thresholds_for(props_share: float, person: bool = False) -> CheckThresholds:
    """The configured thresholds, allowing the props a scene itself asks for, and the
    smaller product a person holds or wears."""
    base = CheckThresholds.load()
    changes: dict[str, float] = {}
    if props_share > base.max_extra_object_share:
        changes["max_extra_object_share"] = props_share
    if person:
        changes["min_product_scale"] = base.person_min_product_scale
    return base.model_copy(update=changes) if changes else base


# --- Regenerate and Upscale ---------------------------------------------------------------


def regenerate_shot(ctx: Context, state: ImageState | CheckResult) -> SettleResult:
    """Compose the shot again with a new seed (a failed check or a failed prediction)."""
    job, shot = _job_and_shot(ctx, state.job_id, state.shot_id)
    if shot.status.terminal or shot.prediction_id != state.prediction_id:
        return SettleResult(job_id=job.job_id, shot_id=shot.shot_id, job_complete=False)
    attempt = state.attempt + 1
    ctx.budget.take_one()
    spec, inputs = _compose_request(ctx, shot, attempt, _References(ctx, job))
    prediction_id = ctx.replicate.create_prediction(spec, inputs, webhook=ctx.webhook_url())
    _bind_prediction(ctx, job, shot, prediction_id, Role.SHOT, attempt, spec.model,
                     expect_prediction=state.prediction_id)
    logger.info("shot regenerated", extra={"job_id": job.job_id, "shot_id": shot.shot_id,
                                           "attempt": attempt})
    return SettleResult(job_id=job.job_id, shot_id=shot.shot_id, job_complete=False)


def request_upscale(ctx: Context, check: CheckResult) -> SettleResult:
    """Ask Real-ESRGAN for the size the job's presets need; its webhook continues."""
    job, shot = _job_and_shot(ctx, check.job_id, check.shot_id)
    if shot.status.terminal or shot.prediction_id != check.prediction_id:
        return SettleResult(job_id=job.job_id, shot_id=shot.shot_id, job_complete=False)
    if shot.upscale_prediction_id:
        return SettleResult(job_id=job.job_id, shot_id=shot.shot_id, job_complete=False)
    assert shot.image_key is not None
    ctx.budget.take_one()
    spec = ctx.models.upscale
    image_url = ctx.objects.presigned_get(shot.image_key, MODEL_INPUT_URL_SECONDS)
    prediction_id = ctx.replicate.create_prediction(
        spec, {spec.image_input or "image": image_url, "scale": check.upscale},
        webhook=ctx.webhook_url(),
    )
    _bind_prediction(ctx, job, shot, prediction_id, Role.UPSCALE, shot.attempt, spec.model,
                     expect_prediction=None)
    return SettleResult(job_id=job.job_id, shot_id=shot.shot_id, job_complete=False)


# --- Deliver / Reject -------------------------------------------------------------------


def deliver_shot(ctx: Context, job_id: str, shot_id: str) -> SettleResult:
    """Publish a passed shot at each of the job's presets, then count it off."""
    job, shot = _job_and_shot(ctx, job_id, shot_id)
    if shot.status == ShotStatus.REJECTED:
        return _count_off(ctx, job, shot, delivered=False)
    if shot.status != ShotStatus.DELIVERED:
        source_key = shot.upscaled_key or shot.image_key
        assert source_key is not None
        outputs, compliance = delivery.publish(ctx, job, shot, ctx.objects.get(source_key))
        ctx.store.update_shot(
            job_id, shot_id,
            condition="#status <> :rejected",
            condition_values={"#status": "status", ":rejected": str(ShotStatus.REJECTED)},
            status=ShotStatus.DELIVERED, outputs=outputs, compliance=compliance, reason=None,
        )
    return _count_off(ctx, job, shot, delivered=True)


def reject_shot(ctx: Context, job_id: str, shot_id: str, reason: str) -> SettleResult:
    job, shot = _job_and_shot(ctx, job_id, shot_id)
    if shot.status == ShotStatus.DELIVERED:
        return _count_off(ctx, job, shot, delivered=True)
    ctx.store.update_shot(
        job_id, shot_id,
        condition="#status <> :delivered",
        condition_values={"#status": "status", ":delivered": str(ShotStatus.DELIVERED)},
        status=ShotStatus.REJECTED, reason=reason,
    )
    logger.info("shot rejected", extra={"job_id": job_id, "shot_id": shot_id, "reason": reason})
    return _count_off(ctx, job, shot, delivered=False)


def _count_off(ctx: Context, job: Job, shot: Shot, *, delivered: bool) -> SettleResult:
    updated = ctx.store.count_off_shot(job.job_id, shot.shot_id, delivered=delivered)
    return SettleResult(job_id=job.job_id, shot_id=shot.shot_id,
                        job_complete=updated.settled >= updated.shots_total)


def fail_job(ctx: Context, job_id: str, reason: str) -> SettleResult:
    """The cutout failed: no shot can be made. Every unsettled shot is rejected."""
    job = ctx.store.get_job(job_id)
    if job is None:
        raise NotFound(f"Job {job_id} does not exist.")
    ctx.store.update_job(job_id, reason=reason)
    complete = job.settled >= job.shots_total
    for shot in ctx.store.get_shots(job_id):
        if not shot.status.terminal:
            complete = reject_shot(ctx, job_id, shot.shot_id, reason).job_complete
    return SettleResult(job_id=job_id, job_complete=complete or job.shots_total == 0)


def fail_image(
    ctx: Context, state: ImageState, error: str, cause: str | None = None
) -> SettleResult:
    """An unexpected failure of one image's steps: reject it rather than leave it hanging."""
    logger.error("image step failed", extra={"prediction_id": state.prediction_id,
                                             "error": error, "cause": (cause or "")[:1000]})
    if state.role == Role.CUTOUT:
        return fail_job(ctx, state.job_id, "The product could not be cut out of the photo.")
    if state.role == Role.PORTRAIT:
        avatars.portrait_failed(ctx, state.prediction_id, error)
        return SettleResult(job_id=state.job_id, job_complete=False)
    if state.shot_id:
        return reject_shot(ctx, state.job_id, state.shot_id,
                           "Lightbox could not finish this shot.")
    return SettleResult(job_id=state.job_id, job_complete=False)


def _job_and_shot(ctx: Context, job_id: str, shot_id: str | None) -> tuple[Job, Shot]:
    job = ctx.store.get_job(job_id)
    shot = ctx.store.get_shot(job_id, shot_id) if shot_id else None
    if job is None or shot is None:
        raise NotFound(f"Shot {shot_id} of job {job_id} does not exist.")
    return job, shot


# --- Finish -----------------------------------------------------------------------------


def finish_job(ctx: Context, job_id: str, finisher: str) -> FinishResult:
    """Close a job whose shots are all settled: manifest, contact sheet, credits, status.

    Exactly one execution wins the claim; its own retries may run this again and
    every effect (objects overwritten with the same content, the ledger settled by
    job id) stays single.
    """
    job = ctx.store.get_job(job_id)
    if job is None:
        raise NotFound(f"Job {job_id} does not exist.")
    if job.status.terminal:
        return FinishResult(job_id=job_id, finished=False, status=job.status)
    if job.settled < job.shots_total:
        return FinishResult(job_id=job_id, finished=False)
    claimed = ctx.store.claim_finish(job_id, finisher)
    if claimed is None:
        return FinishResult(job_id=job_id, finished=False)
    shots = ctx.store.get_shots(job_id)
    delivered = [s for s in shots if s.status == ShotStatus.DELIVERED]
    spent = sum(s.cost for s in delivered)
    status = (
        JobStatus.DONE if len(delivered) == len(shots) and shots
        else JobStatus.PARTLY_DONE if delivered
        else JobStatus.FAILED
    )
    manifest_key, sheet_key = delivery.write_job_outputs(ctx, claimed, shots, status)
    ctx.ledger.settle(job.user_id, job_id, spent=spent,
                      refunded=claimed.credits_reserved - spent)
    reason = claimed.reason
    if status == JobStatus.FAILED and not reason:
        reason = "No shot passed its checks; every credit was refunded."
    final = ctx.store.update_job(
        job_id,
        expect=[JobStatus.CUTTING_OUT, JobStatus.COMPOSING],
        status=status, manifest_key=manifest_key, contact_sheet_key=sheet_key, reason=reason,
    )
    logger.info("job finished", extra={"job_id": job_id, "status": str(status),
                                       "delivered": len(delivered), "shots": len(shots)})
    return FinishResult(job_id=job_id, finished=final is not None, status=status)


def settle(ctx: Context, event: SettleEvent) -> SettleResult:
    """The Deliver / Reject / FailJob / GiveUp states: one function, one action each."""
    if event.action == "deliver":
        assert event.job_id and event.shot_id
        return deliver_shot(ctx, event.job_id, event.shot_id)
    if event.action == "reject":
        assert event.job_id and event.shot_id
        reason = event.error or "; ".join(event.reasons) or "The shot did not pass its checks."
        return reject_shot(ctx, event.job_id, event.shot_id, _sentence(reason))
    if event.action == "fail_job":
        assert event.job_id
        reason = event.error or "the product could not be cut out"
        return fail_job(ctx, event.job_id, f"The cutout failed: {reason}.")
    if event.action == "portrait":
        assert event.prediction_id
        recorded = avatars.record_portrait(ctx, event.prediction_id, key=event.key,
                                           error=event.error)
        return SettleResult(job_id=recorded.avatar_id, job_complete=False)
    assert event.prediction_id
    prediction = ctx.store.get_prediction(event.prediction_id)
    if prediction is None:
        raise NotFound(f"Prediction {event.prediction_id} does not exist.")
    state = ImageState.of(prediction, "failed")
    failure = event.failure
    return fail_image(ctx, state, failure.Error if failure else "unknown",
                      failure.Cause if failure else None)


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[0].upper() + text[1:] if text else text
    return text if text.endswith(".") else f"{text}."
