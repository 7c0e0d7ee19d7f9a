"""Single-image tools: remove the background, upscale, fit for a marketplace.

A tool is a job of its own kind (`Job.kind` "tool") that makes one image for one
credit, by the path a shoot takes:

1. The API checks the order, reserves the credit with the job in one transaction and
   hands out the photo's presigned POST (`create_tool_upload`).
2. upload_received checks and normalises the photo, then starts the tool's model
   (`start_tool`): the cutout for "remove-background" and "fit" (none when the photo
   is a cutout already), the upscaler for "upscale".
3. The model's webhook starts the "finish image" state machine; Route sends role
   "tool" to the Tool task (`steps.tool`, in the SettleShot function), which
   publishes the image and counts the job's one output off. A fit whose product is too
   small for the preset's canvas asks for the upscaler first (the UpscaleTool task:
   `request_tool_upscale`); its webhook comes back to the Tool task.
4. Finish spends the credit, or refunds it when no image was made.

No image library here: the API and the upscale request import this module.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lightbox.adapters.s3 import work_prefix
from lightbox.catalog.presets import load_presets
from lightbox.domain import planning
from lightbox.errors import InvalidInput, NotFound
from lightbox.events import SettleResult, ToolResult
from lightbox.models import Job, JobKind, JobStatus, Role, ToolName, ToolOrder
from lightbox.observability import logger
from lightbox.services.context import Context
from lightbox.services.predictions import PredictionFor, start_from_object, start_prediction
from lightbox.services.uploads import UploadTicket, awaiting_upload, reserve_and_ticket

#: How long a presigned GET handed to Replicate stays valid (it fetches at once).
MODEL_INPUT_URL_SECONDS = 3600
#: The largest side a tool makes: marketplaces take at most 10,000 px, and a larger
#: image would not fit the publishing function's memory.
MAX_OUTPUT_SIDE = 10_000
UPSCALE_FACTORS = (2, 4)
#: The preset the page and the command line offer first.
DEFAULT_FIT_PRESET = "amazon-main"
#: What each tool is called on the page, and what it does.
TITLES = {
    ToolName.REMOVE_BACKGROUND: (
        "Remove background",
        "The product on a transparent background (PNG), at the photo's size.",
    ),
    ToolName.UPSCALE: ("Upscale", "The photo 2 or 4 times larger (PNG)."),
    ToolName.FIT: (
        "Fit for a marketplace",
        "The product on a marketplace's canvas, background and fill, and its compliance.",
    ),
}
#: The options each tool takes.
_OPTIONS = {ToolName.REMOVE_BACKGROUND: set(), ToolName.UPSCALE: {"scale"},
            ToolName.FIT: {"preset"}}


class ToolOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: upscale: 2 or 4 (default 2).
    scale: Literal[2, 4] | None = None
    #: fit: a marketplace preset's id (GET /api/tools lists them).
    preset: str | None = Field(default=None, max_length=64)


class ToolRequest(BaseModel):
    tool: ToolName
    options: ToolOptions = Field(default_factory=ToolOptions)


class ToolInfo(BaseModel):
    name: ToolName
    title: str
    description: str
    price: int
    options: list[str]


class PresetChoice(BaseModel):
    id: str
    name: str


class ToolCatalogue(BaseModel):
    tools: list[ToolInfo]
    #: What "fit" can fit to.
    presets: list[PresetChoice]
    scales: list[int] = list(UPSCALE_FACTORS)


def tool_catalogue(ctx: Context) -> ToolCatalogue:
    return ToolCatalogue(
        tools=[ToolInfo(name=name, title=title, description=description,
                        price=ctx.pricing.tool_price(name), options=sorted(_OPTIONS[name]))
               for name, (title, description) in TITLES.items()],
        presets=[PresetChoice(id=p.id, name=p.name) for p in load_presets().values()],
    )


def tool_title(name: ToolName) -> str:
    return TITLES[name][0]


def tool_order(request: ToolRequest) -> ToolOrder:
    """The order as stored: the options the tool takes, checked, with their defaults."""
    given = request.options.model_dump(exclude_none=True)
    extra = sorted(set(given) - _OPTIONS[request.tool])
    if extra:
        raise InvalidInput(f"The {request.tool} tool takes no option {', '.join(extra)}.",
                           options=sorted(_OPTIONS[request.tool]))
    if request.tool == ToolName.UPSCALE:
        return ToolOrder(name=request.tool, scale=request.options.scale or UPSCALE_FACTORS[0])
    if request.tool == ToolName.FIT:
        allowed = load_presets()
        if request.options.preset not in allowed:
            raise InvalidInput("Choose a marketplace preset to fit the product to.",
                               allowed=sorted(allowed))
        return ToolOrder(name=request.tool, preset=request.options.preset)
    return ToolOrder(name=request.tool)


def create_tool_upload(ctx: Context, user_id: str, request: ToolRequest) -> UploadTicket:
    """Reserve the tool's credit with its job, and hand out the POST for its photo."""
    order = tool_order(request)
    job = awaiting_upload(
        ctx, user_id, planning.new_job_id(),
        kind=JobKind.TOOL,
        tool=order,
        scenes=[],
        variants=1,
        presets=[order.preset] if order.preset else [],
        shots_total=1,
        credits_reserved=ctx.pricing.tool_price(order.name),
    )
    ticket = reserve_and_ticket(ctx, job)
    logger.info("tool ticket issued", extra={"job_id": job.job_id, "tool": str(order.name)})
    return ticket


# --- upload_received: the tool's model ------------------------------------------------------


def photo_problem(order: ToolOrder, size: tuple[int, int]) -> str | None:
    """Why this photo cannot be run through the tool (before anything is spent), if so."""
    if order.name != ToolName.UPSCALE or order.scale is None:
        return None
    long_side = max(size) * order.scale
    if long_side <= MAX_OUTPUT_SIDE:
        return None
    return (f"At {order.scale}x this {size[0]}x{size[1]} photo would be {long_side} px on its "
            f"long side; Lightbox makes at most {MAX_OUTPUT_SIDE} px. Choose 2x or a smaller "
            "photo.")


def start_tool(ctx: Context, job: Job, photo_key: str, *, has_alpha: bool) -> str | None:
    """Start the tool's model on the photo; the prediction's id (None: a duplicate)."""
    order = _order(job)
    purpose = PredictionFor(role=Role.TOOL, job_id=job.job_id, user_id=job.user_id)

    def bind(prediction_id: str) -> bool:
        return ctx.store.bind_tool_prediction(job.job_id, prediction_id)

    if order.name != ToolName.UPSCALE and has_alpha:
        # The shop uploaded a cutout already: its alpha is used as is, and no
        # background-removal prediction is paid for.
        return start_from_object(ctx, f"own-cutout-{job.job_id}", photo_key, purpose, bind)
    image_url = ctx.objects.presigned_get(photo_key, MODEL_INPUT_URL_SECONDS)
    if order.name == ToolName.UPSCALE:
        spec = ctx.models.upscale
        inputs: dict[str, Any] = {spec.image_input or "image": image_url, "scale": order.scale}
    else:
        spec = ctx.models.cutout
        inputs = {spec.image_input or "image": image_url}
    # Like a shoot's cutout: one prediction a paid job cannot do without, counted,
    # never refused.
    prediction_id = start_prediction(ctx, spec, inputs, purpose, bind, admission="counted")
    logger.info("tool requested", extra={"job_id": job.job_id, "tool": str(order.name),
                                         "prediction_id": prediction_id})
    return prediction_id


# --- the UpscaleTool task: a fit's product too small for its preset ---------------------------


def upscale_input_key(job: Job) -> str:
    """Where the Tool task leaves what the upscaler gets: the cutout on white."""
    return f"{work_prefix(job.user_id, job.job_id)}/tool/upscale-input.png"


def request_tool_upscale(ctx: Context, step: ToolResult) -> SettleResult:
    """Ask the upscaler for the size the fit needs; its webhook continues the tool."""
    job = ctx.store.get_job(step.job_id)
    if job is None:
        raise NotFound(f"Job {step.job_id} does not exist.")
    if job.status.terminal or job.tool_prediction_id != step.prediction_id:
        return SettleResult(job_id=job.job_id, job_complete=False)
    spec = ctx.models.upscale
    image_url = ctx.objects.presigned_get(upscale_input_key(job), MODEL_INPUT_URL_SECONDS)
    purpose = PredictionFor(role=Role.TOOL, job_id=job.job_id, user_id=job.user_id, attempt=2)
    start_prediction(
        ctx, spec, {spec.image_input or "image": image_url, "scale": step.upscale}, purpose,
        lambda created: ctx.store.bind_tool_prediction(job.job_id, created,
                                                       replaces=step.prediction_id),
        admission="take_one",
    )
    logger.info("tool upscale requested", extra={"job_id": job.job_id, "scale": step.upscale})
    return SettleResult(job_id=job.job_id, job_complete=False)


# --- Finish: what a finished tool job leaves -------------------------------------------------


def tool_manifest(job: Job, status: JobStatus, finished_at: str) -> dict[str, Any]:
    """The job's record of what the tool made, from what, and how."""
    order = _order(job)
    output = job.tool_output
    return {
        "job_id": job.job_id,
        "kind": str(JobKind.TOOL),
        "tool": order.model_dump(mode="json", exclude_none=True),
        "status": str(status),
        "reason": job.reason,
        "created_at": job.created_at.isoformat(),
        "finished_at": finished_at,
        "source_photo": job.source_key,
        "normalised_photo": job.image_key,
        "output": output.model_dump(mode="json", exclude={"compliance"}) if output else None,
        "compliance": output.compliance if output else None,
    }


def _order(job: Job) -> ToolOrder:
    if job.tool is None:
        raise NotFound(f"Job {job.job_id} is not a tool job.")
    return job.tool
