"""What the `lightbox` commands share: errors, the API option, signing in, the stack."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

#: A job in one of these states is finished.
TERMINAL = {"done", "partly_done", "failed"}


class CliError(Exception):
    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def add_api_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api", default=os.environ.get("LIGHTBOX_API"),
                        help="URL of a running `lightbox dev` (default: http://127.0.0.1:"
                             "$LIGHTBOX_PORT, else a stack started for this command)")


def quiet_logs(verbose: bool) -> None:
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "INFO" if verbose else "WARNING")


def start_stack(port: int = 0, *, sweep_every: float | None = 30.0, verbose: bool = False,
                 engine: dict[str, Any] | None = None) -> Any:
    quiet_logs(verbose)
    from lightbox_local.stack import LocalStack, StackOptions

    level = "INFO" if verbose else "WARNING"
    return LocalStack(StackOptions(port=port, sweep_every=sweep_every, log_level=level,
                                   engine=engine or {})).start()


class Session:
    """A signed-in conversation with a Lightbox API (local stack)."""

    def __init__(self, api: str, user: str) -> None:
        self.api = api.rstrip("/")
        self.http = httpx.Client(timeout=httpx.Timeout(60.0, connect=5.0))
        response = self.http.post(f"{self.api}/local/sign-in", json={"user": user})
        if response.status_code != 200:
            raise CliError(f"could not sign in at {self.api}: {response.status_code} {response.text}")
        self.token = response.json()["token"]
        self.http.headers["authorization"] = f"Bearer {self.token}"

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(f"{self.api}{path}", params=params or None)

    def post(self, path: str, payload: Any) -> httpx.Response:
        return self.http.post(f"{self.api}{path}", json=payload)


@contextmanager
def api_or_local_stack(
    explicit: str | None,
    *,
    why: str = "moto, the local engine, the functions",
    sweep_every: float | None = 30.0,
) -> Iterator[tuple[str, Any]]:
    """The API to talk to: a running `lightbox dev`, else a stack started (and stopped)
    for this command. Yields (url, the stack or None)."""
    api = running_api(explicit)
    if api is not None:
        yield api, None
        return
    print(f"Starting the local stack ({why})...", flush=True)
    stack = start_stack(sweep_every=sweep_every)
    try:
        yield stack.url, stack
    finally:
        stack.stop()


def running_api(explicit: str | None) -> str | None:
    if explicit:
        return explicit
    port = os.environ.get("LIGHTBOX_PORT")
    if port:
        url = f"http://127.0.0.1:{port}"
        try:
            httpx.get(f"{url}/healthz", timeout=1.0)
            return url
        except httpx.HTTPError:
            return None
    return None


def buy(api: str, user: str, pack: str) -> None:
    """A local purchase: the signed checkout.session.completed Stripe would send."""
    from lightbox.services.payments import build_signed_checkout_event
    from lightbox_local.stack import LOCAL_STRIPE_WEBHOOK_SECRET

    secret = os.environ.get("STRIPE_WEBHOOK_SECRET", LOCAL_STRIPE_WEBHOOK_SECRET)
    session = Session(api, user)  # signing in creates the user locally
    before = session.get("/api/credits").json()["balance"]
    body, signature = build_signed_checkout_event(user, pack, secret=secret)
    response = httpx.post(f"{api.rstrip('/')}/webhooks/stripe", content=body,
                          headers={"stripe-signature": signature,
                                   "content-type": "application/json"})
    if response.status_code != 200:
        raise CliError(f"the purchase was refused: {response.status_code} {response.text[:200]}")
    after = session.get("/api/credits").json()["balance"]
    print(f"Bought the '{pack}' pack for {user} through the signed Stripe webhook: "
          f"balance {before} -> {after} credits")


# --- a job: its ticket, its photo, waiting for it -----------------------------------------


def ticket_from(response: httpx.Response, user: str) -> dict[str, Any]:
    """The upload ticket the API answered with, or the reason it did not."""
    if response.status_code == 402:
        detail = response.json()["error"]
        raise CliError(f"{detail['message']} Buy credits with: lightbox buy --user {user}",
                       exit_code=3)
    if response.status_code != 201:
        raise CliError(error_text(response))
    return response.json()


def upload_photo(ticket: dict[str, Any], photo: Path) -> None:
    """POST the photo straight to the bucket with the ticket's presigned fields."""
    data = photo.read_bytes()
    content_type = _content_type(photo)
    upload = httpx.post(ticket["url"], data={**ticket["fields"], "Content-Type": content_type},
                        files={"file": (photo.name, data, content_type)}, timeout=120)
    if upload.status_code not in (200, 201, 204):
        raise CliError(f"upload refused by the bucket: {upload.status_code} {upload.text[:200]}")
    print(f"Uploaded {photo.name} ({len(data) / 1024:.0f} KB) straight to the bucket")


def _content_type(photo: Path) -> str:
    return {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
            ".webp": "image/webp", ".heic": "image/heic", ".heif": "image/heif",
            ".tif": "image/tiff", ".tiff": "image/tiff"}.get(photo.suffix.lower(), "image/jpeg")


def wait_for_job(
    session: Session, job_id: str, timeout: float, progress: Callable[[dict[str, Any]], str],
) -> dict[str, Any]:
    """Poll the job until it is finished, showing what `progress` says of it: redrawn
    with the time taken on a terminal, a line per change otherwise (a log stays short)."""
    started = time.monotonic()
    last = ""
    interactive = sys.stdout.isatty()
    while True:
        job = session.get(f"/api/jobs/{job_id}").json()
        state = progress(job)
        line = f"[{time.monotonic() - started:5.1f}s] {state}"
        if interactive:
            print("\r" + line.ljust(100), end="", flush=True)
        elif state != last:
            print(line, flush=True)
        last = state
        if job["status"] in TERMINAL:
            if interactive:
                print()
            return job
        if time.monotonic() - started > timeout:
            raise CliError(f"job {job_id} did not finish within {timeout:.0f} s (still {job['status']})")
        time.sleep(0.5)


def error_text(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
        return f"{error['message']} ({response.status_code})"
    except (ValueError, KeyError, TypeError):
        return f"{response.status_code} {response.text[:200]}"
