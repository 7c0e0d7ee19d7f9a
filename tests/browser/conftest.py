"""Browser tests: Playwright drives Debian's Chromium (headless) against a local stack
started for this package, the way a shop owner uses the web app.

The stack is package-scoped, not session-scoped: one local stack per process at a
time (it sets the process's environment), so it is stopped before the flow tests
start theirs.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from lightbox_local.stack import LocalStack, StackOptions

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
_users = itertools.count(1)


#: Assertions wait for what the page shows (they pass as soon as it does). What the
#: page waits for here spans webhooks, function cold starts and the pipeline on a
#: shared 2-core machine, so give them up to 30 s rather than Playwright's 5 s.
expect.set_options(timeout=30_000)


@pytest.fixture(scope="package")
def stack() -> Iterator[LocalStack]:
    local = LocalStack(StackOptions(log_level="WARNING")).start()
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make system-deps` (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser: Browser) -> Iterator[Callable[..., Page]]:
    """Pages in fresh browser contexts (separate storage, so separate users).

    Whatever a test does, the pages' security policy must never have to refuse
    anything the app itself loads: a refusal is a broken page in production.
    """
    contexts: list[BrowserContext] = []
    refused: list[str] = []

    def make(**options: object) -> Page:
        context = browser.new_context(**options)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.on("console", lambda message: refused.append(message.text)
                if "Content Security Policy" in message.text else None)
        return page

    yield make
    for context in contexts:
        context.close()
    assert not refused, refused


def sign_in(page: Page, stack: LocalStack, prefix: str = "browser-shop") -> str:
    """Open the app, get sent to the sign-in page, sign in there; returns the user."""
    user = f"{prefix}-{next(_users)}"
    page.goto(f"{stack.url}/")
    expect(page).to_have_url(f"{stack.url}/sign-in?next=%2F")
    page.get_by_label("User name").fill(user)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{stack.url}/")
    expect(page.locator("#who")).to_have_text(f"{user}@example.test")
    return user
