"""The single-image tools' pure parts: the order's options, the photo check, the price,
and the pixel work that keeps each tool's promise whatever its model does."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from lightbox.domain import tool_images
from lightbox.domain.pricing import load_pricing
from lightbox.domain.provenance import Provenance, read_digital_source_type
from lightbox.errors import InvalidImage, InvalidInput
from lightbox.models import ToolName, ToolOrder
from lightbox.services.tools import ToolRequest, photo_problem, tool_order


def _request(tool: str, **options: object) -> ToolRequest:
    return ToolRequest.model_validate({"tool": tool, "options": options})


# --- the order ------------------------------------------------------------------------------


def test_each_tool_takes_only_its_own_option_with_its_default() -> None:
    assert tool_order(_request("remove-background")) == ToolOrder(name=ToolName.REMOVE_BACKGROUND)
    assert tool_order(_request("upscale")).scale == 2
    assert tool_order(_request("upscale", scale=4)).scale == 4
    assert tool_order(_request("fit", preset="etsy")).preset == "etsy"
    with pytest.raises(InvalidInput, match="takes no option preset"):
        tool_order(_request("upscale", preset="etsy"))
    with pytest.raises(InvalidInput, match="takes no option scale"):
        tool_order(_request("remove-background", scale=2))


def test_fit_needs_a_preset_of_the_catalogue() -> None:
    for options in ({}, {"preset": "nowhere"}):
        with pytest.raises(InvalidInput) as refused:
            tool_order(_request("fit", **options))
        assert "amazon-main" in refused.value.details["allowed"]


def test_only_two_and_four_times_are_offered() -> None:
    with pytest.raises(ValueError):
        _request("upscale", scale=3)


def test_an_upscale_past_ten_thousand_pixels_is_refused_before_it_is_made() -> None:
    four_times = ToolOrder(name=ToolName.UPSCALE, scale=4)
    assert photo_problem(four_times, (2500, 1800)) is None
    problem = photo_problem(four_times, (3000, 2000))
    assert problem is not None and "12000 px" in problem and "Choose 2x" in problem
    assert photo_problem(ToolOrder(name=ToolName.FIT, preset="etsy"), (4096, 4096)) is None


def test_every_tool_costs_one_credit() -> None:
    pricing = load_pricing()
    assert [pricing.tool_price(name) for name in ToolName] == [1, 1, 1]


# --- the pixels -----------------------------------------------------------------------------


def _photo() -> Image.Image:
    photo = Image.new("RGB", (800, 600), (200, 200, 200))
    photo.paste((10, 120, 200), (300, 200, 500, 500))
    return photo


def _cutout(size: tuple[int, int], box: tuple[int, int, int, int]) -> Image.Image:
    cutout = Image.new("RGBA", size, (0, 0, 0, 0))
    cutout.paste((10, 120, 200, 255), box)
    return cutout


def test_a_cutout_at_the_photos_size_is_kept_as_the_model_made_it() -> None:
    cutout = _cutout((800, 600), (300, 200, 500, 500))
    assert tool_images.cutout_at_photo_size(cutout, _photo()).tobytes() == cutout.tobytes()


def test_a_smaller_cutout_puts_its_alpha_on_the_photos_own_pixels() -> None:
    full = tool_images.cutout_at_photo_size(_cutout((400, 300), (150, 100, 250, 250)), _photo())
    assert (full.mode, full.size) == ("RGBA", (800, 600))
    assert full.getpixel((400, 350)) == (10, 120, 200, 255)
    assert full.getpixel((50, 50)) == (200, 200, 200, 0)
    assert tool_images.product_box(full) == (300, 200, 500, 500)


def test_a_cutout_without_transparency_is_not_a_cutout() -> None:
    with pytest.raises(InvalidImage):
        tool_images.cutout_at_photo_size(_photo(), _photo())


def test_the_upscalers_input_is_white_where_nothing_was_and_keeps_its_edges() -> None:
    cutout = _cutout((100, 100), (20, 20, 80, 80))
    cutout.putpixel((19, 50), (10, 120, 200, 128))  # a soft edge
    opaque = tool_images.opaque_for_upscaler(cutout)
    assert opaque.mode == "RGB"
    assert opaque.getpixel((5, 5)) == (255, 255, 255)
    assert opaque.getpixel((19, 50)) == (10, 120, 200)
    # and the alpha goes back on the upscaled image, resized
    upscaled = opaque.resize((400, 400))
    back = tool_images.with_alpha_of(upscaled, cutout)
    assert back.size == (400, 400) and back.getpixel((10, 10))[3] == 0
    assert back.getpixel((200, 200))[3] == 255


def test_a_png_carries_the_provenance_and_its_alpha() -> None:
    data = tool_images.png_with_provenance(
        _cutout((64, 64), (8, 8, 56, 56)),
        Provenance(digital_source_type="algorithmicallyEnhanced"))
    assert read_digital_source_type(data) == "algorithmicallyEnhanced"
    assert Image.open(io.BytesIO(data)).mode == "RGBA"
