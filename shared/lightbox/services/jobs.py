"""What a user may see of their jobs: views with short-lived links, never others' jobs."""

from __future__ import annotations

import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, BinaryIO

from pydantic import BaseModel

from lightbox.adapters.s3 import work_prefix
from lightbox.errors import NotFound
from lightbox.models import (
    Job,
    JobCosts,
    JobKind,
    JobStatus,
    Shot,
    ShotStatus,
    ToolName,
    ToolOrder,
)
from lightbox.observability import logger
from lightbox.services.avatars import JobAvatarView, job_avatar_view
from lightbox.services.context import Context
from lightbox.services.tools import tool_title

#: What the page shows for each internal shot status.
SHOT_PHASES = {
    ShotStatus.QUEUED: "queued",
    ShotStatus.COMPOSING: "composing",
    ShotStatus.CHECKING: "checking",
    ShotStatus.UPSCALING: "upscaling",
    ShotStatus.DELIVERED: "done",
    ShotStatus.REJECTED: "failed",
}


class ShotView(BaseModel):
    shot_id: str
    scene_id: str
    scene_name: str
    variant: int
    status: str
    phase: str
    attempt: int
    reason: str | None = None
    check_reasons: list[str] = []
    #: Presigned GETs to show each preset's image, by preset.
    outputs: dict[str, str] = {}
    #: The same images as attachments (a browser saves them instead of showing them).
    downloads: dict[str, str] = {}
    compliance: dict[str, bool] = {}
    #: Each preset's compliance report: every rule, met or not, and why.
    compliance_reports: dict[str, dict[str, Any]] = {}
    #: What the product check measured on the shot's last attempt, and whether it passed.
    check_measures: dict[str, float] = {}
    check_passed: bool | None = None


class ToolResultView(BaseModel):
    """A tool job's image: a presigned GET to show it, one to save it, and for "fit"
    the preset's compliance report (every rule, passed or not)."""

    url: str
    download_url: str
    content_type: str
    width: int
    height: int
    compliance: dict[str, Any] | None = None


class JobView(BaseModel):
    job_id: str
    status: JobStatus
    reason: str | None = None
    scenes: list[str]
    variants: int
    presets: list[str]
    shots_total: int
    delivered: int
    rejected: int
    cost: int
    created_at: datetime
    finished_at: datetime | None = None
    shots: list[ShotView] = []
    manifest_url: str | None = None
    contact_sheet_url: str | None = None
    #: The person in the "with model" shots, when the job has them.
    avatar: JobAvatarView | None = None
    #: What the job cost to make (Replicate and AWS) beside what it charged, once done.
    costs: JobCosts | None = None
    kind: JobKind = JobKind.SHOOT
    #: A single-image tool's order (and its name in words), and its image once made.
    tool: ToolOrder | None = None
    tool_title: str | None = None
    result: ToolResultView | None = None


class JobSummary(BaseModel):
    job_id: str
    status: JobStatus
    shots_total: int
    delivered: int
    created_at: datetime
    kind: JobKind = JobKind.SHOOT
    tool: ToolName | None = None


def owned_job(ctx: Context, user_id: str, job_id: str) -> Job:
    """The job if it is this user's; NotFound otherwise (never "forbidden": that would
    confirm that someone else's job exists)."""
    job = ctx.store.get_job(job_id) if _plausible_id(job_id) else None
    if job is None or job.user_id != user_id:
        raise NotFound("No such job.")
    return job


def _plausible_id(job_id: str) -> bool:
    return 0 < len(job_id) <= 64 and all(c.isalnum() or c in "-_" for c in job_id)


def job_view(ctx: Context, user_id: str, job_id: str) -> JobView:
    job = owned_job(ctx, user_id, job_id)
    shots = ctx.store.get_shots(job_id)
    expiry = ctx.settings.download_url_expiry_seconds
    link = ctx.objects.presigned_get
    return JobView(
        job_id=job.job_id,
        status=job.status,
        reason=job.reason,
        scenes=job.scenes,
        variants=job.variants,
        presets=job.presets,
        shots_total=job.shots_total,
        delivered=len(job.delivered),
        rejected=len(job.rejected),
        cost=job.credits_reserved,
        created_at=job.created_at,
        finished_at=job.finished_at,
        shots=[_shot_view(ctx, s, expiry) for s in shots],
        manifest_url=link(job.manifest_key, expiry) if job.manifest_key else None,
        contact_sheet_url=link(job.contact_sheet_key, expiry) if job.contact_sheet_key else None,
        avatar=job_avatar_view(ctx, job),
        costs=job.costs,
        kind=job.kind,
        tool=job.tool,
        tool_title=tool_title(job.tool.name) if job.tool else None,
        result=_tool_result_view(ctx, job, expiry),
    )


def _tool_result_view(ctx: Context, job: Job, expiry: int) -> ToolResultView | None:
    output = job.tool_output
    if output is None:
        return None
    filename = f"{job.job_id}-{output.key.rsplit('/', 1)[-1]}"
    return ToolResultView(
        url=ctx.objects.presigned_get(output.key, expiry),
        download_url=ctx.objects.presigned_get(output.key, expiry, filename=filename),
        content_type=output.content_type, width=output.width, height=output.height,
        compliance=output.compliance,
    )


def _shot_view(ctx: Context, shot: Shot, expiry: int) -> ShotView:
    scene = ctx.scenes.get(shot.scene_id)
    last_check = shot.checks[-1] if shot.checks else None
    return ShotView(
        shot_id=shot.shot_id,
        scene_id=shot.scene_id,
        scene_name=scene.name if scene else shot.scene_id,
        variant=shot.variant,
        status=str(shot.status),
        phase=SHOT_PHASES[shot.status],
        attempt=shot.attempt,
        reason=shot.reason,
        check_reasons=last_check.reasons if last_check else [],
        outputs={p: ctx.objects.presigned_get(k, expiry) for p, k in shot.outputs.items()},
        downloads={p: ctx.objects.presigned_get(k, expiry, filename=_shot_filename(shot, p, k))
                   for p, k in shot.outputs.items()},
        compliance={p: bool(r.get("passed")) for p, r in shot.compliance.items()},
        compliance_reports=shot.compliance,
        check_measures=last_check.measures if last_check else {},
        check_passed=last_check.passed if last_check else None,
    )


def list_jobs(
    ctx: Context, user_id: str, *, limit: int, cursor: str | None
) -> tuple[list[JobSummary], str | None]:
    jobs, next_cursor = ctx.store.list_jobs(user_id, limit=limit, cursor=cursor)
    return [
        JobSummary(job_id=j.job_id, status=j.status, shots_total=j.shots_total,
                   delivered=len(j.delivered), created_at=j.created_at, kind=j.kind,
                   tool=j.tool.name if j.tool else None)
        for j in jobs
    ], next_cursor


def _shot_filename(shot: Shot, preset: str, key: str) -> str:
    """A name that sorts in shot order and says what the image is (keys end in .png/.jpg)."""
    extension = key.rsplit(".", 1)[-1]
    return f"{shot.shot_id}-{shot.scene_id}-v{shot.variant}-{preset}.{extension}"


class ShotsZip(BaseModel):
    url: str
    files: int
    expires_in: int


#: A zip this small stays in memory; a larger one spills to the function's /tmp.
ZIP_IN_MEMORY_BYTES = 16 * 2**20
#: Images read from S3 at once while the zip is written, in order.
ZIP_READ_AHEAD = 8


def _write_zip(ctx: Context, images: list[tuple[str, str]], into: BinaryIO) -> None:
    """The images in order, stored, not deflated (they are compressed already); reads
    run a few ahead of the writing, so at most ZIP_READ_AHEAD images are held."""
    with (ThreadPoolExecutor(max_workers=ZIP_READ_AHEAD) as pool,
          zipfile.ZipFile(into, "w", compression=zipfile.ZIP_STORED) as archive):
        for start in range(0, len(images), ZIP_READ_AHEAD):
            batch = images[start : start + ZIP_READ_AHEAD]
            for (name, _), data in zip(batch, pool.map(ctx.objects.get, [k for _, k in batch]),
                                       strict=True):
                archive.writestr(name, data)


def zip_shots(ctx: Context, user_id: str, job_id: str) -> ShotsZip:
    """Every delivered image of a job in one zip, made in S3 and handed out as a presigned
    GET (an API response could not carry it: Lambda answers at most 6 MB).

    The zip is named after the number of shots it holds, so a finished job's zip is made
    once and a running job's is made again when more shots have arrived.
    """
    job = owned_job(ctx, user_id, job_id)
    images = [(_shot_filename(shot, preset, key), key)
              for shot in ctx.store.get_shots(job_id) if shot.status == ShotStatus.DELIVERED
              for preset, key in sorted(shot.outputs.items())]
    if not images:
        raise NotFound("This job has no finished shots yet.")
    key = f"{work_prefix(job.user_id, job_id)}/shots-{len(images)}.zip"
    if ctx.objects.head(key) is None:
        # 200 shots at every preset are hundreds of MB: the zip goes to the function's
        # disk past the first few MB and up to S3 in parts, never whole in memory.
        with tempfile.SpooledTemporaryFile(max_size=ZIP_IN_MEMORY_BYTES) as spool:
            _write_zip(ctx, images, spool)
            spool.seek(0)
            ctx.objects.upload(key, spool, "application/zip")
        logger.info("shots zipped", extra={"job_id": job_id, "files": len(images)})
    expiry = ctx.settings.download_url_expiry_seconds
    return ShotsZip(url=ctx.objects.presigned_get(key, expiry, filename=f"lightbox-{job_id}.zip"),
                    files=len(images), expires_in=expiry)
