"""Task "Fetch": copy a finished prediction's output into S3 (Replicate's URLs expire)."""

from __future__ import annotations

from lightbox.adapters.s3 import work_prefix
from lightbox.domain import planning
from lightbox.errors import ModelError, NotFound, TransientError
from lightbox.events import ImageState
from lightbox.models import JobStatus, Prediction, Role, ShotStatus
from lightbox.services import avatars
from lightbox.services.context import Context

#: Model outputs larger than this are refused rather than copied.
MAX_OUTPUT_BYTES = 64 * 2**20

_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


def fetch_output(ctx: Context, prediction_id: str) -> ImageState:
    """Copy a finished prediction's output into S3 and say what became of its image."""
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
    if prediction.role == Role.TOOL:
        job = ctx.store.get_job(prediction.job_id)
        return (job is None or job.status.terminal or job.settled >= job.shots_total
                or job.tool_prediction_id != prediction.prediction_id)
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
        outcome = prediction.outcome
        ctx.store.update_shot(
            prediction.job_id, prediction.shot_id, upscaled_key=key,
            upscale_seconds=outcome.predict_time if outcome else None,
            condition="upscale_prediction_id = :p",
            condition_values={":p": prediction.prediction_id},
        )
