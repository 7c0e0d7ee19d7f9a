"""Task "Check": judge a composed shot against the product (fidelity, faces, size).

OpenCV and numpy only: the cutout and the shot are decoded by OpenCV, and nothing
here imports Pillow (the function that runs it carries no Pillow layer).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from functools import lru_cache

import numpy as np

from lightbox.catalog.presets import load_presets
from lightbox.domain import planning
from lightbox.domain.fidelity import CheckThresholds, check_shot_bytes, decode
from lightbox.domain.marketplace.geometry import needs_upscale
from lightbox.errors import InvalidImage, NotFound
from lightbox.events import CheckResult, ImageState
from lightbox.models import ShotCheckRecord, ShotStatus
from lightbox.observability import logger
from lightbox.services.context import Context
from lightbox.services.steps.compose import compose_spec

#: Below this factor the Lanczos resampling inside a preset's fit is enough.
UPSCALE_THRESHOLD = 1.1


class _CutoutCache:
    """Decoded cutouts by key: a warm container checks many shots of the same job."""

    def __init__(self, size: int = 8) -> None:
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def get(self, ctx: Context, key: str) -> np.ndarray:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        pixels, problem = decode(ctx.objects.get(key))
        if pixels is None:
            raise InvalidImage(f"The job's cutout does not decode: {problem}.")
        with self._lock:
            self._items[key] = pixels
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return pixels


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
    result = check_shot_bytes(
        ctx.objects.get(state.key),
        _cutouts.get(ctx, job.cutout_key),
        expect_person=scene.person,
        min_long_side=ctx.settings.min_shot_long_side,
        aspect_ratio=compose_spec(ctx, scene).aspect_ratio(),
        thresholds=_thresholds_for(scene.props, scene.person),
    )
    record = ShotCheckRecord(attempt=state.attempt, passed=result.passed,
                             reasons=result.reasons, measures=result.measures)
    ctx.store.update_shot(state.job_id, state.shot_id, append_check=record,
                          status=ShotStatus.CHECKING)
    scale = 1.0
    if result.passed:
        size = (int(result.measures.get("width", 0)), int(result.measures.get("height", 0)))
        scale = upscale_needed(size, job.presets, ctx.models.upscale.max_scale)
    logger.info("shot checked", extra={"job_id": state.job_id, "shot_id": state.shot_id,
                                       "passed": result.passed, "reasons": result.reasons})
    return CheckResult(
        job_id=state.job_id, shot_id=state.shot_id, prediction_id=state.prediction_id,
        attempt=state.attempt, passed=result.passed, reasons=result.reasons,
        can_retry=state.attempt < planning.MAX_ATTEMPTS, upscale=scale,
    )


def upscale_needed(size: tuple[int, int], preset_ids: list[str], max_scale: float) -> float:
    """The factor an upscaler must reach for every preset the job asked for (1.0: none)."""
    catalogue = load_presets()
    factor = max((needs_upscale(size, catalogue[p]) for p in preset_ids if p in catalogue),
                 default=1.0)
    if factor <= UPSCALE_THRESHOLD:
        return 1.0
    return round(min(factor, max_scale), 2)


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
