"""How good and how fast is the local engine's background removal?

For every sample photo that has a reference mask: the IoU of the cutout (alpha >= 0.5)
against the mask (>= 128), the mean edge error (mean |alpha - reference| in 0..1
within +-5 px of the reference's boundary), and the time of one cutout at the photo's
own size and at 1600 px on the long side. Then the means; the last line is one JSON
object with every figure, for CI and the README.

Timings are taken on one core (the process pins itself to one CPU where it can and
asks OpenCV for one thread), which is what a Lambda of modest size or the laptop
demo gives the engine.

    python bench/cutout_quality.py [--samples PATH] [--save DIR]

`--save DIR` also writes each cutout composited on white, to look at.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from lightbox.engine.vision.cutout import remove_background

EDGE_BAND_PX = 5
LONG_SIDE_FOR_TIMING = 1600


def default_samples_dir() -> Path:
    return Path(__file__).resolve().parents[1] / ".." / "shared" / "samples"


def pin_to_one_core() -> None:
    cv2.setNumThreads(1)
    if hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        except OSError:
            pass


def iou(alpha: np.ndarray, reference: np.ndarray) -> float:
    predicted = alpha >= 0.5
    truth = reference >= 128
    union = np.count_nonzero(predicted | truth)
    return float(np.count_nonzero(predicted & truth) / union) if union else 1.0


def edge_error(alpha: np.ndarray, reference: np.ndarray) -> float:
    truth = (reference >= 128).astype(np.uint8)
    size = 2 * EDGE_BAND_PX + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    band = cv2.dilate(truth, kernel) != cv2.erode(truth, kernel)
    if not band.any():
        return 0.0
    return float(np.abs(alpha[band] - reference[band] / 255.0).mean())


def resized_to_long_side(image: Image.Image, side: int) -> Image.Image:
    scale = side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.LANCZOS)


def timed_cutout(image: Image.Image) -> tuple[Image.Image, float]:
    start = time.perf_counter()
    result = remove_background(image)
    return result, time.perf_counter() - start


def composite_on_white(cutout: Image.Image) -> Image.Image:
    white = Image.new("RGBA", cutout.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, cutout).convert("RGB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=Path, default=default_samples_dir())
    parser.add_argument("--save", type=Path, default=None)
    args = parser.parse_args(argv)
    photos_dir, masks_dir = args.samples / "photos", args.samples / "masks"
    if not masks_dir.is_dir():
        print(f"no sample masks under {args.samples}", file=sys.stderr)
        return 2
    pin_to_one_core()
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)

    figures: dict[str, dict[str, float]] = {
        "cutout_iou": {},
        "cutout_edge_error": {},
        "cutout_seconds": {},
        "cutout_seconds_at_1600": {},
    }
    for mask_path in sorted(masks_dir.glob("*.png")):
        photo_path = next(iter(sorted(photos_dir.glob(mask_path.stem + ".*"))), None)
        if photo_path is None:
            continue
        name = mask_path.stem
        photo = Image.open(photo_path)
        photo.load()
        reference = np.asarray(Image.open(mask_path).convert("L"))
        cutout, seconds = timed_cutout(photo)
        alpha = np.asarray(cutout.getchannel("A"), np.float32) / 255.0
        _, seconds_1600 = timed_cutout(resized_to_long_side(photo, LONG_SIDE_FOR_TIMING))
        figures["cutout_iou"][name] = round(iou(alpha, reference), 4)
        figures["cutout_edge_error"][name] = round(edge_error(alpha, reference), 4)
        figures["cutout_seconds"][name] = round(seconds, 3)
        figures["cutout_seconds_at_1600"][name] = round(seconds_1600, 3)
        print(
            f"{name:32s} {photo.width}x{photo.height}  IoU {figures['cutout_iou'][name]:.3f}"
            f"  edge error {figures['cutout_edge_error'][name]:.3f}"
            f"  {seconds:.2f} s  ({seconds_1600:.2f} s at {LONG_SIDE_FOR_TIMING} px)"
        )
        if args.save:
            composite_on_white(cutout).save(args.save / f"{name}.png")

    if not figures["cutout_iou"]:
        print("no photo with a mask found", file=sys.stderr)
        return 2
    summary = {
        "cutout_iou_mean": round(statistics.fmean(figures["cutout_iou"].values()), 4),
        "cutout_edge_error_mean": round(statistics.fmean(figures["cutout_edge_error"].values()), 4),
        "cutout_seconds_1600": round(max(figures["cutout_seconds_at_1600"].values()), 3),
    }
    print(
        f"mean IoU {summary['cutout_iou_mean']:.3f}, mean edge error "
        f"{summary['cutout_edge_error_mean']:.3f}, slowest at {LONG_SIDE_FOR_TIMING} px "
        f"{summary['cutout_seconds_1600']:.2f} s"
    )
    print(json.dumps({**figures, **summary}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
