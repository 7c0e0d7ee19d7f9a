"""Flow tests: the real state machine, run by moto, calling the real handlers, against the
local engine, all started once for this package (`lightbox dev` in-process). The stack
is stopped when the package's tests end: it serves moto's in-process backends, which the
integration tests' `mock_aws` resets, so it must not outlive its tests.

Every test works as its own shop user, so tests share the stack but not their data.
Waiting is event-driven: `Shop.wait_for_job` re-checks after every function invocation
ends, and gives up after a generous timeout (a failure, never a pause for timing).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from lightbox.models import Job
from lightbox.services.context import get_context
from lightbox.services.payments import build_signed_checkout_event
from lightbox_local.stack import LocalStack, StackOptions

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT.parent / "shared" / "samples" / "photos"
COFFEE = ROOT / "infra" / "lightbox_local" / "samples" / "skimage-coffee.png"
TERMINAL = {"done", "partly_done", "failed"}
_users = itertools.count(1)


@pytest.fixture(scope="package")
def stack() -> Iterator[LocalStack]:
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    local = LocalStack(StackOptions(log_level="WARNING")).start()
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture(autouse=True)
def engine_defaults(stack: LocalStack) -> Iterator[None]:
    """Each test starts with a well-behaved engine and leaves no fault behind."""
    stack.engine.configure(latency=0.0, jitter=0.0, failure_rate=0.0, duplicate_rate=0.0,
                           lost_webhook_rate=0.0, mode="real")
    stack.engine.faults.clear()
    yield
    stack.engine.faults.clear()


@dataclass
class Shop:
    """One shop user driving the local stack over HTTP, as the CLI and browser do."""

    stack: LocalStack
    user: str
    http: httpx.Client

    def buy(self, pack: str = "starter") -> httpx.Response:
        body, signature = build_signed_checkout_event(
            self.user, pack, secret=self.stack.environment["STRIPE_WEBHOOK_SECRET"])
        return self.http.post(f"{self.stack.url}/webhooks/stripe", content=body,
                              headers={"stripe-signature": signature,
                                       "content-type": "application/json"})

    def balance(self) -> dict[str, Any]:
        return self.http.get(f"{self.stack.url}/api/credits").raise_for_status().json()

    def order(self, scenes: list[str], *, variants: int = 1,
              presets: list[str] | None = None) -> httpx.Response:
        return self.http.post(f"{self.stack.url}/api/uploads", json={
            "scenes": scenes, "variants": variants, "presets": presets or ["original"]})

    def upload(self, ticket: dict[str, Any], data: bytes,
               content_type: str = "image/png") -> httpx.Response:
        return httpx.post(ticket["url"], data={**ticket["fields"], "Content-Type": content_type},
                          files={"file": ("photo", data, content_type)}, timeout=60)

    def shoot(self, data: bytes, scenes: list[str], **kwargs: Any) -> str:
        response = self.order(scenes, **kwargs)
        assert response.status_code == 201, response.text
        ticket = response.json()
        assert self.upload(ticket, data).status_code == 201
        return ticket["job_id"]

    def order_tool(self, tool: str, **options: Any) -> httpx.Response:
        return self.http.post(f"{self.stack.url}/api/tools",
                              json={"tool": tool, "options": options})

    def run_tool(self, data: bytes, tool: str, **options: Any) -> str:
        """Order a single-image tool and upload its photo; the job's id."""
        response = self.order_tool(tool, **options)
        assert response.status_code == 201, response.text
        ticket = response.json()
        assert self.upload(ticket, data).status_code == 201
        return ticket["job_id"]

    def settled_balance(self, expected: int, timeout: float = 30.0) -> dict[str, Any]:
        """The account once its balance is `expected` (or as it is at the timeout).

        A job refused at intake is marked failed first and its credits released just
        after (the other order could refund a job that goes on), so a test reading the
        books right after the status can be a moment early.
        """
        self.stack.wait_for(lambda: self.balance()["balance"] == expected, timeout)
        return self.balance()

    def job(self, job_id: str) -> dict[str, Any]:
        return self.http.get(f"{self.stack.url}/api/jobs/{job_id}").raise_for_status().json()

    def wait_for_job(self, job_id: str, timeout: float = 120.0) -> Job:
        store = get_context().store

        def finished() -> bool:
            job = store.get_job(job_id)
            return job is not None and job.status.terminal

        assert self.stack.wait_for(finished, timeout), f"job {job_id} did not finish"
        job = store.get_job(job_id)
        assert job is not None
        return job


@contextmanager
def signed_in(stack: LocalStack, user: str) -> Iterator[Shop]:
    """A shop user signed in through the local issuer, as the web app and CLI do."""
    token = httpx.post(f"{stack.url}/local/sign-in", json={"user": user}).json()["token"]
    with httpx.Client(headers={"authorization": f"Bearer {token}"}, timeout=60) as http:
        yield Shop(stack=stack, user=user, http=http)


@pytest.fixture
def shop(stack: LocalStack) -> Iterator[Shop]:
    with signed_in(stack, f"flow-shop-{next(_users)}") as signed:
        yield signed


@pytest.fixture
def paying_shop(shop: Shop) -> Shop:
    assert shop.buy().status_code == 200
    return shop


@pytest.fixture(scope="session")
def coffee() -> bytes:
    return COFFEE.read_bytes()
