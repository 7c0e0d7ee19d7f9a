"""The web app on par with the CLI: marketplace presets chosen on the upload page, and
per shot its compliance per preset, the check's findings, a download per preset, the
manifest, the contact sheet and what the shoot cost."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import Page, expect

from lightbox_local.stack import LocalStack
from tests.browser.conftest import ROOT, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]

COFFEE = ROOT / "infra" / "lightbox_local" / "samples" / "skimage-coffee.png"


def test_a_shop_chooses_presets_and_reads_each_shots_compliance_report(
    stack: LocalStack, new_page: Callable[..., Page]
) -> None:
    # Given a shop owner with credits on the new-shoot page
    page = new_page(viewport={"width": 1100, "height": 900})
    sign_in(page, stack, prefix="browser-presets")
    token = page.evaluate("() => localStorage.getItem('lightbox.token')")
    assert page.request.post(f"{stack.url}/api/checkout/local", data={"pack_id": "starter"},
                             headers={"authorization": f"Bearer {token}"}).ok
    page.reload()
    # Then every preset is offered, each with a line on what it is for
    presets = httpx.get(f"{stack.url}/api/presets",
                        headers={"authorization": f"Bearer {token}"}).json()
    expect(page.locator("#presets li")).to_have_count(len(presets))
    amazon = next(p for p in presets if p["id"] == "amazon-main")
    expect(page.locator("#presets")).to_contain_text(amazon["purpose"])
    expect(page.get_by_label(re.compile("Studio original"))).to_be_checked()

    # When they shoot one scene for the studio original and Amazon's main image
    page.get_by_label("Choose a photo").set_input_files(COFFEE)
    page.get_by_label("White studio").check()
    page.get_by_label(re.compile("Amazon main image")).check()
    page.get_by_role("button", name="Start the shoot").click()
    expect(page).to_have_url(re.compile(r"/jobs/[A-Za-z0-9_-]+$"))
    expect(page.locator(".shot[data-phase=done]")).to_have_count(1, timeout=180_000)

    # Then the shot's details give the check's findings and each preset's report
    details = page.locator(".shot-details")
    details.locator("summary").click()
    expect(details.locator(".check")).to_contain_text("Product check passed")
    expect(details.locator(".compliance-verdict")).to_have_count(2)
    expect(details).to_contain_text(re.compile(r"amazon-main: (every rule met|\d+ rules? not met)"))
    expect(details.locator(".rule").first).to_be_visible()
    expect(details.get_by_role("link", name=re.compile("for amazon-main$"))).to_have_attribute(
        "href", re.compile("amazon-main"))
    expect(details.get_by_role("link", name=re.compile("for original$"))).to_be_visible()
    # and the shoot's manifest, contact sheet and costs are there once it is done
    expect(page.locator("#job-status")).to_contain_text("Done.", timeout=60_000)
    expect(page.get_by_role("link", name="Manifest (JSON)")).to_be_visible()
    expect(page.get_by_role("link", name="Contact sheet")).to_be_visible()
    expect(page.locator("#job-costs")).to_contain_text("Cost to make: Replicate $")
    manifest = httpx.get(page.get_by_role("link", name="Manifest (JSON)").get_attribute("href"))
    assert manifest.json()["presets"] == ["original", "amazon-main"]
