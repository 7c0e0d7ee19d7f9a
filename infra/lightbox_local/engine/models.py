"""The local engine's stand-in models, chosen by the model catalogue.

Each catalogue entry (cutout, compose, compose_with_model, upscale, portrait) is served
by a CPU stand-in that takes the same inputs the real model takes, so the requests
Lightbox sends are the ones Replicate would receive. A composition whose scene has a
person (found by its prompt) puts the product in front of the avatar's portrait.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from lightbox.catalog import Scene, load_models, load_scenes

Fetch = Callable[[str], bytes]

_DEFAULT_COMPOSE_SIZE = 1024


def roles_from_catalogue() -> dict[str, str]:
    """Model name (and pinned version) → the stand-in's role."""
    roles: dict[str, str] = {}
    catalogue = load_models()
    entries = (("cutout", "cutout"), ("compose", "compose"), ("compose", "compose_with_model"),
               ("upscale", "upscale"), ("portrait", "portrait"))
    for role, entry in entries:
        spec = getattr(catalogue, entry)
        roles[spec.model] = role
        if spec.version:
            roles[spec.version] = role
            roles[f"model-of:{spec.version}"] = spec.model
    return roles


def run(
    role: str,
    inputs: dict[str, Any],
    *,
    fetch: Fetch,
    mode: str = "real",
    fast_size: int = 256,
    recolor: bool = False,
) -> tuple[bytes, str]:
    """Run one stand-in; returns (image bytes, content type)."""
    if mode == "fast":
        return _run_fast(role, inputs, fetch=fetch, size=fast_size)
    if role == "cutout":
        return _png(_cutout(_open(fetch(inputs["image"]))))
    if role == "compose":
        image = _compose(inputs, fetch)
        if recolor:
            image = hue_rotate(image, 40)
        return _encode(image, inputs.get("output_format", "png"))
    if role == "upscale":
        from lightbox_local.engine.vision.upscale import upscale

        source = _open(fetch(inputs["image"])).convert("RGB")
        scale = float(inputs.get("scale", 4))
        return _png(upscale(source, scale=scale))
    if role == "portrait":
        from lightbox_local.engine.vision.portrait import render_portrait

        size = _size_for_ratio(str(inputs.get("aspect_ratio", "3:4")), 1024)
        image = render_portrait(str(inputs.get("prompt", "")), seed=int(inputs.get("seed", 0)),
                                size=size)
        return _encode(image, inputs.get("output_format", "jpg"))
    raise LookupError(f"no stand-in for role {role!r}")


def _cutout(photo: Image.Image) -> Image.Image:
    from lightbox_local.engine.vision.cutout import remove_background

    return remove_background(photo)


def _compose(inputs: dict[str, Any], fetch: Fetch) -> Image.Image:
    from lightbox_local.engine.vision.render import SceneLook, render_scene

    scene = scene_for_prompt(str(inputs.get("prompt", "")))
    if scene is not None and scene.person:
        return _compose_with_person(inputs, fetch, scene)
    reference = _open(fetch(inputs["input_image"]))
    cutout = reference if reference.mode == "RGBA" else _cutout(reference)
    ratio = str(inputs.get("aspect_ratio", "1:1"))
    if ratio == "match_input_image":
        size = _fit_long_side(reference.size, _DEFAULT_COMPOSE_SIZE)
    else:
        size = _size_for_ratio(ratio, _DEFAULT_COMPOSE_SIZE)
    look = SceneLook.from_dict(scene.look if scene else {})
    return render_scene(cutout.convert("RGBA"), look, seed=int(inputs.get("seed", 0)), size=size)


def _compose_with_person(inputs: dict[str, Any], fetch: Fetch, scene: Scene) -> Image.Image:
    """The person's portrait and the product, as the catalogue says they are combined."""
    from lightbox.domain.references import split_side_by_side
    from lightbox_local.engine.vision.with_model import render_with_person

    spec = load_models().compose_with_model
    person_input, product_input = spec.reference_inputs
    if person_input in inputs and product_input in inputs:
        portrait = _open(fetch(inputs[person_input])).convert("RGB")
        product = _open(fetch(inputs[product_input]))
        product = product if product.mode == "RGBA" else _cutout(product)
    else:
        reference = _open(fetch(inputs[spec.image_input or "input_image"]))
        portrait, product = split_side_by_side(reference)
    size = _size_for_ratio(str(inputs.get("aspect_ratio", "4:5")), _DEFAULT_COMPOSE_SIZE)
    return render_with_person(portrait, product, scene.look, seed=int(inputs.get("seed", 0)),
                              size=size)


def scene_for_prompt(prompt: str) -> Scene | None:
    """The catalogue scene whose prompt the request carries (Kontext gets text only); a
    note may come before it (see models.yaml's compose_with_model.reference_note)."""
    found = [scene for scene in load_scenes().values() if scene.prompt in prompt]
    return max(found, key=lambda scene: len(scene.prompt)) if found else None


def hue_rotate(image: Image.Image, degrees: float) -> Image.Image:
    """A fault for tests: the generator changed the product's colour."""
    hsv = np.asarray(image.convert("RGB").convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(np.int32) + int(degrees / 360 * 255)) % 256
    return Image.fromarray(hsv, "HSV").convert("RGB")


# --- fast mode: small images, cached, so benchmarks measure the flow ----------------------

_fast_cache: OrderedDict[tuple[str, str, int], tuple[bytes, str]] = OrderedDict()
_fast_lock = threading.Lock()


def _run_fast(role: str, inputs: dict[str, Any], *, fetch: Fetch, size: int) -> tuple[bytes, str]:
    source = inputs.get("image") or inputs.get("input_image") or next(
        (v for k, v in sorted(inputs.items()) if k.startswith("input_image")), "")
    cache_key = (role, str(source).split("?", 1)[0], size)
    with _fast_lock:
        if cache_key in _fast_cache:
            return _fast_cache[cache_key]
    if role == "portrait":
        result = fast_image(size, io.BytesIO)
    else:
        picture = _open(fetch(source)).convert("RGBA")
        if role == "upscale":
            # An upscaler's one promise is its scale; "fast" keeps it, cheaply.
            scale = float(inputs.get("scale") or 2)
            wide, high = round(picture.width * scale), round(picture.height * scale)
            result = _png(picture.convert("RGB").resize((wide, high), Image.Resampling.BILINEAR),
                          compress_level=1)
            with _fast_lock:
                _fast_cache[cache_key] = result
            return result
        picture.thumbnail((size, size))
        if role == "cutout":
            result = _png(picture)
        else:
            canvas = Image.new("RGB", (size, size), (255, 255, 255))
            canvas.paste(picture, ((size - picture.width) // 2, (size - picture.height) // 2),
                         picture)
            result = _png(canvas)
    with _fast_lock:
        _fast_cache[cache_key] = result
        while len(_fast_cache) > 256:
            _fast_cache.popitem(last=False)
    return result


def fast_image(size: int, buffer_type: Callable[[], io.BytesIO] = io.BytesIO) -> tuple[bytes, str]:
    image = Image.new("RGB", (size, size), (240, 240, 240))
    buffer = buffer_type()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue(), "image/png"


# --- helpers ----------------------------------------------------------------------------


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _png(image: Image.Image, compress_level: int = 3) -> tuple[bytes, str]:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue(), "image/png"


def _encode(image: Image.Image, output_format: str) -> tuple[bytes, str]:
    if str(output_format).lower() in ("jpg", "jpeg"):
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG", quality=93)
        return buffer.getvalue(), "image/jpeg"
    if str(output_format).lower() == "webp":
        buffer = io.BytesIO()
        image.save(buffer, format="WEBP", quality=93)
        return buffer.getvalue(), "image/webp"
    return _png(image)


def _size_for_ratio(ratio: str, long_side: int) -> tuple[int, int]:
    try:
        w, h = (float(x) for x in ratio.split(":", 1))
    except ValueError:
        w, h = 1.0, 1.0
    if w >= h:
        return long_side, max(1, round(long_side * h / w))
    return max(1, round(long_side * w / h)), long_side


def _fit_long_side(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    w, h = size
    scale = long_side / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))
