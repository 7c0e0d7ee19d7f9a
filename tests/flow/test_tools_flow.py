"""Single-image tools end to end: one photo, one credit, one image, by the shoot's path
(presigned POST, upload_received, the model's webhook, the "finish image" state machine).

Each test checks the credit too: reserved with the job, spent when the image is made,
refunded when it cannot be, and nothing left reserved.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from PIL import Image

from lightbox.adapters.ledger import EntryKind
from lightbox.domain.provenance import read_digital_source_type
from lightbox.models import JobStatus
from lightbox.services.context import get_context
from lightbox_local.engine.server import Fault
from lightbox_local.stack import LocalStack
from tests.flow.conftest import COFFEE, Shop

pytestmark = [pytest.mark.flow, pytest.mark.slow]


def _download(url: str) -> tuple[Image.Image, bytes]:
    data = httpx.get(url).raise_for_status().content
    image = Image.open(io.BytesIO(data))
    image.load()
    return image, data


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _books(shop: Shop, job_id: str) -> set[EntryKind]:
    """How the job's credit moved (each movement is one entry, keyed by its cause)."""
    return {e.kind for e in get_context().ledger.entries(shop.user) if e.cause_id == job_id}


def _predictions_made(shop: Shop, before: int) -> int:
    return shop.stack.engine.stats["created"] - before


def test_remove_background_gives_the_product_on_transparency_at_the_photos_size(
    paying_shop: Shop, coffee: bytes
) -> None:
    # Given a shop with 200 credits and the 600x400 demo photo
    created = paying_shop.stack.engine.stats["created"]
    # When it runs "remove background" on it
    job_id = paying_shop.run_tool(coffee, "remove-background")
    job = paying_shop.wait_for_job(job_id)
    # Then the job is done with one PNG, with alpha, at the photo's size
    assert job.status == JobStatus.DONE, job.reason
    view = paying_shop.job(job_id)
    assert view["kind"] == "tool" and view["tool"] == {"name": "remove-background",
                                                       "scale": None, "preset": None}
    image, data = _download(view["result"]["url"])
    assert (image.format, image.mode, image.size) == ("PNG", "RGBA", (600, 400))
    alpha = image.getchannel("A")
    assert alpha.getextrema() == (0, 255)  # a background taken away, a product kept
    assert read_digital_source_type(data) == "algorithmicallyEnhanced"
    assert "attachment" in httpx.get(view["result"]["download_url"]).headers.get(
        "content-disposition", "")
    # and one prediction (the cutout) made it, for one credit, spent
    assert _predictions_made(paying_shop, created) == 1
    account = paying_shop.balance()
    assert (account["balance"], account["reserved"]) == (199, 0)
    assert _books(paying_shop, job_id) == {EntryKind.RESERVE, EntryKind.SPEND}
    # and the manifest says what was made, from what
    manifest = httpx.get(view["manifest_url"]).json()
    assert manifest["tool"] == {"name": "remove-background"}
    assert manifest["output"]["models"] == ["bria/remove-background"]


@pytest.mark.parametrize("scale", [2, 4])
def test_upscale_gives_the_photo_two_or_four_times_larger(
    paying_shop: Shop, coffee: bytes, scale: int
) -> None:
    job = paying_shop.wait_for_job(paying_shop.run_tool(coffee, "upscale", scale=scale))
    assert job.status == JobStatus.DONE, job.reason
    view = paying_shop.job(job.job_id)
    image, _ = _download(view["result"]["url"])
    assert image.format == "PNG"
    assert image.size == (600 * scale, 400 * scale)
    assert (view["result"]["width"], view["result"]["height"]) == image.size
    assert paying_shop.balance()["balance"] == 199


def test_fit_frames_a_small_product_for_amazon_after_upscaling_it(
    paying_shop: Shop, coffee: bytes
) -> None:
    # Given the demo photo, whose cup is far too small for Amazon's 2000 px canvas
    created = paying_shop.stack.engine.stats["created"]
    # When it is fitted for Amazon's main image
    job = paying_shop.wait_for_job(paying_shop.run_tool(coffee, "fit", preset="amazon-main"))
    # Then the cutout was upscaled first (two predictions), and the result is the
    # preset's JPEG on pure white with a passing compliance report
    assert job.status == JobStatus.DONE, job.reason
    assert _predictions_made(paying_shop, created) == 2
    view = paying_shop.job(job.job_id)
    image, _ = _download(view["result"]["url"])
    assert (image.format, image.size) == ("JPEG", (2000, 2000))
    assert image.convert("RGB").getpixel((5, 5)) == (255, 255, 255)
    report = view["result"]["compliance"]
    assert report["preset"] == "amazon-main"
    assert report["passed"] is True, [r for r in report["rules"] if not r["passed"]]
    assert {"background.pure_white", "framing.fill", "framing.not_cut", "edges.no_halo"} <= {
        r["rule"] for r in report["rules"]}
    manifest = httpx.get(view["manifest_url"]).json()
    assert manifest["output"]["models"] == ["bria/remove-background", "nightmareai/real-esrgan"]
    assert paying_shop.balance()["balance"] == 199


def test_an_uploaded_cutout_is_fitted_without_a_background_removal_prediction(
    paying_shop: Shop,
) -> None:
    # Given a large PNG whose alpha already separates the product
    image = Image.new("RGBA", (1800, 1800), (0, 0, 0, 0))
    image.paste(Image.new("RGBA", (900, 1400), (180, 40, 40, 255)), (450, 200))
    created = paying_shop.stack.engine.stats["created"]
    # When it is fitted for eBay
    job = paying_shop.wait_for_job(paying_shop.run_tool(_png(image), "fit", preset="ebay"))
    # Then no prediction was paid for, and the product is framed on the preset's canvas
    assert job.status == JobStatus.DONE, job.reason
    assert _predictions_made(paying_shop, created) == 0
    view = paying_shop.job(job.job_id)
    assert view["result"]["compliance"]["passed"] is True
    assert paying_shop.balance()["balance"] == 199


def test_a_failed_tool_prediction_fails_the_job_and_refunds_the_credit(
    paying_shop: Shop, coffee: bytes
) -> None:
    # Given the background-removal model fails its next prediction
    paying_shop.stack.engine.add_fault(Fault(kind="fail", model="cutout", count=1))
    # When the shop runs "remove background"
    job = paying_shop.wait_for_job(paying_shop.run_tool(coffee, "remove-background"))
    # Then the job failed with a reason, has no image, and the credit came back
    assert job.status == JobStatus.FAILED
    view = paying_shop.job(job.job_id)
    assert view["result"] is None
    assert view["reason"].startswith("The background could not be removed")
    account = paying_shop.settled_balance(200)
    assert (account["balance"], account["reserved"]) == (200, 0)
    assert _books(paying_shop, job.job_id) == {EntryKind.RESERVE, EntryKind.REFUND}


def test_a_fit_whose_upscale_fails_is_refunded(paying_shop: Shop, coffee: bytes) -> None:
    paying_shop.stack.engine.add_fault(Fault(kind="fail", model="upscale", count=1))
    job = paying_shop.wait_for_job(paying_shop.run_tool(coffee, "fit", preset="amazon-main"))
    assert job.status == JobStatus.FAILED
    assert "could not be fitted" in (job.reason or "")
    assert paying_shop.settled_balance(200)["reserved"] == 0


def test_a_photo_too_large_to_upscale_four_times_is_refused_and_refunded(
    paying_shop: Shop,
) -> None:
    # Given a 3000 px photo, which at 4x would be 12000 px on its long side
    photo = _png(Image.new("RGB", (3000, 2000), (200, 180, 160)))
    # When it is sent to the 4x upscaler
    job = paying_shop.wait_for_job(paying_shop.run_tool(photo, "upscale", scale=4))
    # Then it is refused before any prediction, with what to do instead, and refunded
    assert job.status == JobStatus.FAILED
    assert "Choose 2x" in (job.reason or "")
    assert paying_shop.settled_balance(200)["reserved"] == 0


def test_a_tool_prediction_that_never_finishes_is_failed_by_the_sweeper_and_refunded(
    paying_shop: Shop, coffee: bytes
) -> None:
    stack = paying_shop.stack
    stack.engine.add_fault(Fault(kind="hang", model="upscale", count=1))
    job_id = paying_shop.run_tool(coffee, "upscale", scale=2)
    store = get_context().store
    assert stack.wait_for(lambda: bool(store.get_job(job_id).tool_prediction_id), 60)
    later = datetime.now(UTC) + timedelta(
        seconds=get_context().settings.prediction_deadline_seconds + 1)
    assert stack.run_sweeper(later)["predictions_timed_out"] >= 1
    job = paying_shop.wait_for_job(job_id)
    assert job.status == JobStatus.FAILED
    # (the cancelled prediction's own webhook may tell the story before the sweeper does)
    assert (job.reason or "").startswith("The photo could not be upscaled")
    assert paying_shop.settled_balance(200)["reserved"] == 0


def test_each_tool_from_the_command_line(
    stack: LocalStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from lightbox_local import cli

    user = "cli-tools"
    common = ("--user", user, "--api", stack.url)
    # Given a user who bought the starter pack with their first command
    assert cli.main(["tool", "remove-background", str(COFFEE), "--out",
                     str(tmp_path / "cutout.png"), "--buy", "starter", *common]) == 0
    assert cli.main(["tool", "upscale", str(COFFEE), "--out", str(tmp_path / "big.png"),
                     "--scale", "4", *common]) == 0
    assert cli.main(["tool", "fit", str(COFFEE), "--out", str(tmp_path / "amazon.jpg"),
                     "--preset", "amazon-main", *common]) == 0
    said = capsys.readouterr().out
    # Then each image is where it was asked for, as each tool promises
    cutout = Image.open(tmp_path / "cutout.png")
    assert (cutout.mode, cutout.size) == ("RGBA", (600, 400))
    assert Image.open(tmp_path / "big.png").size == (2400, 1600)
    fitted = Image.open(tmp_path / "amazon.jpg")
    assert (fitted.format, fitted.size) == ("JPEG", (2000, 2000))
    assert "amazon-main: every rule met" in said
    assert said.count("1 credit spent") == 3
    # and three credits were spent
    assert cli.main(["credits", *common, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["account"]["balance"] == 197
    # and an option the tool does not take is refused before anything is spent
    assert cli.main(["tool", "fit", str(COFFEE), "--out", str(tmp_path / "x.jpg"),
                     "--scale", "2", *common]) == 1
    assert "--scale is for the upscale tool" in capsys.readouterr().err
