"""How fast the local engine renders scenes and upscales, on one core.

    .venv/bin/python bench/render_speed.py [--size 1600] [--repeat 3] [--threads 1]

Renders every scene in the catalogue once per repeat with the sample car cutout
at `size` x `size` and reports the median time per scene; then times the
upscaler from 800 to 1600 px. Alongside the time it prints the product's mean
CIEDE2000 against the resized cutout (the renderer's colour-fidelity promise is
below 2). The last line is one JSON object with every figure, for CI to keep.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import yaml
from PIL import Image
from skimage.color import deltaE_ciede2000, rgb2lab

from lightbox_local.engine.vision.render import SceneLook, SceneRender, compose_scene
from lightbox_local.engine.vision.upscale import upscale

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / ".." / "shared" / "samples"
SCENES = REPO / "shared" / "lightbox" / "catalog" / "scenes.yaml"


def car_cutout() -> Image.Image:
    photo = Image.open(SAMPLES / "photos" / "rembg-car-1.jpg").convert("RGB")
    photo.putalpha(Image.open(SAMPLES / "masks" / "rembg-car-1.png").convert("L"))
    return photo


def product_delta_e(cutout: Image.Image, result: SceneRender) -> float:
    x0, y0, x1, y1 = result.product_box
    bbox = cutout.getchannel("A").point(lambda v: 255 if v > 8 else 0).getbbox()
    reference = (
        np.asarray(cutout.crop(bbox).resize((x1 - x0, y1 - y0), Image.LANCZOS), np.float32) / 255
    )
    inner = cv2.erode((reference[..., 3] > 0.98).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    rendered = np.asarray(result.image, np.float32)[y0:y1, x0:x1] / 255
    return float(
        deltaE_ciede2000(rgb2lab(rendered[inner]), rgb2lab(reference[..., :3][inner])).mean()
    )


def timed[T](function: Callable[[], T], repeat: int) -> tuple[float, T]:
    times: list[float] = []
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1600)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="OpenCV threads (1 = one core)")
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)

    cutout = car_cutout()
    scenes = yaml.safe_load(SCENES.read_text(encoding="utf-8"))
    size = (args.size, args.size)
    compose_scene(
        cutout, SceneLook.from_dict(scenes[0]["look"]), seed=0, size=(256, 256)
    )  # warm up

    render_seconds: dict[str, float] = {}
    delta_e: dict[str, float] = {}
    print(
        f"render {args.size}x{args.size}, {args.threads} OpenCV thread(s), median of {args.repeat}"
    )
    for scene in scenes:
        look = SceneLook.from_dict(scene["look"])
        seconds, result = timed(
            lambda look=look: compose_scene(cutout, look, seed=1, size=size), args.repeat
        )
        render_seconds[scene["id"]] = round(seconds, 4)
        delta_e[scene["id"]] = round(product_delta_e(cutout, result), 3)
        print(
            f"  {scene['id']:<18} {seconds * 1000:7.1f} ms"
            f"   product dE2000 {delta_e[scene['id']]:.2f}"
        )

    photo = Image.open(SAMPLES / "photos" / "tb-aeroplane.jpg").convert("RGB").resize((800, 800))
    upscale(photo, scale=2)  # warm up
    upscale_seconds, _ = timed(lambda: upscale(photo, scale=2), args.repeat)
    print(f"upscale 800->1600: {upscale_seconds * 1000:.1f} ms")

    figures = {
        "size": args.size,
        "threads": args.threads,
        "render_seconds": render_seconds,
        "render_seconds_max": max(render_seconds.values()),
        "render_seconds_mean": round(statistics.mean(render_seconds.values()), 4),
        "product_delta_e2000": delta_e,
        "product_delta_e2000_max": max(delta_e.values()),
        "upscale_800_to_1600_seconds": round(upscale_seconds, 4),
    }
    print(json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
