"""Binary morphology on numpy masks: the little that marketplace compliance needs.

Plain numpy, so the functions that deliver shots need no image-science package.
"""

from __future__ import annotations

import math

import numpy as np


def dilate_cross(mask: np.ndarray, iterations: int = 1) -> np.ndarray:
    """Grow a mask by its 4-neighbours, `iterations` times (a diamond of that radius)."""
    grown = mask.astype(bool, copy=True)
    for _ in range(iterations):
        step = grown.copy()
        step[1:] |= grown[:-1]
        step[:-1] |= grown[1:]
        step[:, 1:] |= grown[:, :-1]
        step[:, :-1] |= grown[:, 1:]
        grown = step
    return grown


def within_distance(mask: np.ndarray, radius: float) -> np.ndarray:
    """Every pixel at most `radius` away (Euclidean, pixel centres) from a pixel of `mask`.

    The same set as ``distance_transform_edt(~mask) <= radius``, made as a union of
    horizontal runs: for each row offset dy, the mask dilated along its rows by the
    disc's half-width at dy, shifted by dy.
    """
    mask = mask.astype(bool)
    height, width = mask.shape
    reach = math.floor(radius)
    counts = np.zeros((height, width + 1), dtype=np.int32)
    np.cumsum(mask, axis=1, out=counts[:, 1:])
    columns = np.arange(width)
    grown = np.zeros_like(mask)
    rows: dict[int, np.ndarray] = {}
    for dy in range(-reach, reach + 1):
        half = math.floor(math.sqrt(max(radius * radius - dy * dy, 0.0)) + 1e-9)
        if half not in rows:
            lo = np.clip(columns - half, 0, width)
            hi = np.clip(columns + half + 1, 0, width)
            rows[half] = (counts[:, hi] - counts[:, lo]) > 0
        run = rows[half]
        if dy >= 0:
            grown[dy:] |= run[: height - dy]
        else:
            grown[:dy] |= run[-dy:]
    return grown
