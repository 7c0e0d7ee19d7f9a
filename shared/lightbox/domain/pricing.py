"""Prices in credits, from the pricing data: pure arithmetic, nothing stored."""

from __future__ import annotations

from functools import lru_cache

from pydantic import BaseModel

from lightbox.catalog import Scene, read_yaml


class Pricing(BaseModel):
    shot: dict[str, int]
    portrait: int = 1
    #: By tool name (lightbox.models.ToolName); a tool not listed costs one credit.
    tool: dict[str, int] = {}

    def shot_price(self, scene: Scene) -> int:
        return self.shot.get(scene.kind, max(self.shot.values()))

    def tool_price(self, name: str) -> int:
        return self.tool.get(name, 1)


@lru_cache(maxsize=1)
def load_pricing() -> Pricing:
    return Pricing.model_validate(read_yaml("pricing.yaml"))
