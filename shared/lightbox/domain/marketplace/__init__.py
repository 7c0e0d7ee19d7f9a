"""Marketplace presets: fit a shot to a marketplace's canvas, encode it, check it.

A job may ask for presets (``catalog/presets.yaml``, typed and loaded by
``lightbox.catalog.presets``); each shot is delivered once per preset. The flow for one
shot and one preset:

1. ``geometry.needs_upscale`` says whether the shot has enough pixels for the preset.
   Above 1.0 the caller runs a real upscaler first: Lanczos inside ``fit_to_preset``
   only covers the last few percent (``geometry.LANCZOS_CLEAN_UPSCALE``).
2. ``fit.fit_to_preset`` resizes, pads and crops to the preset canvas. On
   white-background presets it lifts the shot's near-white backdrop to pure 255,
   extends it with pure white and re-frames the product to the preset's target fill.
3. ``encode.encode_for_preset`` writes the file: format, quality, an sRGB ICC profile
   and the IPTC AI label (``provenance``), under the preset's byte limit.
4. ``compliance.check_compliance`` reads the delivered bytes back and reports
   pass/fail per rule.

"Fill" is the product's bounding box over the frame along the longer axis,
``max(bw / W, bh / H)``: Amazon's "the product fills 85 % of the image" is measured when
the longest side is shown, i.e. on the product's longer extent, not on its area (an area
share of 85 % would be impossible for most real products).

Each module imports only what its step needs, because each Lambda function may import
only what its layers give it: ``geometry`` is plain Python (with the presets, it loads
neither numpy nor Pillow); ``fit``, ``compliance`` and the ``pixels`` helpers they share
use Pillow and numpy; ``encode`` uses Pillow (and ``pixels`` to flatten transparency).
This package therefore imports none of its modules: import the one you need.

Pure domain code: images and bytes in, images, bytes and reports out.
"""
