"""The tools API over HTTP: what it offers, what it refuses, what an order reserves."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

Shop = Callable[..., httpx.Client]

# Each test needs the local stack (started once for tests/api).
pytestmark = [pytest.mark.slow]


def test_the_catalogue_offers_three_tools_at_one_credit_and_every_preset(shop: Shop) -> None:
    catalogue = shop("tools-reader").get("/api/tools").raise_for_status().json()
    assert [(t["name"], t["price"], t["options"]) for t in catalogue["tools"]] == [
        ("remove-background", 1, []), ("upscale", 1, ["scale"]), ("fit", 1, ["preset"])]
    assert catalogue["scales"] == [2, 4]
    assert {"original", "amazon-main", "etsy"} <= {p["id"] for p in catalogue["presets"]}


@pytest.mark.parametrize(("order", "tool"), [
    ({"tool": "remove-background"}, {"name": "remove-background", "scale": None, "preset": None}),
    ({"tool": "upscale"}, {"name": "upscale", "scale": 2, "preset": None}),
    ({"tool": "upscale", "options": {"scale": 4}}, {"name": "upscale", "scale": 4, "preset": None}),
    ({"tool": "fit", "options": {"preset": "etsy"}}, {"name": "fit", "scale": None,
                                                       "preset": "etsy"}),
])
def test_an_order_reserves_one_credit_with_its_job_and_gives_an_upload_ticket(
    shop: Shop, order: dict, tool: dict
) -> None:
    # Given a shop with the starter pack
    owner = shop(f"tools-{tool['name']}-{tool['scale']}", pack="starter")
    # When it orders the tool
    answer = owner.post("/api/tools", json=order)
    # Then it gets a ticket for one image at one credit, held from its balance
    assert answer.status_code == 201, answer.text
    ticket = answer.json()
    assert (ticket["shots"], ticket["cost"]) == (1, 1)
    assert ticket["fields"]["key"] == f"uploads/{_user(owner)}/{ticket['job_id']}/original"
    account = owner.get("/api/credits").json()
    assert (account["balance"], account["reserved"]) == (199, 1)
    # and the job waits for its photo, as the tool it is, with its options' defaults
    job = owner.get(f"/api/jobs/{ticket['job_id']}").json()
    assert (job["status"], job["kind"], job["tool"], job["result"]) == (
        "awaiting_upload", "tool", tool, None)
    listed = owner.get("/api/jobs").json()["jobs"][0]
    assert (listed["kind"], listed["tool"]) == ("tool", tool["name"])


@pytest.mark.parametrize(("order", "message"), [
    ({"tool": "remove-background", "options": {"scale": 2}},
     "The remove-background tool takes no option scale."),
    ({"tool": "upscale", "options": {"preset": "etsy"}},
     "The upscale tool takes no option preset."),
    ({"tool": "fit"}, "Choose a marketplace preset to fit the product to."),
    ({"tool": "fit", "options": {"preset": "nowhere"}},
     "Choose a marketplace preset to fit the product to."),
])
def test_an_option_the_tool_does_not_take_is_refused_and_nothing_is_reserved(
    shop: Shop, order: dict, message: str
) -> None:
    owner = shop("tools-refused", pack="starter")
    before = owner.get("/api/credits").json()
    answer = owner.post("/api/tools", json=order)
    assert answer.status_code == 422
    assert answer.json()["error"]["message"] == message
    assert owner.get("/api/credits").json() == before


@pytest.mark.parametrize("order", [
    {"tool": "sharpen"}, {"tool": "upscale", "options": {"scale": 3}},
    {"tool": "upscale", "options": {"size": 2}},
])
def test_an_unknown_tool_or_option_value_is_invalid_input(shop: Shop, order: dict) -> None:
    answer = shop("tools-invalid", pack="starter").post("/api/tools", json=order)
    assert answer.status_code == 422


def test_a_shop_without_credits_is_told_what_a_tool_needs(shop: Shop) -> None:
    answer = shop("tools-broke").post("/api/tools", json={"tool": "remove-background"})
    assert answer.status_code == 402
    assert answer.json()["error"]["details"] == {"needed": 1, "available": 0}
    assert shop("tools-broke").get("/api/jobs").json()["jobs"] == []


def test_another_shop_cannot_see_a_tool_job(shop: Shop) -> None:
    owner, other = shop("tools-owner", pack="starter"), shop("tools-other")
    job_id = owner.post("/api/tools", json={"tool": "upscale"}).json()["job_id"]
    refused = other.get(f"/api/jobs/{job_id}")
    assert refused.status_code == 404
    assert refused.json()["error"]["message"] == "No such job."


def _user(client: httpx.Client) -> str:
    import jwt

    token = client.headers["authorization"].removeprefix("Bearer ")
    return jwt.decode(token, options={"verify_signature": False})["sub"]
