"""Task "Tool": a single-image tool's image, from its model's output.

remove-background  the cutout at the photo's own size, with its alpha (PNG)
upscale            the upscaler's output (PNG), with the photo's alpha if it had one
fit                the cutout fitted to the preset's canvas, background and fill
                   (`fit_with_mask`), encoded for it (`encode_for_preset`) and checked
                   with the product's mask (`check_compliance`). A product too small for
                   the canvas is upscaled first: the result's `upscale` sends the state
                   machine to UpscaleTool, and the upscaled cutout comes back here as the
                   tool's second prediction (attempt 2).

The image is written under shots/ and the job's one output counted off with it, once;
Finish then spends the credit. Whatever cannot be made (a failed model, a photo with no
product in it, a product too small to enlarge cleanly) is counted off as rejected with
a reason the shop can act on, and Finish refunds it.

Every image is labelled (XMP) as the shop's photo enhanced by algorithms
(`algorithmicallyEnhanced`), not as a generated one: its product pixels are the photo's.
Pillow and numpy: it runs in the SettleShot function.
"""

from __future__ import annotations

import io

from PIL import Image

from lightbox.adapters.s3 import shots_prefix, work_prefix
from lightbox.catalog.presets import Preset, load_presets
from lightbox.domain import tool_images
from lightbox.domain.marketplace.compliance import check_compliance
from lightbox.domain.marketplace.encode import encode_for_preset
from lightbox.domain.marketplace.fit import fit_with_mask
from lightbox.domain.marketplace.geometry import LANCZOS_CLEAN_UPSCALE, needs_upscale
from lightbox.domain.provenance import Provenance
from lightbox.domain.references import png_bytes
from lightbox.errors import InvalidImage, InvalidInput, NotFound
from lightbox.events import ImageState, ToolResult
from lightbox.models import Job, JobStatus, ToolName, ToolOrder, ToolOutput
from lightbox.observability import logger
from lightbox.services.context import Context
from lightbox.services.steps.deliver import DELIVERY_FORMATS
from lightbox.services.steps.settle import fail_tool
from lightbox.services.tools import tool_title, upscale_input_key

DIGITAL_SOURCE_TYPE = "algorithmicallyEnhanced"
#: An upscaler's output may differ from the asked size by rounding, not by more.
SIZE_TOLERANCE = 0.02
#: What failed, when a tool's model fails.
_FAILED = {ToolName.REMOVE_BACKGROUND: "The background could not be removed",
           ToolName.UPSCALE: "The photo could not be upscaled",
           ToolName.FIT: "The product could not be fitted"}


def run_tool(ctx: Context, state: ImageState) -> ToolResult:
    """Make the tool's image from its model's output and settle the job's one output."""
    job = ctx.store.get_job(state.job_id)
    if job is None or job.tool is None:
        raise NotFound(f"Tool job {state.job_id} does not exist.")
    if job.status.terminal or job.settled >= job.shots_total:
        # Settled already (this step's retry, or the sweeper): Finish finishes once.
        return _result(job, state, complete=not job.status.terminal)
    if job.tool_prediction_id != state.prediction_id:
        return _result(job, state, complete=False)
    if state.outcome != "succeeded" or state.key is None:
        why = state.error or "the model gave no image"
        return _failed(ctx, job, state, f"{_FAILED[job.tool.name]}: {why}")
    try:
        made = _make(ctx, job, job.tool, state)
    except InvalidInput as error:  # no product in the photo, too small, a broken image
        return _failed(ctx, job, state, error.message)
    if isinstance(made, float):
        return _result(job, state, complete=False, upscale=made)
    settled = ctx.store.settle_tool_output(job.job_id, delivered=True, tool_output=made,
                                           reason=None) or ctx.store.get_job(job.job_id)
    logger.info("tool image made", extra={"job_id": job.job_id, "tool": str(job.tool.name),
                                          "key": made.key})
    return _result(job, state, complete=settled is not None
                   and settled.settled >= settled.shots_total)


def _result(job: Job, state: ImageState, *, complete: bool, upscale: float = 1.0) -> ToolResult:
    return ToolResult(job_id=job.job_id, prediction_id=state.prediction_id,
                      job_complete=complete, upscale=upscale)


def _failed(ctx: Context, job: Job, state: ImageState, reason: str) -> ToolResult:
    return _result(job, state, complete=fail_tool(ctx, job.job_id, reason).job_complete)


def _make(ctx: Context, job: Job, order: ToolOrder, state: ImageState) -> ToolOutput | float:
    """The tool's output, or (a fit) the enlargement the upscaler must make first."""
    output = _open(ctx, state.key)
    photo = _open(ctx, job.image_key)
    if order.name == ToolName.REMOVE_BACKGROUND:
        image = tool_images.cutout_at_photo_size(output, photo)
        return _publish_png(ctx, job, order, image, f"{order.name}.png", [state.prediction_id])
    if order.name == ToolName.UPSCALE:
        image = _upscaled(output, photo, order.scale or 1)
        return _publish_png(ctx, job, order, image, f"upscale-{order.scale}x.png",
                            [state.prediction_id])
    preset = load_presets()[order.preset or ""]
    if state.attempt == 1:
        cutout = tool_images.cutout_at_photo_size(output, photo)
        scale = _enlargement(ctx, cutout, preset)
        if scale > 1.0:
            _ready_for_upscaler(ctx, job, cutout, state)
            return scale
        return _publish_fit(ctx, job, order, preset, cutout, [state.prediction_id])
    # The upscaled cutout: the upscaler may have dropped the alpha, so the product's
    # outline comes from the cutout it was given.
    cutout = tool_images.with_alpha_of(output, _open(ctx, job.cutout_key))
    return _publish_fit(ctx, job, order, preset, cutout,
                        [job.cutout_prediction_id or "", state.prediction_id])


def _upscaled(output: Image.Image, photo: Image.Image, scale: int) -> Image.Image:
    expected = (round(photo.width * scale), round(photo.height * scale))
    if abs(output.width - expected[0]) > SIZE_TOLERANCE * expected[0] or \
            abs(output.height - expected[1]) > SIZE_TOLERANCE * expected[1]:
        raise InvalidImage(f"The upscaler returned {output.width}x{output.height} px, "
                           f"not the {expected[0]}x{expected[1]} px asked for.")
    if output.size != expected:
        output = output.resize(expected, Image.Resampling.LANCZOS)
    if tool_images.has_alpha(photo) and not tool_images.has_alpha(output):
        return tool_images.with_alpha_of(output, photo)
    return output if output.mode in ("RGB", "RGBA") else output.convert("RGBA")


def _enlargement(ctx: Context, cutout: Image.Image, preset: Preset) -> float:
    """How many times the upscaler must enlarge the cutout for the preset (1.0: none)."""
    box = tool_images.product_box(cutout)
    if box is None:
        raise InvalidInput("No product was found in the photo: the cutout is empty.")
    needed = needs_upscale(cutout.size, preset, box)
    most = ctx.models.upscale.max_scale
    if needed > most * LANCZOS_CLEAN_UPSCALE:
        raise InvalidInput(
            f"The product is too small in this photo for {preset.name}: it would need a "
            f"{needed:.1f}x enlargement, and Lightbox enlarges at most "
            f"{most * LANCZOS_CLEAN_UPSCALE:g}x. Use a larger photo, or one where the "
            "product fills more of the frame.", needed=needed)
    return min(needed, most)


def _ready_for_upscaler(ctx: Context, job: Job, cutout: Image.Image, state: ImageState) -> None:
    """Keep the cutout (its alpha is the product's outline after upscaling) and leave
    the upscaler's input where UpscaleTool looks for it."""
    cutout_key = f"{work_prefix(job.user_id, job.job_id)}/tool/cutout.png"
    ctx.objects.put(cutout_key, png_bytes(cutout), "image/png")
    ctx.objects.put(upscale_input_key(job), png_bytes(tool_images.opaque_for_upscaler(cutout)),
                    "image/png")
    ctx.store.update_job(job.job_id, expect=[JobStatus.PROCESSING], cutout_key=cutout_key,
                         cutout_prediction_id=state.prediction_id)


def _publish_png(ctx: Context, job: Job, order: ToolOrder, image: Image.Image, name: str,
                 prediction_ids: list[str]) -> ToolOutput:
    models = _models(ctx, prediction_ids)
    data = tool_images.png_with_provenance(image, _provenance(order, models))
    return _put(ctx, job, name, data, "image/png", image.size, models)


def _publish_fit(ctx: Context, job: Job, order: ToolOrder, preset: Preset,
                 cutout: Image.Image, prediction_ids: list[str]) -> ToolOutput:
    fitted, mask = fit_with_mask(cutout, preset)
    models = _models(ctx, prediction_ids)
    encoded = encode_for_preset(fitted, preset, provenance=_provenance(order, models))
    report = check_compliance(encoded, preset, product_mask=mask, ai_generated=False)
    ext, content_type = DELIVERY_FORMATS[preset.format]
    return _put(ctx, job, f"fit-{preset.id}.{ext}", encoded, content_type, fitted.size, models,
                compliance=report.model_dump(mode="json"))


def _put(ctx: Context, job: Job, name: str, data: bytes, content_type: str,
         size: tuple[int, int], models: list[str], compliance: dict | None = None) -> ToolOutput:
    key = f"{shots_prefix(job.user_id, job.job_id)}/{name}"
    ctx.objects.put(key, data, content_type)
    return ToolOutput(key=key, content_type=content_type, width=size[0], height=size[1],
                      models=models, compliance=compliance)


def _provenance(order: ToolOrder, models: list[str]) -> Provenance:
    return Provenance(digital_source_type=DIGITAL_SOURCE_TYPE, models=models,
                      description=f"{tool_title(order.name)}: the shop's own product photo, "
                                  "edited by Lightbox")


def _models(ctx: Context, prediction_ids: list[str]) -> list[str]:
    """The models behind the predictions (an uploaded cutout was made by none)."""
    found = [ctx.store.get_prediction(p) for p in prediction_ids if p]
    return [p.model for p in found if p is not None and p.model != "upload"]


def _open(ctx: Context, key: str | None) -> Image.Image:
    if key is None:
        raise NotFound("The tool's image is missing.")
    image = Image.open(io.BytesIO(ctx.objects.get(key)))
    image.load()
    return image
