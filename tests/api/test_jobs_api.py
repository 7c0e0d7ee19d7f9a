"""The jobs API over HTTP: pages of one's own jobs, zips, and nothing of anyone else's."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

Shop = Callable[..., httpx.Client]

# Each test needs the local stack (started once for tests/api).
pytestmark = [pytest.mark.slow]


def test_jobs_come_a_page_at_a_time_and_a_cursor_only_works_for_its_user(shop: Shop) -> None:
    # Given a shop with three jobs, and another shop
    owner, other = shop("pages-shop", pack="starter"), shop("pages-other")
    made = {owner.post("/api/uploads", json={"scenes": ["white-studio"]}).json()["job_id"]
            for _ in range(3)}
    # When it lists them two at a time
    first = owner.get("/api/jobs", params={"limit": 2}).json()
    second = owner.get("/api/jobs", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    # Then the two pages hold the three jobs, once each
    listed = [j["job_id"] for j in first["jobs"] + second["jobs"]]
    assert sorted(listed) == sorted(made)
    # and the cursor is refused to the other shop, as is a made-up one
    for who, cursor in ((other, first["next_cursor"]), (owner, "not a cursor"),
                        (owner, '{"pk": {"N": "1"}}')):
        refused = who.get("/api/jobs", params={"cursor": cursor})
        assert refused.status_code == 422
        assert refused.json()["error"]["message"] == "That page cursor is not valid."


def test_a_job_with_no_finished_shots_has_no_zip_and_others_cannot_ask(shop: Shop) -> None:
    # Given a job still waiting for its photo
    owner, other = shop("zip-shop", pack="starter"), shop("zip-other")
    job_id = owner.post("/api/uploads", json={"scenes": ["white-studio"]}).json()["job_id"]
    # When its owner asks for the zip, and then the other shop does
    own = owner.post(f"/api/jobs/{job_id}/zip")
    theirs = other.post(f"/api/jobs/{job_id}/zip")
    # Then the owner is told there is nothing yet, and the other gets a plain 404
    assert own.status_code == 404
    assert own.json()["error"]["message"] == "This job has no finished shots yet."
    assert theirs.status_code == 404
    assert theirs.json()["error"]["message"] == "No such job."
