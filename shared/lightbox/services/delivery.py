"""Delivering shots: sized for each marketplace preset, labelled as AI-made, checked
for compliance, and summed up per job in a manifest and a contact sheet."""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

from PIL import Image

from lightbox.adapters.s3 import shots_prefix
from lightbox.catalog import ModelSpec
from lightbox.catalog.presets import Preset, load_presets
from lightbox.domain.contact_sheet import SheetEntry, render_contact_sheet
from lightbox.domain.marketplace.compliance import check_compliance
from lightbox.domain.marketplace.encode import encode_for_preset
from lightbox.domain.marketplace.fit import fit_to_preset
from lightbox.domain.marketplace.geometry import needs_upscale
from lightbox.domain.provenance import Provenance
from lightbox.models import Job, JobStatus, Shot, ShotStatus, utcnow
from lightbox.services.context import Context

#: Below this factor Lanczos resampling inside the preset fit is enough.
UPSCALE_THRESHOLD = 1.1
#: Margin around the product in the reference image the composing model sees.
REFERENCE_MARGIN = 0.12
#: Parallel reads of shot images for the contact sheet (S3 GETs, mostly waiting).
SHEET_READERS = 8

_FORMATS = {"JPEG": ("jpg", "image/jpeg"), "PNG": ("png", "image/png"),
            "WEBP": ("webp", "image/webp")}


@lru_cache(maxsize=1)
def presets() -> dict[str, Preset]:
    return load_presets()


def known_presets() -> set[str]:
    return set(presets())


def reference_from_cutout(cutout: Image.Image) -> Image.Image:
    """Trim a cutout to its product, pad it to a square, and whiten what is transparent."""
    rgba = cutout.convert("RGBA")
    bbox = rgba.getchannel("A").point(lambda a: 255 if a > 8 else 0).getbbox()
    if bbox:
        rgba = rgba.crop(bbox)
    side = int(max(rgba.size) * (1 + 2 * REFERENCE_MARGIN))
    canvas = Image.new("RGBA", (side, side), (255, 255, 255, 0))
    canvas.paste(rgba, ((side - rgba.width) // 2, (side - rgba.height) // 2))
    # Only fully transparent pixels turn white: edge pixels keep their own colour, so
    # whoever composites with the alpha gets no white fringe.
    white = Image.new("RGBA", canvas.size, (255, 255, 255, 0))
    transparent = canvas.getchannel("A").point(lambda a: 255 if a == 0 else 0)
    canvas.paste(white, mask=transparent)
    return canvas


def compose_aspect_ratio(spec: ModelSpec) -> float | None:
    ratio = str(spec.input.get("aspect_ratio", ""))
    if ":" not in ratio:
        return None
    width, height = ratio.split(":", 1)
    return float(width) / float(height)


def upscale_needed(size: tuple[int, int], preset_ids: list[str], max_scale: float) -> float:
    """The factor an upscaler must reach for every preset the job asked for (1.0: none)."""
    catalogue = presets()
    factor = max((needs_upscale(size, catalogue[p]) for p in preset_ids if p in catalogue),
                 default=1.0)
    if factor <= UPSCALE_THRESHOLD:
        return 1.0
    return round(min(factor, max_scale), 2)


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
    outputs: dict[str, str] = {}
    compliance: dict[str, dict] = {}
    for preset_id in job.presets:
        preset = presets()[preset_id]
        fitted = fit_to_preset(image, preset)
        encoded = encode_for_preset(fitted, preset, provenance=provenance)
        ext, content_type = _FORMATS.get(_format_of(encoded), ("jpg", "image/jpeg"))
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


def write_job_outputs(
    ctx: Context, job: Job, shots: list[Shot], status: JobStatus
) -> tuple[str, str]:
    """The manifest (provenance of every shot) and the contact sheet, next to the shots."""
    prefix = shots_prefix(job.user_id, job.job_id)
    manifest_key = f"{prefix}/manifest.json"
    sheet_key = f"{prefix}/contact-sheet.png"
    ctx.objects.put(manifest_key, json.dumps(build_manifest(ctx, job, shots, status),
                                             indent=2).encode(), "application/json")
    with ThreadPoolExecutor(max_workers=SHEET_READERS) as pool:
        entries = list(pool.map(lambda shot: _sheet_entry(ctx, shot), shots))
    sheet = render_contact_sheet(entries, title=f"Lightbox job {job.job_id}: {status}")
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG", optimize=False, compress_level=6)
    ctx.objects.put(sheet_key, buffer.getvalue(), "image/png")
    return manifest_key, sheet_key


def build_manifest(ctx: Context, job: Job, shots: list[Shot], status: JobStatus) -> dict:
    models = ctx.models
    return {
        "job_id": job.job_id,
        "status": str(status),
        "created_at": job.created_at.isoformat(),
        "finished_at": utcnow().isoformat(),
        "source_photo": job.source_key,
        "normalised_photo": job.image_key,
        "cutout": job.cutout_key,
        "presets": job.presets,
        "shots": [
            {
                "shot_id": s.shot_id,
                "scene": s.scene_id,
                "variant": s.variant,
                "status": str(s.status),
                "reason": s.reason,
                "attempts": s.attempt,
                "outputs": s.outputs,
                "digital_source_type": "trainedAlgorithmicMedia",
                "provenance": {
                    "source_photo": job.source_key,
                    "models": {
                        "cutout": models.cutout.model,
                        "compose": models.compose.model,
                        "upscale": models.upscale.model if s.upscale_prediction_id else None,
                    },
                    "inputs": {
                        "prompt": ctx.scenes[s.scene_id].full_prompt(),
                        "seed": s.seed,
                        "fixed": models.compose.input,
                    },
                },
                "checks": [c.model_dump(mode="json") for c in s.checks],
                "compliance": s.compliance,
            }
            for s in shots
        ],
    }


def _sheet_entry(ctx: Context, shot: Shot) -> SheetEntry:
    # A delivered JPEG decodes at thumbnail size (draft mode); the model's PNG does not.
    jpegs = [key for key in shot.outputs.values() if key.endswith(".jpg")]
    key = (jpegs[0] if jpegs else None) or shot.upscaled_key or shot.image_key
    image = None
    if key:
        image = Image.open(io.BytesIO(ctx.objects.get(key)))
        image.draft("RGB", (320, 320))
        image.load()
    last = shot.checks[-1] if shot.checks else None
    if shot.status == ShotStatus.DELIVERED:
        detail = _measures_line(last.measures) if last else "delivered"
    else:
        detail = shot.reason or (last.reasons[0] if last and last.reasons else "")
    return SheetEntry(
        title=f"{shot.shot_id} · {ctx.scenes[shot.scene_id].name} · v{shot.variant}",
        status=str(shot.status),
        detail=detail,
        image=image,
    )


def _measures_line(measures: dict[str, float]) -> str:
    parts = []
    if "delta_e" in measures:
        parts.append(f"ΔE {measures['delta_e']:.1f}")
    if "matched_share" in measures:
        parts.append(f"match {measures['matched_share']:.0%}")
    if "faces" in measures:
        parts.append(f"faces {int(measures['faces'])}")
    return " · ".join(parts) or "passed"
