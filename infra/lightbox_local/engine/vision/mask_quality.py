"""How close a cutout's alpha is to a reference mask: the figures the cutout is judged by.

Shared by the cutout tests and `bench/cutout_quality.py`, so both measure the same way.
Masks are boolean arrays of one shape; alphas are floats in 0..1, references 0..255.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Edge error is measured within this many pixels either side of the reference edge.
EDGE_BAND_PX = 5
#: Boundary pixels count as matched within this share of the image diagonal.
BOUNDARY_TOLERANCE = 0.0075


def iou(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two masks (1.0 when both are empty)."""
    union = np.count_nonzero(predicted | truth)
    return float(np.count_nonzero(predicted & truth) / union) if union else 1.0


def edge_error(alpha: np.ndarray, reference: np.ndarray, band_px: int = EDGE_BAND_PX) -> float:
    """Mean |alpha - reference| in the band around the reference's edge."""
    truth = (reference >= 128).astype(np.uint8)
    size = 2 * band_px + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    band = cv2.dilate(truth, kernel) != cv2.erode(truth, kernel)
    if not band.any():
        return 0.0
    return float(np.abs(alpha[band] - reference[band] / 255.0).mean())


def boundary(mask: np.ndarray) -> np.ndarray:
    """Pixels of the mask with a 4-neighbour outside it."""
    inside = mask.astype(np.uint8)
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    return (inside - cv2.erode(inside, cross, borderType=cv2.BORDER_REPLICATE)) > 0


def distance_to(edge: np.ndarray) -> np.ndarray:
    """Distance in pixels from every pixel to the nearest pixel of `edge`."""
    return cv2.distanceTransform((~edge).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def boundary_figures(
    predicted: np.ndarray, truth: np.ndarray, tolerance: float = BOUNDARY_TOLERANCE
) -> tuple[float, float]:
    """(mean boundary distance in px, both ways; boundary F-score at the tolerance)."""
    edge_p, edge_t = boundary(predicted), boundary(truth)
    if not edge_p.any() or not edge_t.any():
        return float("inf"), 0.0
    to_truth = distance_to(edge_t)[edge_p]
    to_predicted = distance_to(edge_p)[edge_t]
    mean_distance = (float(to_truth.mean()) + float(to_predicted.mean())) / 2
    matched_within = tolerance * float(np.hypot(*truth.shape))
    precision = float((to_truth <= matched_within).mean())
    recall = float((to_predicted <= matched_within).mean())
    score = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return mean_distance, score
