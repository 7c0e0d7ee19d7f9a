"""Colour science and morphology in plain numpy: the same answers as the references."""

from __future__ import annotations

import numpy as np
import pytest

from lightbox.domain.colour import ciede2000, linear_rgb_to_lab, srgb_to_lab
from lightbox.domain.morphology import dilate_cross, within_distance

# Pairs from Sharma, Wu and Dalal (2005), Table 1: Lab, Lab, CIEDE2000.
SHARMA = [
    ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
    ((50.0, 3.1571, -77.2803), (50.0, 0.0, -82.7485), 2.8615),
    ((50.0, 2.8361, -74.0200), (50.0, 0.0, -82.7485), 3.4412),
    ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
    ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
]


@pytest.mark.parametrize(("first", "second", "expected"), SHARMA)
def test_ciede2000_matches_the_published_pairs(first, second, expected) -> None:
    assert float(ciede2000(np.array(first), np.array(second))) == pytest.approx(expected, abs=1e-4)
    # and it is symmetric
    assert float(ciede2000(np.array(second), np.array(first))) == pytest.approx(expected, abs=1e-4)


def test_colour_agrees_with_scikit_image_on_random_colours() -> None:
    # scikit-image is a laptop package (the local engine's); the functions do not need it
    from skimage.color import deltaE_ciede2000, rgb2lab

    rng = np.random.default_rng(7)
    first = rng.random((4000, 3))
    second = np.clip(first + rng.normal(0, 0.08, first.shape), 0, 1)
    ours = srgb_to_lab(first)
    theirs = rgb2lab(first.reshape(-1, 1, 3)).reshape(-1, 3)
    assert np.abs(ours - theirs).max() < 1e-9
    lab2 = srgb_to_lab(second)
    assert np.abs(ciede2000(ours, lab2) - deltaE_ciede2000(ours, lab2)).max() < 1e-9


def test_white_is_l100_and_linear_light_outside_the_gamut_is_clipped() -> None:
    assert linear_rgb_to_lab(np.array([1.0, 1.0, 1.0])) == pytest.approx([100.0, 0.0, 0.0], abs=0.01)
    assert linear_rgb_to_lab(np.array([1.7, 1.2, 1.0])) == pytest.approx([100.0, 0.0, 0.0], abs=0.01)


@pytest.mark.parametrize("seed", range(5))
def test_morphology_matches_scipy(seed: int) -> None:
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    mask = rng.random((70, 90)) > 0.97
    mask[0, :5] = True  # touching the border
    for iterations in (1, 3):
        assert (dilate_cross(mask, iterations) == ndimage.binary_dilation(
            mask, iterations=iterations)).all()
    distance = ndimage.distance_transform_edt(~mask)
    for radius in (0, 1, 2.5, 5, 9):
        assert (within_distance(mask, radius) == (distance <= radius)).all(), radius


def test_an_empty_mask_reaches_nothing() -> None:
    empty = np.zeros((5, 6), bool)
    assert not within_distance(empty, 3).any() and not dilate_cross(empty, 2).any()
