"""The avatar picker end to end, on a phone: filter the catalogue, pick a person, shoot
a "with a model" scene with them."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from lightbox.domain.avatars import load_avatar_catalogue
from lightbox.models import PortraitStatus
from lightbox.services import avatars
from lightbox.services.context import get_context
from lightbox_local.stack import LocalStack
from tests.browser.conftest import sign_in
from tests.browser.test_web_app import COFFEE, PHONE

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: c002 in catalog/avatars.yaml: the first catalogue avatar aged 55–64.
NOAH = "c002"
#: The wizard's choices, by the labels the page shows.
OWN = {"Age": "25–34", "Gender presentation": "Feminine", "Skin tone": "Medium",
       "Hair": "Long black", "Build": "Average", "Style": "Casual", "Setting": "Studio"}


def _portrait_made(avatar_id: str) -> bool:
    portrait = avatars.avatar_store(get_context()).catalogue_portraits().get(avatar_id)
    return portrait is not None and portrait.status.terminal


def test_a_shop_filters_the_avatars_picks_one_and_shoots_with_a_model(
    stack: LocalStack, new_page: Callable[..., Page]
) -> None:
    # Given one catalogue portrait made by the operator's batch (the rest are not made)
    avatars.generate_catalogue(get_context(), only=[NOAH])
    assert stack.wait_for(lambda: _portrait_made(NOAH), 60), "Noah's portrait was not made"
    assert (avatars.avatar_store(get_context()).catalogue_portraits()[NOAH].status
            == PortraitStatus.READY)
    # and a shop owner on a phone, signed in, who buys the default pack
    page = new_page(**PHONE)
    sign_in(page, stack, prefix="browser-avatar")
    page.get_by_role("button", name="Buy credits").click()
    page.get_by_role("button", name="Pay").click()
    expect(page).to_have_url(f"{stack.url}/?checkout=done")
    expect(page.locator("#balance")).to_have_text("200", timeout=15_000)

    # When they choose the photo and a "with a model" scene
    page.get_by_label("Choose a photo").set_input_files(COFFEE)
    scene = page.get_by_label("Held by a person")
    expect(scene).to_have_accessible_name(re.compile("With a model: needs an avatar"))
    scene.check()
    # Then the picker appears, and the cost counts the "with a model" price
    picker = page.get_by_role("group", name="Who is in the “with a model” shots")
    expect(picker).to_be_visible()
    expect(page.locator("#cost")).to_have_text(
        "1 shot for 2 credits (1 with a model: 2 credits). You have 200.")
    expect(page.locator("#avatars li")).to_have_count(12)
    pages = -(-len(load_avatar_catalogue().avatars) // 12)
    expect(page.locator("#avatar-page")).to_have_text(f"Page 1 of {pages}")

    # When they describe their own model, ask for one candidate and keep it
    page.get_by_text("Create your own", exact=True).focus()  # by keyboard
    page.keyboard.press("Enter")
    wizard = picker.get_by_role("group", name="Describe your model")
    for attribute, value in OWN.items():
        wizard.get_by_label(attribute, exact=True).select_option(label=value)
    wizard.get_by_label("Name (optional)").fill("Ada")
    wizard.get_by_label("Candidate portraits").fill("1")
    expect(page.locator("#wizard-cost")).to_contain_text("1 candidate portrait for 1 credit")
    wizard.get_by_role("button", name="Make the portraits").click()
    keep = wizard.get_by_role("button", name="Keep portrait 1 of Ada")
    expect(keep).to_be_enabled()
    expect(wizard.get_by_role("img", name="Ada, portrait 1")).to_have_js_property("complete", True)
    keep.click()
    # Then Ada is theirs, chosen, first in the picker, and her portrait cost one credit
    expect(page.locator("#avatar-chosen")).to_have_text("Chosen: Ada (your own).")
    expect(page.get_by_role("radio", name=re.compile(r"^Ada: age 25–34"))).to_be_checked()
    expect(page.locator("#balance")).to_have_text("199")

    # When they filter the catalogue by age
    filters = picker.get_by_role("group", name="Filter the avatars")
    filters.get_by_label("Age").select_option(label="55–64")
    # Then only people of that age are shown, each described in words, and only the
    # one with a portrait can be chosen
    aged = [a for a in load_avatar_catalogue().avatars if a.attributes.age_range == "55-64"]
    expect(page.locator("#avatar-count")).to_have_text(
        f"{len(aged)} avatars match, 1 ready to use.")
    described = page.locator("#avatars img, #avatars [role=img]")
    alts = described.evaluate_all(
        "(all) => all.map((e) => e.getAttribute('alt') || e.getAttribute('aria-label'))")
    assert alts and all("age 55–64" in alt for alt in alts), alts
    assert any("Portrait not made yet" in alt for alt in alts), alts
    noah = page.get_by_role("radio", name=re.compile(r"^Noah: age 55–64"))
    expect(noah).to_be_enabled()
    expect(page.locator("#avatars input:disabled").first).to_be_visible()
    portrait = page.get_by_role("img", name=re.compile(r"^Noah: "))
    portrait.scroll_into_view_if_needed()  # portraits load lazily, as they come into view
    expect(portrait).to_have_js_property("complete", True)
    assert portrait.evaluate("(image) => image.naturalWidth") > 0
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")

    # When they pick Noah and start the shoot
    noah.check()
    expect(page.locator("#avatar-chosen")).to_have_text("Chosen: Noah (Lightbox’s).")
    page.get_by_role("button", name="Start the shoot").click()

    # Then the job reaches done with Noah in it, and costs the "with a model" price
    expect(page).to_have_url(re.compile(r"/jobs/[A-Za-z0-9_-]+$"))
    job_id = page.url.rsplit("/", 1)[1]
    expect(page.locator(".shot[data-phase=done]")).to_have_count(1, timeout=120_000)
    expect(page.locator("#job-status")).to_have_text("Done. 1 of 1 shots done.")
    expect(page.locator("#balance")).to_have_text("197")
    job = get_context().store.get_job(job_id)
    assert job is not None and job.avatar_id == NOAH
    # and the job page shows who is in the shots: Noah's portrait as ordered
    expect(page.locator("#job-avatar-name")).to_have_text(
        'With Noah, in every "with model" shot')
    shown = page.get_by_role("img", name="Portrait of Noah")
    expect(shown).to_have_js_property("complete", True)
    assert shown.evaluate("(image) => image.naturalWidth") > 0
