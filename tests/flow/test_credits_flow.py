"""Credits end to end, as a shop owner meets them on the command line.

A new user cannot shoot (the API's 402, with what is needed and what they have);
after a local purchase of the starter pack, through the signed Stripe webhook, the
same command succeeds and the balance is 200 minus the shots delivered.
"""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from lightbox_local import cli
from lightbox_local.stack import LocalStack

from .conftest import COFFEE, Shop

pytestmark = pytest.mark.flow


def lightbox(*argv: str) -> int:
    return cli.main(list(argv))


def test_a_new_user_is_refused_then_buys_and_shoots(
    stack: LocalStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    user = "cli-newcomer"
    shoot = ("shoot", str(COFFEE), "--user", user, "--api", stack.url,
             "--scenes", "white-studio,marble-counter", "--out", str(tmp_path / "shots"))

    # Given a user who never bought credits, when they shoot, then a clear refusal
    assert lightbox(*shoot) == 3
    refusal = capsys.readouterr().err
    assert "2" in refusal and "0" in refusal, refusal
    assert f"lightbox buy --user {user}" in refusal
    assert not (tmp_path / "shots").exists()

    # When they buy the starter pack locally (the signed checkout.session.completed)
    assert lightbox("buy", "--user", user, "--api", stack.url) == 0
    assert "balance 0 -> 200 credits" in capsys.readouterr().out

    # Then the same command shoots
    assert lightbox(*shoot) == 0
    summary = capsys.readouterr().out
    assert "shots delivered" in summary

    # And the balance is 200 minus the shots delivered, every movement in the ledger
    assert lightbox("credits", "--user", user, "--api", stack.url, "--json") == 0
    books = json.loads(capsys.readouterr().out)
    delivered = len(list((tmp_path / "shots").glob("*-original.jpg")))
    assert delivered >= 1
    assert books["account"]["balance"] == 200 - delivered
    assert books["account"].get("reserved", 0) == 0
    kinds = [entry["kind"] for entry in books["ledger"]["entries"]]
    assert kinds.count("purchase") == 1


def test_twenty_concurrent_uploads_with_credits_for_five_reserve_exactly_five(
    paying_shop: Shop,
) -> None:
    # Given 200 credits and twenty orders of 40 shots each
    def order(_: int) -> httpx.Response:
        return paying_shop.order(["white-studio"], variants=40)

    # When all twenty are placed at once through the API
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(order, range(20)))

    # Then five are accepted and fifteen refused with what they need and what is left
    codes = Counter(answer.status_code for answer in answers)
    assert codes == {201: 5, 402: 15}
    for refusal in (a for a in answers if a.status_code == 402):
        details = refusal.json()["error"]["details"]
        assert details["needed"] == 40 and details["available"] < 40
    account = paying_shop.balance()
    assert (account["balance"], account["reserved"]) == (0, 200)
