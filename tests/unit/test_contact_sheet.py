"""The contact sheet writes its captions legibly with whatever font the system has."""

from __future__ import annotations

from PIL import Image

from lightbox.domain.contact_sheet import SheetEntry, _ascii, render_contact_sheet


def test_captions_fold_to_ascii_for_the_fallback_font() -> None:
    assert _ascii("014 · Café table · ΔE 1.2…") == "014 - Cafe table - dE 1.2..."


def test_a_sheet_has_a_tile_per_shot_with_its_image() -> None:
    red = Image.new("RGB", (200, 100), (200, 0, 0))
    entries = [SheetEntry(title=f"00{n} · Café · v1", status="delivered",
                          detail="ΔE 1.0 · match 70% · faces 0", image=red) for n in range(5)]
    entries.append(SheetEntry(title="006 · Dark studio · v1", status="rejected",
                              detail="extra object", image=None))
    sheet = render_contact_sheet(entries, title="Lightbox job j1: partly done")
    assert sheet.mode == "RGB"
    assert sheet.width > sheet.height / 2  # 4 columns, 2 rows
    # the first tile's image is there, centred in its square
    assert sheet.getpixel((12 + 160, 48 + 12 + 160)) == (200, 0, 0)
