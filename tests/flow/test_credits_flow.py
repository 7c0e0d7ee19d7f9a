"""Credits end to end, as a shop owner meets them on the command line.

A new user cannot shoot (the API's 402, with what is needed and what they have);
after a local purchase of the starter pack, through the signed Stripe webhook, the
same command succeeds and the balance is 200 minus the shots delivered.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lightbox_local.stack import LocalStack

from lightbox import cli

from .conftest import COFFEE

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
