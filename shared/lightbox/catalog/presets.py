"""Marketplace presets: the typed view of ``presets.yaml`` and its loader.

Plain data (pydantic and yaml, no image library), so that whatever only needs to know
which presets exist, or plan a fit (``lightbox.domain.marketplace.geometry``), loads
neither numpy nor Pillow.
"""

from __future__ import annotations

import math
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal

import pydantic
import yaml

import lightbox
from lightbox.errors import LightboxError

#: JPEG/WebP quality never goes below this while squeezing under a byte limit (the
#: encoder's floor, so no preset may ask for less).
MIN_ENCODE_QUALITY = 60

Format = Literal["JPEG", "PNG", "WEBP", "GIF", "TIFF", "BMP"]
DeliveryFormat = Literal["JPEG", "PNG", "WEBP"]


class _Frozen(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")


class Canvas(_Frozen):
    """A fixed width x height, or ``long_side`` (the shot keeps its aspect ratio)."""

    width: int | None = pydantic.Field(default=None, gt=0)
    height: int | None = pydantic.Field(default=None, gt=0)
    long_side: int | None = pydantic.Field(default=None, gt=0)

    @pydantic.model_validator(mode="after")
    def _one_way_of_sizing(self) -> Canvas:
        fixed = self.width is not None and self.height is not None
        if fixed == (self.long_side is not None) or (self.width is None) != (self.height is None):
            raise ValueError("a canvas is either width and height, or long_side")
        return self

    def size_for(self, shot_size: tuple[int, int]) -> tuple[int, int]:
        if self.width is not None and self.height is not None:
            return self.width, self.height
        assert self.long_side is not None
        sw, sh = shot_size
        scale = self.long_side / max(sw, sh)
        return max(1, round(sw * scale)), max(1, round(sh * scale))


class Background(_Frozen):
    rule: Literal["pure_white", "any"]
    value: int = pydantic.Field(default=255, ge=0, le=255)
    #: How far below ``value`` a border pixel may be and still count as pure white.
    tolerance: int = pydantic.Field(default=2, ge=0, le=16)
    note: str = ""


class Fill(_Frozen):
    min: float | None = pydantic.Field(default=None, gt=0, le=1)
    target: float = pydantic.Field(gt=0, le=1)

    @pydantic.model_validator(mode="after")
    def _target_above_floor(self) -> Fill:
        if self.min is not None and self.target < self.min:
            raise ValueError("fill.target is below fill.min")
        return self


class Limits(_Frozen):
    min_long_side: int | None = None
    min_short_side: int | None = None
    recommended_long_side: int | None = None
    recommended_short_side: int | None = None
    max_long_side: int | None = None
    max_pixels: int | None = None
    max_bytes: int | None = None
    aspect_ratio: str | None = pydantic.Field(default=None, pattern=r"^\d+:\d+$")

    @property
    def aspect(self) -> float | None:
        if self.aspect_ratio is None:
            return None
        w, h = self.aspect_ratio.split(":")
        return int(w) / int(h)


class SafeArea(_Frozen):
    top: int = 0
    bottom: int = 0
    left: int = 0
    right: int = 0


class PolicyWarning(_Frozen):
    id: str
    when: Literal["always", "ai_generated"]
    text: str
    source: str


class Source(_Frozen):
    id: str
    title: str
    #: None only for Lightbox's own decisions (the note gives the reason).
    url: str | None
    read: date
    supports: list[str] = pydantic.Field(min_length=1)
    note: str = ""


class Preset(_Frozen):
    """Typed view of one ``presets.yaml`` entry."""

    id: str = pydantic.Field(pattern=r"^[a-z0-9-]+$")
    name: str
    #: One line on what the preset is for, shown where a shop chooses it.
    purpose: str = ""
    canvas: Canvas
    background: Background
    fill: Fill | None = None
    format: DeliveryFormat
    formats_allowed: list[Format] = pydantic.Field(min_length=1)
    quality: int = pydantic.Field(ge=MIN_ENCODE_QUALITY, le=100)
    colour_space: Literal["sRGB"]
    bit_depth: Literal[8] = 8
    ai_label_required: bool = False
    limits: Limits
    safe_area: SafeArea | None = None
    policy_warnings: list[PolicyWarning] = []
    sources: list[Source] = pydantic.Field(min_length=1)

    @property
    def white_background(self) -> bool:
        return self.background.rule == "pure_white"

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> Preset:
        if self.format not in self.formats_allowed:
            raise ValueError(f"{self.id}: delivery format {self.format} is not allowed")
        if self.white_background and self.fill is None:
            raise ValueError(f"{self.id}: a white-background preset needs a fill target")
        source_ids = {s.id for s in self.sources}
        for warning in self.policy_warnings:
            if warning.source not in source_ids:
                raise ValueError(f"{self.id}: policy warning cites unknown source {warning.source}")
        for source in self.sources:
            if source.url is None and source.id != "lightbox":
                raise ValueError(f"{self.id}: source {source.id} has no url")
        if self.canvas.width is not None and self.canvas.height is not None:
            self._check_canvas_within_limits(self.canvas.width, self.canvas.height)
        return self

    def _check_canvas_within_limits(self, width: int, height: int) -> None:
        long_side, short_side = max(width, height), min(width, height)
        limits = self.limits
        if (limits.min_long_side and long_side < limits.min_long_side) or (
            limits.min_short_side and short_side < limits.min_short_side
        ):
            raise ValueError(f"{self.id}: canvas is below the marketplace minimum")
        if (limits.max_long_side and long_side > limits.max_long_side) or (
            limits.max_pixels and width * height > limits.max_pixels
        ):
            raise ValueError(f"{self.id}: canvas is above the marketplace maximum")
        aspect = limits.aspect
        if aspect is not None and not math.isclose(width / height, aspect, rel_tol=0.01):
            raise ValueError(f"{self.id}: canvas does not have the required aspect ratio")


def default_presets_path() -> Path:
    return Path(lightbox.__file__).parent / "catalog" / "presets.yaml"


def load_presets(path: Path | None = None) -> dict[str, Preset]:
    """Every preset of the catalogue by id (a fresh dict; the presets are frozen)."""
    return dict(_load_presets_cached((path or default_presets_path()).resolve()))


@lru_cache(maxsize=8)
def _load_presets_cached(path: Path) -> tuple[tuple[str, Preset], ...]:
    entries = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(entries, list):
        raise LightboxError(f"{path} must hold a list of presets")
    presets: dict[str, Preset] = {}
    for entry in entries:
        preset = Preset.model_validate(entry)
        if preset.id in presets:
            raise LightboxError(f"{path} defines preset {preset.id} twice")
        presets[preset.id] = preset
    return tuple(presets.items())
