"""The Tools page end to end: pick a tool, choose a photo, watch the image being made,
download it; and a failed tool shows why and gives the credit back."""

from __future__ import annotations

import io
import re
from collections.abc import Callable

import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from lightbox_local.stack import LocalStack
from tests.browser.conftest import ROOT, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]

COFFEE = ROOT / "infra" / "lightbox_local" / "samples" / "skimage-coffee.png"


def _with_credits(page: Page, stack: LocalStack) -> None:
    """Sign in and buy the starter pack (through the local checkout's API)."""
    sign_in(page, stack, prefix="browser-tools")
    token = page.evaluate("() => localStorage.getItem('lightbox.token')")
    bought = page.request.post(f"{stack.url}/api/checkout/local", data={"pack_id": "starter"},
                               headers={"authorization": f"Bearer {token}"})
    assert bought.ok


def test_a_shop_fits_a_photo_for_amazon_and_downloads_it(
    stack: LocalStack, new_page: Callable[..., Page]
) -> None:
    # Given a shop owner with 200 credits, on the Tools page (from the header's link)
    page = new_page(viewport={"width": 1100, "height": 800})
    _with_credits(page, stack)
    page.get_by_role("link", name="Tools").click()
    expect(page).to_have_url(f"{stack.url}/tools")
    expect(page.locator("#balance")).to_have_text("200")

    # When they choose "fit for a marketplace", Amazon, and the photo
    page.get_by_label("Fit for a marketplace").check()
    expect(page.get_by_label("Marketplace", exact=True)).to_be_visible()
    expect(page.get_by_label("How much larger")).to_be_hidden()
    page.get_by_label("Marketplace", exact=True).select_option("amazon-main")
    page.get_by_label("Choose a photo").set_input_files(COFFEE)
    expect(page.locator("#chosen")).to_contain_text("skimage-coffee.png")
    expect(page.locator("#cost")).to_have_text("Fit for a marketplace: 1 credit. You have 200.")
    page.get_by_role("button", name="Run the tool").click()

    # Then the job page shows the tool at work, then its image and compliance report
    expect(page).to_have_url(re.compile(r"/jobs/[A-Za-z0-9_-]+$"))
    expect(page.get_by_role("heading", name="Fit for a marketplace")).to_be_visible()
    expect(page.locator("#job-status")).to_have_text("Done.", timeout=180_000)
    image = page.get_by_role("img", name="Fit for a marketplace: the image Lightbox made")
    expect(image).to_have_js_property("complete", True)
    assert image.evaluate("(image) => image.naturalWidth") == 2000
    expect(page.locator("#tool-size")).to_have_text("2000 × 2000 px")
    expect(page.locator("#compliance-title")).to_have_text(
        "Compliance with amazon-main: every rule met.")
    expect(page.locator(".rule-met").first).to_be_visible()
    expect(page.get_by_role("button", name="Download all (zip)")).to_be_hidden()
    expect(page.locator("#balance")).to_have_text("199")

    # When they download it
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the Fit for a marketplace image").click()
    # Then the file is the preset's JPEG, named after the job and the preset
    assert download.value.suggested_filename.endswith("-fit-amazon-main.jpg")
    saved = Image.open(io.BytesIO(download.value.path().read_bytes()))
    assert (saved.format, saved.size) == ("JPEG", (2000, 2000))

    # and the home page lists it among their jobs
    page.get_by_role("link", name="← Tools").click()
    expect(page).to_have_url(f"{stack.url}/tools")
    page.get_by_role("link", name="New shoot", exact=True).click()
    expect(page.locator("#jobs")).to_contain_text("fit (tool), done")


def test_a_tool_whose_model_fails_says_so_and_gives_the_credit_back(
    stack: LocalStack, new_page: Callable[..., Page]
) -> None:
    from lightbox_local.engine.server import Fault

    page = new_page()
    _with_credits(page, stack)
    page.goto(f"{stack.url}/tools")
    expect(page.locator("#balance")).to_have_text("200")
    stack.engine.add_fault(Fault(kind="fail", model="cutout", count=1))
    try:
        # When they remove the background of the photo, and the model fails
        page.get_by_label("Remove background").check()
        page.get_by_label("Choose a photo").set_input_files(COFFEE)
        page.get_by_role("button", name="Run the tool").click()
        # Then the page says the image could not be made, and why
        expect(page.locator("#job-status")).to_have_text(
            "The image could not be made; your credit was refunded.", timeout=180_000)
        expect(page.locator("#job-reason")).to_contain_text("The background could not be removed")
        expect(page.locator("#tool-result")).to_be_hidden()
        # and the credit is back
        expect(page.locator("#balance")).to_have_text("200")
    finally:
        stack.engine.faults.clear()
