"""Task "Finish": close a job whose shots are all settled, exactly once.

The job's outputs are written here: the manifest (every shot's provenance, checks and
compliance) and the contact sheet (Pillow), next to the shots. A tool job's manifest
records its one image; it has no contact sheet.
"""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor

from PIL import Image

from lightbox.adapters.s3 import shots_prefix
from lightbox.catalog.costs import load_aws_prices, load_model_prices
from lightbox.catalog.packs import usd_per_credit
from lightbox.domain.contact_sheet import SheetEntry, render_contact_sheet
from lightbox.domain.costs import PredictionUse, job_costs
from lightbox.errors import NotFound
from lightbox.events import FinishResult
from lightbox.models import (
    TOOL_OUTPUT_ID,
    Job,
    JobCosts,
    JobKind,
    JobStatus,
    Shot,
    ShotStatus,
    utcnow,
)
from lightbox.observability import logger
from lightbox.services import tools
from lightbox.services.context import Context
from lightbox.services.steps.compose import compose_spec

#: Parallel reads of shot images for the contact sheet (S3 GETs, mostly waiting).
SHEET_READERS = 8


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
    if claimed.kind == JobKind.TOOL:
        status, costs, manifest_key, sheet_key = _close_tool(ctx, claimed)
    else:
        status, costs, manifest_key, sheet_key = _close_shoot(ctx, claimed)
    spent = costs.credits_charged
    ctx.ledger.settle(job.user_id, job_id, spent=spent,
                      refunded=claimed.credits_reserved - spent)
    reason = claimed.reason
    if status == JobStatus.FAILED and not reason:
        reason = ("No shot passed its checks; every credit was refunded."
                  if claimed.kind == JobKind.SHOOT
                  else "The image could not be made; the credit was refunded.")
    final = ctx.store.update_job(
        job_id,
        expect=[JobStatus.CUTTING_OUT, JobStatus.COMPOSING, JobStatus.PROCESSING],
        status=status, manifest_key=manifest_key, contact_sheet_key=sheet_key, reason=reason,
        costs=costs,
    )
    logger.info("job finished", extra={"job_id": job_id, "status": str(status),
                                       "delivered": len(claimed.delivered),
                                       "settled": claimed.settled})
    return FinishResult(job_id=job_id, finished=final is not None, status=status)


def _close_shoot(ctx: Context, job: Job) -> tuple[JobStatus, JobCosts, str, str | None]:
    """A shoot's status, its costs (the credits its delivered shots charge among them),
    its manifest and contact sheet."""
    shots = ctx.store.get_shots(job.job_id)
    delivered = [s for s in shots if s.status == ShotStatus.DELIVERED]
    status = (
        JobStatus.DONE if len(delivered) == len(shots) and shots
        else JobStatus.PARTLY_DONE if delivered
        else JobStatus.FAILED
    )
    costs = _costs(_shoot_predictions(ctx, job, shots), sum(s.cost for s in delivered))
    manifest_key, sheet_key = write_job_outputs(ctx, job, shots, status, costs)
    return status, costs, manifest_key, sheet_key


def _close_tool(ctx: Context, job: Job) -> tuple[JobStatus, JobCosts, str, str | None]:
    """A tool job is done, and its credit spent, when its one image was made."""
    made = TOOL_OUTPUT_ID in job.delivered and job.tool_output is not None
    status = JobStatus.DONE if made else JobStatus.FAILED
    uses = [PredictionUse(model) for model in job.tool_output.models] if job.tool_output else []
    costs = _costs(uses, job.credits_reserved if made else 0)
    manifest_key = f"{shots_prefix(job.user_id, job.job_id)}/manifest.json"
    manifest = tools.tool_manifest(job, status, finished_at=utcnow().isoformat())
    manifest["costs"] = costs.model_dump(mode="json")
    ctx.objects.put(manifest_key, json.dumps(manifest, indent=2).encode(), "application/json")
    return status, costs, manifest_key, None


def _shoot_predictions(ctx: Context, job: Job, shots: list[Shot]) -> list[PredictionUse]:
    """Every prediction a shoot made: its cutout, each shot's compose attempts, upscales."""
    uses = []
    if job.cutout_prediction_id:
        cutout = ctx.store.get_prediction(job.cutout_prediction_id)
        if cutout is not None:
            uses.append(PredictionUse(cutout.model, cutout.outcome.predict_time
                                      if cutout.outcome else None))
    for shot in shots:
        if shot.prediction_id:  # each attempt was one compose prediction
            model = compose_spec(ctx, ctx.scenes[shot.scene_id]).model
            uses += [PredictionUse(model)] * shot.attempt
        if shot.upscale_prediction_id:
            uses.append(PredictionUse(ctx.models.upscale.model, shot.upscale_seconds))
    return uses


def _costs(uses: list[PredictionUse], charged: int) -> JobCosts:
    """What the predictions cost at their models' prices, beside the credits charged."""
    return job_costs(uses, credits_charged=charged, usd_per_credit=usd_per_credit(),
                     models=load_model_prices(), aws=load_aws_prices())


def write_job_outputs(
    ctx: Context, job: Job, shots: list[Shot], status: JobStatus, costs: JobCosts | None = None
) -> tuple[str, str]:
    """The manifest (provenance of every shot) and the contact sheet, next to the shots."""
    prefix = shots_prefix(job.user_id, job.job_id)
    manifest_key = f"{prefix}/manifest.json"
    sheet_key = f"{prefix}/contact-sheet.png"
    manifest = build_manifest(ctx, job, shots, status)
    if costs is not None:
        manifest["costs"] = costs.model_dump(mode="json")
    ctx.objects.put(manifest_key, json.dumps(manifest, indent=2).encode(), "application/json")
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
