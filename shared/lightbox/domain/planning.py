"""Planning a job: which shots it makes, with which seeds, and what they cost.

Pure functions: no I/O, no clock, no randomness that is not derived from ids, so a
retried step plans exactly what the first try planned.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from lightbox.catalog import Scene
from lightbox.errors import InvalidInput

#: A shot is composed at most this many times: the first try and two regenerations.
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class PlannedShot:
    shot_id: str
    index: int
    scene_id: str
    variant: int
    seed: int
    cost: int


def new_job_id(now: datetime | None = None) -> str:
    """Time-ordered and unguessable: ``j20261124t120501-<16 hex>``."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dt%H%M%S")
    return f"j{stamp}-{secrets.token_hex(8)}"


def derive_seed(*parts: object) -> int:
    """A stable 31-bit seed from ids, so retries and replays plan the same image."""
    digest = hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & 0x7FFFFFFF


def attempt_seed(base_seed: int, attempt: int) -> int:
    """A new seed for each regeneration; attempt 1 keeps the planned seed."""
    return base_seed if attempt <= 1 else derive_seed(base_seed, "attempt", attempt)


def plan_shots(
    job_id: str,
    scene_ids: list[str],
    variants: int,
    scenes: dict[str, Scene],
    *,
    max_shots: int,
    price_of: Callable[[Scene], int] = lambda scene: 1,
) -> list[PlannedShot]:
    """One shot per (scene, variant), in the order asked, refusing what cannot be made."""
    if not scene_ids:
        raise InvalidInput("Choose at least one scene.")
    unknown = [s for s in scene_ids if s not in scenes]
    if unknown:
        raise InvalidInput(
            f"Unknown scene(s): {', '.join(unknown)}.", allowed=sorted(scenes)
        )
    if len(set(scene_ids)) != len(scene_ids):
        raise InvalidInput("Each scene may be asked for once; use variants for more shots.")
    if variants < 1:
        raise InvalidInput("Ask for at least one variant per scene.")
    total = len(scene_ids) * variants
    if total > max_shots:
        raise InvalidInput(
            f"That is {total} shots; one photo can make at most {max_shots}.",
            requested=total,
            limit=max_shots,
        )
    planned = []
    for scene_number, scene_id in enumerate(scene_ids):
        for variant in range(1, variants + 1):
            index = scene_number * variants + variant
            planned.append(
                PlannedShot(
                    shot_id=f"{index:03d}",
                    index=index,
                    scene_id=scene_id,
                    variant=variant,
                    seed=derive_seed(job_id, index),
                    cost=price_of(scenes[scene_id]),
                )
            )
    return planned
