"""The catalogue: scenes, models, prices, presets and avatars, kept as data files.

Everything here is read once per process and cached; a deployment can point
``LIGHTBOX_CATALOG_DIR`` at its own copies to change prompts, models or prices
without touching code.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from lightbox.config import get_settings

PACKAGED_DIR = Path(__file__).resolve().parent


def catalog_dir() -> Path:
    configured = get_settings().catalog_dir
    return Path(configured) if configured else PACKAGED_DIR


def read_yaml(name: str) -> Any:
    with (catalog_dir() / name).open(encoding="utf-8") as f:
        return yaml.safe_load(f)


class Scene(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    kind: Literal["studio", "lifestyle", "flatlay", "with_model"]
    person: bool = False
    #: Share of the frame the scene's own asked-for objects may take (see scenes.yaml).
    props: float = Field(default=0.0, ge=0.0, le=0.5)
    prompt: str
    avoid: list[str] = Field(default_factory=list)
    look: dict[str, Any] = Field(default_factory=dict)

    def full_prompt(self) -> str:
        """The prompt as sent: Kontext takes no negative prompt, so what to avoid is said."""
        if not self.avoid:
            return self.prompt
        return f"{self.prompt} Avoid: {', '.join(self.avoid)}."


class ModelSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    model: str
    version: str | None = None
    image_input: str | None = None
    input: dict[str, Any] = Field(default_factory=dict)
    max_scale: float = 4.0

    def aspect_ratio(self) -> float | None:
        """Width over height of what the model makes, when its inputs fix it ("4:5")."""
        ratio = str(self.input.get("aspect_ratio", ""))
        if ":" not in ratio:
            return None
        width, height = ratio.split(":", 1)
        return float(width) / float(height)


class WithModelSpec(ModelSpec):
    """The composing model for scenes with a person, and how its references are combined.

    combine:
      side_by_side  one reference image, the person on the left and the product on the
                    right, for a single-image editor (Flux Kontext)
      inputs        each reference in its own input (`reference_inputs`: the person's
                    first, then the product's), for a multi-image model
    """

    combine: Literal["side_by_side", "inputs"] = "side_by_side"
    reference_inputs: tuple[str, str] = ("input_image_1", "input_image_2")
    #: Said before the scene's prompt, so the model knows which reference is which.
    reference_note: str = ""

    @model_validator(mode="after")
    def _combinable(self) -> WithModelSpec:
        if self.combine == "side_by_side" and not self.image_input:
            raise ValueError("side_by_side needs image_input, the input the reference goes in")
        return self


class ModelCatalog(BaseModel):
    model_config = ConfigDict(frozen=True)

    cutout: ModelSpec
    compose: ModelSpec
    upscale: ModelSpec
    portrait: ModelSpec
    #: Scenes with a person: the avatar's portrait and the product as references.
    compose_with_model: WithModelSpec


@lru_cache(maxsize=1)
def load_scenes() -> dict[str, Scene]:
    scenes = [Scene.model_validate(s) for s in read_yaml("scenes.yaml")]
    return {s.id: s for s in scenes}


@lru_cache(maxsize=1)
def load_models() -> ModelCatalog:
    return ModelCatalog.model_validate(read_yaml("models.yaml"))
