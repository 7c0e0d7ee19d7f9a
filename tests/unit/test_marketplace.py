"""Marketplace presets, fitting, encoding and the compliance checker.

Products are drawn shapes with exact masks, or a sample photo with its reference mask,
on pure white; each bad case changes one thing about a good delivery.
"""

from __future__ import annotations

import subprocess
import sys
from io import BytesIO
from pathlib import Path

import numpy as np
import pydantic
import pytest
import yaml
from PIL import Image, ImageCms, ImageDraw, ImageFilter

from lightbox.catalog.presets import Canvas, Limits, Preset, default_presets_path, load_presets
from lightbox.domain.marketplace.compliance import ComplianceReport, check_compliance
from lightbox.domain.marketplace.encode import encode_for_preset
from lightbox.domain.marketplace.fit import fit_to_preset, fit_with_mask
from lightbox.domain.marketplace.geometry import LANCZOS_CLEAN_UPSCALE, needs_upscale
from lightbox.domain.provenance import Provenance, read_digital_source_type
from lightbox.errors import ImageTooLarge, InvalidInput, LightboxError

REQUIRED_PRESETS = {
    "amazon-main",
    "shopify",
    "etsy",
    "ebay",
    "google-shopping",
    "walmart",
    "instagram-square",
    "instagram-story",
}
PRODUCT_RGB = (30, 60, 140)


def samples_dir() -> Path:
    return Path(__file__).resolve().parents[2] / ".." / "shared" / "samples"


@pytest.fixture(scope="module")
def presets() -> dict[str, Preset]:
    return load_presets()


@pytest.fixture(scope="module")
def amazon(presets: dict[str, Preset]) -> Preset:
    return presets["amazon-main"]


def drawn_product(
    size: tuple[int, int] = (2400, 2400),
    box: tuple[int, int, int, int] = (500, 300, 1900, 2100),
    backdrop: int = 255,
    halo_px: int = 0,
) -> tuple[Image.Image, Image.Image]:
    """An ellipse on a flat backdrop and its exact mask; optionally a grey ring around it,
    the leftover of a bad background removal (outside the mask, as in a real cutout)."""
    shot = Image.new("RGB", size, (backdrop,) * 3)
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(shot)
    if halo_px:
        x0, y0, x1, y1 = box
        draw.ellipse((x0 - halo_px, y0 - halo_px, x1 + halo_px, y1 + halo_px), fill=(175,) * 3)
    draw.ellipse(box, fill=PRODUCT_RGB)
    ImageDraw.Draw(mask).ellipse(box, fill=255)
    return shot, mask


def on_canvas(
    canvas: int = 2000, product_share: float = 0.9, backdrop: int = 255
) -> tuple[Image.Image, Image.Image]:
    """A product already framed on a square canvas: its long side is product_share."""
    side = round(canvas * product_share)
    x0 = (canvas - round(side * 0.7)) // 2
    y0 = (canvas - side) // 2
    return drawn_product((canvas, canvas), (x0, y0, x0 + round(side * 0.7), y0 + side), backdrop)


def deliver(
    shot: Image.Image, preset: Preset, mask: Image.Image | None = None
) -> tuple[bytes, Image.Image | None]:
    fitted, fitted_mask = fit_with_mask(shot, preset, product_mask=mask)
    return encode_for_preset(fitted, preset, provenance=Provenance()), fitted_mask


def errors(report: ComplianceReport) -> set[str]:
    return {r.rule for r in report.rules if not r.passed and r.severity == "error"}


@pytest.fixture(scope="module")
def clean_amazon_delivery(amazon: Preset) -> tuple[bytes, Image.Image]:
    shot, mask = drawn_product()
    data, fitted_mask = deliver(shot, amazon, mask)
    assert fitted_mask is not None
    return data, fitted_mask


# --- the catalogue ------------------------------------------------------------------------


def test_every_required_preset_loads_with_dated_sources(presets: dict[str, Preset]) -> None:
    # Given the catalogue shipped in the package / When it loads
    # Then every required marketplace is there and each cites dated sources
    assert REQUIRED_PRESETS <= set(presets)
    for preset in presets.values():
        assert preset.sources, preset.id
        for source in preset.sources:
            assert source.read.isoformat() == "2026-11-24", (preset.id, source.id)
            assert source.url or source.id == "lightbox", (preset.id, source.id)


def test_the_presets_and_the_fit_plan_load_neither_numpy_nor_pillow() -> None:
    # Given a fresh interpreter, as in the API (neither library) or the shot check (no Pillow)
    script = (
        "import sys\n"
        "from lightbox.catalog.presets import load_presets\n"
        "from lightbox.domain.marketplace.geometry import needs_upscale\n"
        "assert needs_upscale((1000, 1000), load_presets()['amazon-main']) > 1.0\n"
        "heavy = sorted({'numpy', 'PIL'} & set(sys.modules))\n"
        "assert not heavy, heavy\n"
    )
    # When it loads the presets and plans a fit
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    # Then it imported neither numpy nor Pillow
    assert result.returncode == 0, result.stderr


def test_every_figure_of_a_preset_names_the_source_it_came_from(
    presets: dict[str, Preset],
) -> None:
    for preset in presets.values():
        supported = {claim for source in preset.sources for claim in source.supports}
        figures = {"canvas", "quality", "colour_space"}
        figures |= {f"limits.{name}" for name, value in preset.limits if value is not None}
        if preset.white_background:
            figures |= {"background", "fill.target"}
        if preset.fill is not None and preset.fill.min is not None:
            figures.add("fill.min")
        if preset.safe_area is not None:
            figures.add("safe_area")
        if preset.policy_warnings:
            figures.add("policy_warnings")
        assert figures <= supported, (preset.id, sorted(figures - supported))


def test_the_white_background_presets_are_amazon_and_walmart(
    presets: dict[str, Preset],
) -> None:
    white = {p.id for p in presets.values() if p.white_background}
    assert white == {"amazon-main", "walmart"}
    assert presets["amazon-main"].fill is not None
    assert presets["amazon-main"].fill.min == 0.85


def test_load_presets_refuses_a_duplicate_id(tmp_path: Path) -> None:
    # Given a catalogue that defines the same preset twice
    entry = yaml.safe_load(default_presets_path().read_text(encoding="utf-8"))[0]
    path = tmp_path / "presets.yaml"
    path.write_text(yaml.safe_dump([entry, entry]))
    # When / Then
    with pytest.raises(LightboxError, match="twice"):
        load_presets(path)


def test_a_preset_whose_canvas_breaks_its_own_limits_does_not_load(amazon: Preset) -> None:
    data = amazon.model_dump()
    data["canvas"] = {"width": 800, "height": 800}
    with pytest.raises(pydantic.ValidationError, match="below the marketplace minimum"):
        Preset.model_validate(data)


# --- needs_upscale and fit_to_preset ------------------------------------------------------


def test_a_large_shot_needs_no_upscale(amazon: Preset) -> None:
    assert needs_upscale((2400, 2400), amazon, (500, 300, 1900, 2100)) == 1.0


def test_a_small_shot_needs_the_upscale_its_product_framing_asks_for(amazon: Preset) -> None:
    # Given a 1000 px shot whose product is 900 px tall; Amazon frames it at 90 % of 2000
    factor = needs_upscale((1000, 1000), amazon, (200, 50, 800, 950))
    # Then the product must grow from 900 to 1800 px
    assert factor == 2.0


def test_a_few_percent_short_is_left_to_lanczos(amazon: Preset) -> None:
    product_long_side = round(1800 / (LANCZOS_CLEAN_UPSCALE - 0.05))
    assert needs_upscale((2000, 2000), amazon, (0, 0, 1000, product_long_side)) == 1.0


def test_fit_refuses_to_stretch_a_small_shot_and_says_how_much_is_needed(
    amazon: Preset,
) -> None:
    shot, mask = drawn_product(size=(1000, 1000), box=(200, 50, 800, 950))
    with pytest.raises(InvalidInput) as raised:
        fit_to_preset(shot, amazon, product_mask=mask)
    assert raised.value.details["needed"] == 2.0


def test_fit_refuses_a_mask_of_another_size(amazon: Preset) -> None:
    shot, _ = drawn_product()
    with pytest.raises(InvalidInput, match="size"):
        fit_to_preset(shot, amazon, product_mask=Image.new("L", (10, 10), 255))


def test_fit_frames_the_product_at_the_target_fill_on_pure_white(
    amazon: Preset, clean_amazon_delivery: tuple[bytes, Image.Image]
) -> None:
    data, fitted_mask = clean_amazon_delivery
    delivered = Image.open(BytesIO(data))
    assert delivered.size == (2000, 2000)
    x0, y0, x1, y1 = fitted_mask.getbbox() or (0, 0, 0, 0)
    assert abs((y1 - y0) / 2000 - 0.90) < 0.005  # the ellipse is taller than wide
    assert abs((x0 + x1) / 2 - 1000) <= 2 and abs((y0 + y1) / 2 - 1000) <= 2


def test_fit_lifts_an_off_white_backdrop_to_pure_white(amazon: Preset) -> None:
    # Given a generator's "white" studio at 250
    shot, mask = drawn_product(backdrop=250)
    # When it is fitted and encoded for Amazon
    data, fitted_mask = deliver(shot, amazon, mask)
    # Then the backdrop is pure white and the product untouched
    report = check_compliance(data, amazon, product_mask=fitted_mask)
    assert report.rule("background.pure_white").passed, report.rule("background.pure_white")
    pixels = np.asarray(Image.open(BytesIO(data)))
    assert pixels[5, 5].tolist() == [255, 255, 255]
    assert np.abs(pixels[1000, 1000].astype(int) - PRODUCT_RGB).max() <= 3


def test_fit_keeps_a_soft_shadow_inside_the_frame(amazon: Preset) -> None:
    # Given a product whose contact shadow reaches below it
    shot, mask = drawn_product(box=(600, 250, 1800, 2050))
    shadow = Image.new("L", shot.size, 0)
    ImageDraw.Draw(shadow).ellipse((450, 1950, 1950, 2250), fill=140)
    shot.paste((90, 90, 90), (0, 0), shadow.filter(ImageFilter.GaussianBlur(30)))
    shot.paste(PRODUCT_RGB, (0, 0), mask)
    # When it is delivered for Amazon
    data, fitted_mask = deliver(shot, amazon, mask)
    report = check_compliance(data, amazon, product_mask=fitted_mask)
    # Then the shadow is not cut, and the product still fills at least 85 %
    assert report.passed, report.failures()
    assert report.rule("framing.not_cut").passed


def test_fit_keeps_the_product_clear_of_the_story_ui(presets: dict[str, Preset]) -> None:
    # Given a landscape shot whose product sits low
    story = presets["instagram-story"]
    shot, mask = drawn_product(size=(2400, 1800), box=(1050, 1050, 1500, 1790), backdrop=230)
    # When it is fitted to the 9:16 story canvas
    fitted, fitted_mask = fit_with_mask(shot, story, product_mask=mask)
    data = encode_for_preset(fitted, story, provenance=Provenance())
    report = check_compliance(data, story, product_mask=fitted_mask)
    # Then the product avoids the top 250 px and the bottom 200 px
    assert fitted.size == (1080, 1920)
    assert report.rule("framing.safe_area").passed, report.rule("framing.safe_area")
    assert report.passed


def test_ebay_keeps_the_shots_aspect_ratio(presets: dict[str, Preset]) -> None:
    shot, _ = drawn_product(size=(2000, 1500), box=(500, 300, 1500, 1200))
    assert fit_to_preset(shot, presets["ebay"]).size == (1600, 1200)


# --- check_compliance: the good delivery and one fault at a time ---------------------------


def test_a_drawn_product_on_white_passes_amazon_main(
    amazon: Preset, clean_amazon_delivery: tuple[bytes, Image.Image]
) -> None:
    data, fitted_mask = clean_amazon_delivery
    report = check_compliance(data, amazon, product_mask=fitted_mask)
    assert report.passed, report.failures()
    for rule in (
        "decodes",
        "format.allowed",
        "size.min",
        "size.max",
        "file.max_bytes",
        "colour.space",
        "provenance.digital_source_type",
        "background.pure_white",
        "framing.fill",
        "framing.not_cut",
        "edges.no_halo",
    ):
        assert report.rule(rule).passed, report.rule(rule)


def test_the_same_delivery_passes_without_a_mask_by_estimating_the_product(
    amazon: Preset, clean_amazon_delivery: tuple[bytes, Image.Image]
) -> None:
    data, _ = clean_amazon_delivery
    report = check_compliance(data, amazon)
    assert report.passed, report.failures()
    assert "estimated" in report.rule("framing.fill").detail
    assert report.rule("edges.no_halo").severity == "warning"


def test_a_sample_photo_cut_out_with_its_mask_passes_amazon_main(amazon: Preset) -> None:
    # Given a real photo cut out with its reference mask (a cutout: RGBA)
    photo = Image.open(samples_dir() / "photos" / "carvekit-handheld-product.jpg").convert("RGB")
    mask = Image.open(samples_dir() / "masks" / "carvekit-handheld-product.png").convert("L")
    cutout = photo.copy()
    cutout.putalpha(mask)
    # When the caller upscales as needs_upscale asks (Lanczos stands in for the upscaler)
    factor = needs_upscale(photo.size, amazon, mask.point(lambda v: 255 * (v > 127)).getbbox())
    assert factor > 1.0
    size = (round(photo.width * factor), round(photo.height * factor))
    cutout = cutout.resize(size, Image.Resampling.LANCZOS)
    data, fitted_mask = deliver(cutout, amazon)  # the alpha channel is the product mask
    # Then the delivery passes every error rule
    report = check_compliance(data, amazon, product_mask=fitted_mask)
    assert report.passed, report.failures()
    assert report.rule("edges.no_halo").passed


def test_an_off_white_background_fails(amazon: Preset) -> None:
    # Given a well-framed product on a 250 backdrop that skipped fit_to_preset
    image, mask = on_canvas(backdrop=250)
    data = encode_for_preset(image, amazon, provenance=Provenance())
    report = check_compliance(data, amazon, product_mask=mask)
    assert errors(report) == {"background.pure_white"}
    assert "median darkest channel 250" in report.rule("background.pure_white").detail


def test_a_product_at_half_the_frame_fails_the_fill_rule(amazon: Preset) -> None:
    image, mask = on_canvas(product_share=0.5)
    data = encode_for_preset(image, amazon, provenance=Provenance())
    report = check_compliance(data, amazon, product_mask=mask)
    assert errors(report) == {"framing.fill"}
    assert "50.0%" in report.rule("framing.fill").detail


def test_a_shadow_touching_the_frame_edge_fails(amazon: Preset) -> None:
    # Given a good delivery with a grey shadow running off the right-hand edge
    image, mask = on_canvas()
    ImageDraw.Draw(image).rectangle((1200, 1700, 1999, 1800), fill=(150, 150, 150))
    image.paste(PRODUCT_RGB, (0, 0), mask)
    data = encode_for_preset(image, amazon, provenance=Provenance())
    report = check_compliance(data, amazon, product_mask=mask)
    assert "framing.not_cut" in errors(report)
    assert "right" in report.rule("framing.not_cut").detail


def test_a_cutout_with_a_grey_halo_fails_the_halo_rule(amazon: Preset) -> None:
    shot, mask = drawn_product(halo_px=8)
    data, fitted_mask = deliver(shot, amazon, mask)
    report = check_compliance(data, amazon, product_mask=fitted_mask)
    assert errors(report) == {"edges.no_halo"}
    assert "16 of 16" in report.rule("edges.no_halo").detail


def test_a_soft_cutout_edge_is_not_mistaken_for_a_halo(amazon: Preset) -> None:
    # Given a cutout whose alpha ramps over ~20 px (a soft model mask, upscaled)
    _, hard = drawn_product()
    soft = hard.filter(ImageFilter.GaussianBlur(8))
    cutout = Image.new("RGBA", soft.size, PRODUCT_RGB + (0,))
    cutout.putalpha(soft)
    # When it is delivered with its own soft alpha as the product mask
    data, fitted_mask = deliver(cutout, amazon)
    report = check_compliance(data, amazon, product_mask=fitted_mask)
    # Then the ramp is read as the edge, not as a fringe
    assert report.rule("edges.no_halo").passed, report.rule("edges.no_halo")
    assert report.passed


def test_a_too_small_image_fails_size(amazon: Preset) -> None:
    image, mask = on_canvas(canvas=800)
    data = encode_for_preset(image, amazon, provenance=Provenance())
    report = check_compliance(data, amazon, product_mask=mask)
    assert "size.min" in errors(report)
    assert "800 px < 1000 px" in report.rule("size.min").detail


def test_bytes_that_are_not_an_image_fail_to_decode(amazon: Preset) -> None:
    report = check_compliance(b"not an image", amazon)
    assert not report.passed
    assert [r.rule for r in report.rules] == ["decodes"]


def test_a_format_the_marketplace_does_not_take_fails(amazon: Preset) -> None:
    image, mask = on_canvas()
    out = BytesIO()
    image.save(out, "WEBP", quality=90)
    report = check_compliance(out.getvalue(), amazon, product_mask=mask, ai_generated=False)
    assert errors(report) == {"format.allowed"}


def test_cmyk_and_non_srgb_profiles_fail_the_colour_rule(amazon: Preset) -> None:
    image, mask = on_canvas()
    cmyk = BytesIO()
    image.convert("CMYK").save(cmyk, "JPEG", quality=90)
    lab_tagged = BytesIO()
    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    image.save(lab_tagged, "JPEG", quality=90, icc_profile=lab)
    for data in (cmyk.getvalue(), lab_tagged.getvalue()):
        report = check_compliance(data, amazon, product_mask=mask, ai_generated=False)
        assert "colour.space" in errors(report)


def test_an_ai_shot_without_its_label_fails_and_a_photo_does_not_need_one(
    amazon: Preset,
) -> None:
    image, mask = on_canvas()
    data = encode_for_preset(image, amazon, provenance=None)
    assert errors(check_compliance(data, amazon, product_mask=mask)) == {
        "provenance.digital_source_type"
    }
    assert check_compliance(data, amazon, product_mask=mask, ai_generated=False).passed


def test_google_wants_trained_algorithmic_media_exactly(presets: dict[str, Preset]) -> None:
    google = presets["google-shopping"]
    image, _ = on_canvas(canvas=1500)
    composite = Provenance(digital_source_type="compositeSynthetic")
    data = encode_for_preset(image, google, provenance=composite)
    report = check_compliance(data, google)
    assert errors(report) == {"provenance.digital_source_type"}
    assert "Google" in report.rule("provenance.digital_source_type").detail
    labelled = encode_for_preset(image, google, provenance=Provenance())
    assert check_compliance(labelled, google).passed


def test_etsy_warns_about_ai_renderings_without_failing_the_report(
    presets: dict[str, Preset],
) -> None:
    etsy = presets["etsy"]
    image, _ = on_canvas()
    data = encode_for_preset(fit_to_preset(image, etsy), etsy, provenance=Provenance())
    report = check_compliance(data, etsy)
    warning = report.rule("policy.etsy-rendering")
    assert not warning.passed and warning.severity == "warning"
    assert "rendering" in warning.detail
    assert report.passed
    assert check_compliance(data, etsy, ai_generated=False).rule("policy.etsy-rendering").passed


def test_walmart_requires_a_square_image(presets: dict[str, Preset]) -> None:
    walmart = presets["walmart"]
    image, _ = drawn_product(size=(2200, 1600), box=(700, 100, 1500, 1500))
    data = encode_for_preset(image, walmart, provenance=Provenance())
    assert "size.aspect" in errors(check_compliance(data, walmart))


# --- encode_for_preset ----------------------------------------------------------------------


def test_encode_writes_the_preset_format_with_an_srgb_profile_and_no_exif(
    presets: dict[str, Preset],
) -> None:
    image, _ = on_canvas(canvas=1080)
    for preset_id in ("instagram-square", "google-shopping"):
        data = encode_for_preset(image, presets[preset_id], provenance=Provenance())
        decoded = Image.open(BytesIO(data))
        assert decoded.format == presets[preset_id].format
        profile = ImageCms.ImageCmsProfile(BytesIO(decoded.info["icc_profile"]))
        assert "sRGB" in ImageCms.getProfileDescription(profile)
        assert not decoded.getexif()


def test_encode_flattens_transparency_on_white(amazon: Preset) -> None:
    cutout = Image.new("RGBA", (1200, 1200), (0, 0, 0, 0))
    data = encode_for_preset(cutout, amazon, provenance=None)
    assert Image.open(BytesIO(data)).getpixel((10, 10)) == (255, 255, 255)


def noisy(size: int = 1200) -> Image.Image:
    rng = np.random.default_rng(7)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "RGB")


def test_encode_lowers_quality_stepwise_to_stay_under_the_byte_limit(amazon: Preset) -> None:
    image = noisy()
    full = len(encode_for_preset(image, amazon, provenance=None))
    tight = amazon.model_copy(update={"limits": Limits(max_bytes=int(full * 0.7))})
    data = encode_for_preset(image, tight, provenance=Provenance())
    assert len(data) <= full * 0.7
    assert read_digital_source_type(data) == "trainedAlgorithmicMedia"


def test_encode_gives_up_when_even_low_quality_is_too_big(amazon: Preset) -> None:
    tight = amazon.model_copy(update={"limits": Limits(max_bytes=10_000)})
    with pytest.raises(ImageTooLarge):
        encode_for_preset(noisy(), tight, provenance=None)


def test_a_canvas_is_either_fixed_or_long_side() -> None:
    with pytest.raises(pydantic.ValidationError):
        Canvas(width=100, height=100, long_side=100)
    assert Canvas(long_side=1600).size_for((1000, 500)) == (1600, 800)


def test_a_lifestyle_scene_is_not_dressed_up_on_white_and_fails_amazon_main(
    amazon: Preset,
) -> None:
    # Given a shot whose backdrop is a coloured scene, not a white studio
    shot, _ = drawn_product(backdrop=150)
    # When it is delivered for a white-background preset (no mask: the pipeline's case)
    data, _ = deliver(shot, amazon)
    delivered = Image.open(BytesIO(data)).convert("RGB")
    # Then it is not padded with white, and the checker reports the background
    corners = [delivered.getpixel(p) for p in ((0, 0), (delivered.width - 1, 0),
                                               (0, delivered.height - 1))]
    assert all(max(c) < 200 for c in corners)
    assert "background.pure_white" in errors(check_compliance(data, amazon))
