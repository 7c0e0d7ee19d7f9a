"""API tests against the local stack, started for this package (package-scoped: one
local stack per process at a time, see tests/browser)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from lightbox_local.stack import LocalStack, StackOptions


@pytest.fixture(scope="package")
def stack() -> Iterator[LocalStack]:
    local = LocalStack(StackOptions(log_level="ERROR")).start()
    try:
        yield local
    finally:
        local.stop()


def _signed_in(stack: LocalStack, user: str, pack: str | None) -> httpx.Client:
    answer = httpx.post(f"{stack.url}/local/sign-in", json={"user": user}).raise_for_status()
    client = httpx.Client(base_url=stack.url, timeout=30,
                          headers={"authorization": f"Bearer {answer.json()['token']}"})
    if pack:
        bought = client.post("/api/checkout/local", json={"pack_id": pack}).raise_for_status()
        assert bought.json()["outcome"] == "credited"
    return client


@pytest.fixture
def shop(stack: LocalStack) -> Iterator[Callable[..., httpx.Client]]:
    """shop(user, pack=None): an HTTP client signed in as `user`, with `pack` bought
    through the local checkout."""
    clients: list[httpx.Client] = []

    def make(user: str, pack: str | None = None) -> httpx.Client:
        clients.append(_signed_in(stack, user, pack))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


@pytest.fixture(scope="package")
def token(stack: LocalStack) -> str:
    """A signed-in shop with credits, so that uploads get past the 402."""
    client = _signed_in(stack, "schema-shop", "agency")
    client.close()
    return client.headers["authorization"].removeprefix("Bearer ")
