"""Colour science for the fidelity check: sRGB to CIELAB, and the CIEDE2000 difference.

Plain numpy, so the functions that judge colour need no image-science package beyond
the one they already have. Conventions are the usual ones (and scikit-image's): sRGB
primaries, the CIE 1931 2° observer, D65 white; CIEDE2000 with kL = kC = kH = 1
(Sharma, Wu and Dalal, "The CIEDE2000 Color-Difference Formula", 2005).
"""

from __future__ import annotations

import numpy as np

#: Linear sRGB to CIE XYZ.
_XYZ_FROM_LINEAR_RGB = np.array([
    [0.412453, 0.357580, 0.180423],
    [0.212671, 0.715160, 0.072169],
    [0.019334, 0.119193, 0.950227],
])
#: The D65 white point (2° observer) in XYZ.
_D65 = np.array([0.95047, 1.0, 1.08883])


def srgb_to_linear(values: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in 0..1 to linear light."""
    return np.where(values <= 0.04045, values / 12.92, ((values + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(values: np.ndarray) -> np.ndarray:
    """Linear light to sRGB encoding, clipped to 0..1 (what a display can show)."""
    values = np.clip(values, 0.0, 1.0)
    return np.where(values <= 0.0031308, values * 12.92, 1.055 * values ** (1 / 2.4) - 0.055)


def linear_rgb_to_lab(linear: np.ndarray) -> np.ndarray:
    """Linear-light RGB (..., 3), clipped to 0..1, to CIELAB (..., 3): L 0..100."""
    xyz = np.clip(np.asarray(linear, dtype=np.float64), 0.0, 1.0) @ _XYZ_FROM_LINEAR_RGB.T
    ratio = xyz / _D65
    f = np.where(ratio > 0.008856, np.cbrt(ratio), 7.787 * ratio + 16.0 / 116.0)
    lightness = 116.0 * f[..., 1] - 16.0
    a = 500.0 * (f[..., 0] - f[..., 1])
    b = 200.0 * (f[..., 1] - f[..., 2])
    return np.stack([lightness, a, b], axis=-1)


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB in 0..1 (..., 3) to CIELAB (..., 3)."""
    return linear_rgb_to_lab(srgb_to_linear(np.asarray(rgb, dtype=np.float64)))


def ciede2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference between two CIELAB arrays of the same shape (..., 3)."""
    lab1 = np.asarray(lab1, dtype=np.float64)
    lab2 = np.asarray(lab2, dtype=np.float64)
    l1, a1, b1 = lab1[..., 0], lab1[..., 1], lab1[..., 2]
    l2, a2, b2 = lab2[..., 0], lab2[..., 1], lab2[..., 2]

    chroma_mean = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    c7 = chroma_mean**7
    g = 0.5 * (1 - np.sqrt(c7 / (c7 + 25.0**7)))
    a1p, a2p = a1 * (1 + g), a2 * (1 + g)
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360

    delta_l = l2 - l1
    delta_c = c2p - c1p
    both = c1p * c2p
    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(both == 0, 0.0, dh)
    delta_h = 2 * np.sqrt(both) * np.sin(np.radians(dh) / 2)

    l_mean = (l1 + l2) / 2
    c_mean = (c1p + c2p) / 2
    h_sum = h1p + h2p
    h_mean = np.where(
        both == 0, h_sum,
        np.where(np.abs(h1p - h2p) <= 180, h_sum / 2,
                 np.where(h_sum < 360, (h_sum + 360) / 2, (h_sum - 360) / 2)),
    )
    t = (1 - 0.17 * np.cos(np.radians(h_mean - 30)) + 0.24 * np.cos(np.radians(2 * h_mean))
         + 0.32 * np.cos(np.radians(3 * h_mean + 6))
         - 0.20 * np.cos(np.radians(4 * h_mean - 63)))
    l50 = (l_mean - 50) ** 2
    s_l = 1 + 0.015 * l50 / np.sqrt(20 + l50)
    s_c = 1 + 0.045 * c_mean
    s_h = 1 + 0.015 * c_mean * t
    c_mean7 = c_mean**7
    r_c = 2 * np.sqrt(c_mean7 / (c_mean7 + 25.0**7))
    rotation = -np.sin(np.radians(60 * np.exp(-(((h_mean - 275) / 25) ** 2)))) * r_c

    term_l, term_c, term_h = delta_l / s_l, delta_c / s_c, delta_h / s_h
    return np.sqrt(term_l**2 + term_c**2 + term_h**2 + rotation * term_c * term_h)
