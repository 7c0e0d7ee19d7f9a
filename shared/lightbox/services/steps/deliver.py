"""Task "Deliver": publish a passed shot at each of the job's presets, then count it off.

Each preset gets the shot fitted to its canvas, encoded with the AI label and an sRGB
profile, and checked for compliance (Pillow and numpy: the marketplace code).
"""

from __future__ import annotations

import io

from PIL import Image

from lightbox.adapters.s3 import shots_prefix
from lightbox.catalog.presets import load_presets
from lightbox.domain.marketplace.compliance import check_compliance
from lightbox.domain.marketplace.encode import encode_for_preset
from lightbox.domain.marketplace.fit import fit_to_preset
from lightbox.domain.provenance import Provenance
from lightbox.errors import NotFound
from lightbox.events import SettleResult
from lightbox.models import Job, Shot, ShotStatus
from lightbox.services.context import Context
from lightbox.services.steps.compose import job_and_shot
from lightbox.services.steps.settle import count_off

#: A delivery format's file extension and content type.
DELIVERY_FORMATS = {"JPEG": ("jpg", "image/jpeg"), "PNG": ("png", "image/png"),
                    "WEBP": ("webp", "image/webp")}


def deliver_shot(ctx: Context, job_id: str, shot_id: str) -> SettleResult:
    """Publish a passed shot at each of the job's presets, then count it off."""
    job, shot = job_and_shot(ctx, job_id, shot_id)
    if shot.status == ShotStatus.REJECTED:
        return count_off(ctx, job, shot, delivered=False)
    if shot.status != ShotStatus.DELIVERED:
        source_key = shot.upscaled_key or shot.image_key
        if source_key is None:
            raise NotFound(f"Shot {shot_id} of job {job_id} has no image to deliver.")
        outputs, compliance = publish(ctx, job, shot, ctx.objects.get(source_key))
        ctx.store.update_shot(
            job_id, shot_id,
            condition="#status <> :rejected",
            condition_values={"#status": "status", ":rejected": str(ShotStatus.REJECTED)},
            status=ShotStatus.DELIVERED, outputs=outputs, compliance=compliance, reason=None,
        )
    return count_off(ctx, job, shot, delivered=True)


def publish(ctx: Context, job: Job, shot: Shot, data: bytes) -> tuple[dict[str, str], dict]:
    """Write the shot at each preset; returns the keys and the compliance reports."""
    image = Image.open(io.BytesIO(data))
    image.load()
    image = image.convert("RGB")
    scene = ctx.scenes[shot.scene_id]
    provenance = Provenance(
        description=f"{scene.name} product shot made by Lightbox from the shop's photo",
        models=_models_used(ctx, shot),
    )
    presets = load_presets()
    outputs: dict[str, str] = {}
    compliance: dict[str, dict] = {}
    for preset_id in job.presets:
        preset = presets[preset_id]
        fitted = fit_to_preset(image, preset)
        encoded = encode_for_preset(fitted, preset, provenance=provenance)
        ext, content_type = DELIVERY_FORMATS.get(_format_of(encoded), ("jpg", "image/jpeg"))
        key = f"{shots_prefix(job.user_id, job.job_id)}/{shot.shot_id}/{preset_id}.{ext}"
        ctx.objects.put(key, encoded, content_type)
        outputs[preset_id] = key
        compliance[preset_id] = check_compliance(encoded, preset).model_dump(mode="json")
    return outputs, compliance


def _format_of(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "PNG"
    if data[:4] == b"RIFF":
        return "WEBP"
    return "JPEG"


def _models_used(ctx: Context, shot: Shot) -> list[str]:
    models = [ctx.models.cutout.model, ctx.models.compose.model]
    if shot.upscale_prediction_id:
        models.append(ctx.models.upscale.model)
    return models
