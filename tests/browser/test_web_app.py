"""The web app end to end: sign in, buy credits, upload, watch the shots, download them."""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from lightbox_local.stack import LocalStack
from tests.browser.conftest import ROOT, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]

COFFEE = ROOT / "infra" / "lightbox_local" / "samples" / "skimage-coffee.png"
# The job page's picture; `make screenshot` writes it to docs/ for the README.
SCREENSHOT = Path(os.environ.get("LIGHTBOX_SCREENSHOT", ROOT / "out" / "job-page.png"))
SCENES = ["White studio", "Lifestyle kitchen", "Flat lay on linen"]
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}

# Every data-phase a shot card takes, in order, as the page shows it.
RECORD_PHASES = """() => {
  window.seenPhases = new Set();
  new MutationObserver((changes) => changes.forEach((change) => {
    if (change.target.dataset && change.target.dataset.phase)
      window.seenPhases.add(change.target.dataset.phase);
  })).observe(document.body, {subtree: true, attributes: true, attributeFilter: ["data-phase"]});
}"""


def test_a_shop_buys_credits_shoots_three_scenes_and_downloads_the_zip(
    stack: LocalStack, new_page: Callable[..., Page]
) -> None:
    # Given a shop owner signed in with no credits
    page = new_page(viewport={"width": 1100, "height": 760})
    sign_in(page, stack)
    expect(page.locator("#balance")).to_have_text("0")

    # When they buy the default pack through the local checkout
    page.get_by_role("button", name="Buy credits").click()
    expect(page).to_have_url(re.compile(r"/checkout/local\?pack=starter$"))
    page.get_by_role("button", name="Pay").click()
    # Then the header shows the new balance once the webhook has credited it
    expect(page).to_have_url(f"{stack.url}/?checkout=done")
    expect(page.locator("#balance")).to_have_text("200")
    expect(page.locator("#checkout-notice")).to_contain_text("You now have 200 credits")

    # When they pick the photo and three scenes (one by keyboard) and start
    page.get_by_label("Choose a photo").set_input_files(COFFEE)
    expect(page.locator("#chosen")).to_contain_text("skimage-coffee.png")
    page.get_by_label(SCENES[0]).check()
    page.get_by_label(SCENES[1]).check()
    page.get_by_label(SCENES[2]).focus()
    page.keyboard.press("Space")
    expect(page.locator("#cost")).to_have_text("3 shots for 3 credits. You have 200.")
    page.get_by_role("button", name="Start the shoot").click()

    # Then the job page shows every shot's status and then every finished shot
    expect(page).to_have_url(re.compile(r"/jobs/[A-Za-z0-9_-]+$"))
    job_id = page.url.rsplit("/", 1)[1]
    page.evaluate(RECORD_PHASES)
    expect(page.locator(".shot")).to_have_count(3)
    expect(page.locator(".shot[data-phase=done]")).to_have_count(3, timeout=180_000)
    expect(page.locator("#job-status")).to_have_text("Done. 3 of 3 shots done.")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.shot img')]"
        ".every((image) => image.complete && image.naturalWidth > 0)")
    seen = set(page.evaluate("() => [...window.seenPhases]"))
    assert seen & {"queued", "composing", "checking"}, f"no progress was shown: {seen}"
    for scene in SCENES:
        expect(page.get_by_role("img", name=re.compile(f"^{scene}, variant 1"))).to_be_visible()
    expect(page.locator("#balance")).to_have_text("197")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOT, full_page=True)

    # and one shot opens full size
    page.get_by_role("button", name=f"View {SCENES[0]}, variant 1 full size").click()
    viewer = page.get_by_role("dialog")
    expect(viewer.get_by_role("img")).to_have_js_property("complete", True)
    assert viewer.get_by_role("img").evaluate("(image) => image.naturalWidth") >= 1000
    viewer.get_by_role("button", name="Close").click()
    expect(viewer).to_be_hidden()

    # When they download all the shots
    with page.expect_download() as download:
        page.get_by_role("button", name="Download all (zip)").click()
    # Then the zip holds the three images
    data = download.value.path().read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        images = [Image.open(io.BytesIO(archive.read(name))) for name in names]
    assert len(names) == 3
    assert all(image.width >= 1000 and image.format in ("PNG", "JPEG") for image in images)
    scenes = {re.fullmatch(r"\d{3}-([a-z-]+)-v1-original\.(png|jpg)", n)[1] for n in names}
    assert scenes == {"white-studio", "lifestyle-kitchen", "flat-lay"}

    # Given a second shop owner, on a phone
    other = new_page(**PHONE)
    sign_in(other, stack, prefix="browser-other")
    # (every scene of the catalogue is offered, as the API lists them)
    scene_count = len(httpx.get(f"{stack.url}/api/scenes").json())
    expect(other.locator("#scenes li")).to_have_count(scene_count)
    assert other.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    # When they open the first owner's job page
    other.goto(f"{stack.url}/jobs/{job_id}")
    # Then they are told there is no such shoot, and see none of its shots
    expect(other.get_by_role("heading", name="No such shoot")).to_be_visible()
    expect(other.locator(".shot")).to_have_count(0)
    token = other.evaluate("() => localStorage.getItem('lightbox.token')")
    for method, path in (("GET", f"/api/jobs/{job_id}"), ("POST", f"/api/jobs/{job_id}/zip")):
        response = other.request.fetch(f"{stack.url}{path}", method=method,
                                       headers={"authorization": f"Bearer {token}"})
        assert response.status == 404
        assert response.json()["error"]["code"] == "not_found"


def test_a_job_page_without_signing_in_asks_to_sign_in(
    stack: LocalStack, new_page: Callable[..., Page]
) -> None:
    # Given nobody signed in
    page = new_page()
    # When the job page is opened
    page.goto(f"{stack.url}/jobs/some-job")
    # Then the sign-in page comes first, and leads back to the job page
    expect(page).to_have_url(f"{stack.url}/sign-in?next=%2Fjobs%2Fsome-job")
    page.get_by_label("User name").fill("browser-late")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{stack.url}/jobs/some-job")
    expect(page.get_by_role("heading", name="No such shoot")).to_be_visible()


def test_a_shot_that_fails_its_checks_shows_why_and_costs_nothing(
    stack: LocalStack, new_page: Callable[..., Page]
) -> None:
    from lightbox_local.engine.server import Fault

    # Given a shop with credits, and a composing model that changes the product's colour
    # on every try
    page = new_page()
    sign_in(page, stack, prefix="browser-unlucky")
    token = page.evaluate("() => localStorage.getItem('lightbox.token')")
    bought = page.request.post(f"{stack.url}/api/checkout/local", data={"pack_id": "starter"},
                               headers={"authorization": f"Bearer {token}"})
    assert bought.ok
    page.reload()
    expect(page.locator("#balance")).to_have_text("200")
    stack.engine.add_fault(Fault(kind="recolor", model="compose", count=3))
    try:
        # When they shoot one scene
        page.get_by_label("Choose a photo").set_input_files(COFFEE)
        page.get_by_label(SCENES[0]).check()
        page.get_by_role("button", name="Start the shoot").click()
        # Then the shot ends failed, with the check's reason, and the job says so
        shot = page.locator(".shot")
        expect(shot).to_have_attribute("data-phase", "failed", timeout=180_000)
        expect(shot.locator(".reason")).to_contain_text("colour")
        expect(page.locator("#job-status")).to_have_text("This shoot failed. 0 of 1 shots done.")
        expect(page.get_by_role("button", name="Download all (zip)")).to_be_disabled()
        # and its credit is back
        expect(page.locator("#balance")).to_have_text("200")
    finally:
        stack.engine.faults.clear()
