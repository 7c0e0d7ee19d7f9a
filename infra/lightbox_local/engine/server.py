"""The local engine: the part of Replicate's HTTP API that Lightbox uses, on a laptop.

Lightbox's production code talks to it through the official `replicate` client by
pointing ``REPLICATE_BASE_URL`` at it. It serves

    POST /v1/predictions                          (a pinned version)
    POST /v1/models/{owner}/{name}/predictions    (an official model, by name)
    GET  /v1/predictions/{id}
    POST /v1/predictions/{id}/cancel
    GET  /v1/webhooks/default/secret
    GET  /files/{id}/{name}                       (outputs, like Replicate's delivery host)

and sends signed webhooks with Replicate's headers and scheme (Standard Webhooks:
``webhook-id``, ``webhook-timestamp``, ``webhook-signature: v1,<base64 HMAC-SHA256>``),
retrying non-2xx answers with backoff for about a minute, as Replicate does.

Its models are CPU stand-ins (lightbox_local.engine.vision): classic-vision background
removal, a scene renderer, a Lanczos upscaler and a placeholder portrait. Latency,
failure rate, duplicate and lost webhooks are settable (`EngineConfig`, or
``POST /engine/config``), and one-off faults can be queued (``POST /engine/faults``)
so tests can script "fail this prediction", "lose its webhook", "deliver it twice".
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import itertools
import json
import logging
import random
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import httpx

from lightbox_local.engine import models as stand_ins

log = logging.getLogger(__name__)

TERMINAL = ("succeeded", "failed", "canceled")
#: Replicate retries a failed final webhook for about a minute.
WEBHOOK_RETRY_DELAYS = (0.25, 0.5, 1, 2, 4, 8, 15, 30)


@dataclass
class EngineConfig:
    """How the engine behaves; every field can be changed while it runs."""

    #: Seconds between create and completion (model time), plus uniform jitter.
    latency: float = 0.0
    jitter: float = 0.0
    #: Share of predictions that fail (status "failed").
    failure_rate: float = 0.0
    #: Share of completions whose webhook is delivered twice.
    duplicate_rate: float = 0.0
    #: Share of completions whose webhook is never sent (the sweeper must ask).
    lost_webhook_rate: float = 0.0
    #: "real" runs the stand-in models; "fast" returns small pre-made images so
    #: benchmarks measure Lightbox's flow, not the stand-ins' CPU work.
    mode: str = "real"
    #: Side of the images "fast" mode returns.
    fast_size: int = 256
    #: Parallel model runs (the stand-ins are CPU bound).
    workers: int = 2
    seed: int = 0


@dataclass
class Fault:
    """A one-off misbehaviour for the next matching prediction(s)."""

    kind: str  # fail | lose_webhook | duplicate_webhook | recolor | hang
    model: str | None = None  # "owner/name", or a role: cutout | compose | upscale | portrait
    count: int = 1


@dataclass
class PredictionRecord:
    id: str
    model: str
    version: str | None
    input: dict[str, Any]
    webhook: str | None
    events: list[str]
    role: str
    status: str = "starting"
    output: Any = None
    error: str | None = None
    logs: str = ""
    created_at: str = field(default_factory=lambda: _now_iso())
    started_at: str | None = None
    completed_at: str | None = None
    predict_time: float | None = None
    faults: list[str] = field(default_factory=list)

    def to_json(self, base_url: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "version": self.version or "official",
            "input": self.input,
            "output": self.output,
            "error": self.error,
            "logs": self.logs,
            "status": self.status,
            "data_removed": False,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "completed_at": self.completed_at,
            "urls": {
                "get": f"{base_url}/v1/predictions/{self.id}",
                "cancel": f"{base_url}/v1/predictions/{self.id}/cancel",
                "stream": f"{base_url}/v1/predictions/{self.id}/stream",
            },
            "metrics": {"predict_time": self.predict_time} if self.predict_time else {},
        }


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_prediction_id() -> str:
    """26 lowercase base32 characters, like Replicate's ids."""
    return base64.b32encode(secrets.token_bytes(16)).decode().lower().rstrip("=")[:26]


def sign_webhook(secret: str, webhook_id: str, timestamp: int, body: str) -> str:
    """The Standard Webhooks signature Replicate sends (and its client validates)."""
    key = base64.b64decode(secret.split("_", 1)[1])
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class Engine:
    """The engine's state and workers, independent of HTTP (tests may drive it directly)."""

    def __init__(
        self,
        *,
        api_token: str,
        webhook_secret: str,
        config: EngineConfig | None = None,
        roles: dict[str, str] | None = None,
    ) -> None:
        self.api_token = api_token
        self.webhook_secret = webhook_secret
        self.config = config or EngineConfig()
        self.roles = roles if roles is not None else stand_ins.roles_from_catalogue()
        self.base_url = ""
        self.predictions: dict[str, PredictionRecord] = {}
        self.files: dict[str, tuple[bytes, str]] = {}
        self.faults: list[Fault] = []
        self.stats = {"created": 0, "completed": 0, "webhooks_sent": 0, "webhooks_lost": 0,
                      "webhook_failures": 0, "canceled": 0}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._random = random.Random(self.config.seed)
        self._timers: list[tuple[float, int, Any]] = []
        self._timer_seq = itertools.count()
        self._timer_wakeup = threading.Condition()
        self._stopping = False
        self._models = ThreadPoolExecutor(max_workers=self.config.workers,
                                          thread_name_prefix="engine-model")
        self._senders = ThreadPoolExecutor(max_workers=16, thread_name_prefix="engine-webhook")
        self._http = httpx.Client(timeout=httpx.Timeout(30.0, connect=5.0))
        self._timer_thread = threading.Thread(target=self._run_timers, daemon=True,
                                              name="engine-timers")
        self._timer_thread.start()

    # --- configuration -----------------------------------------------------------------

    def configure(self, **changes: Any) -> EngineConfig:
        with self._lock:
            for name, value in changes.items():
                if not hasattr(self.config, name):
                    raise ValueError(f"unknown engine setting {name!r}")
                setattr(self.config, name, type(getattr(self.config, name))(value))
            if "seed" in changes:
                self._random.seed(self.config.seed)
            return self.config

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def _take_faults(self, model: str, role: str) -> list[str]:
        taken = []
        for fault in self.faults:
            if fault.count > 0 and fault.model in (None, model, role):
                fault.count -= 1
                taken.append(fault.kind)
        self.faults = [f for f in self.faults if f.count > 0]
        return taken

    # --- the API ------------------------------------------------------------------------

    def create(self, model: str, version: str | None, body: dict[str, Any]) -> PredictionRecord:
        role = self.roles.get(version or "") or self.roles.get(model)
        if role is None:
            raise LookupError(f"The local engine has no stand-in for {version or model}.")
        record = PredictionRecord(
            id=new_prediction_id(),
            model=model,
            version=version,
            input=dict(body.get("input") or {}),
            webhook=body.get("webhook"),
            events=list(body.get("webhook_events_filter") or ["start", "output", "logs",
                                                               "completed"]),
            role=role,
        )
        with self._lock:
            record.faults = self._take_faults(model, role)
            self.predictions[record.id] = record
            self.stats["created"] += 1
            delay = self.config.latency + self._random.uniform(0, self.config.jitter)
        if "hang" not in record.faults:
            self._schedule(delay, lambda: self._models.submit(self._run, record.id))
        return record

    def get(self, prediction_id: str) -> PredictionRecord | None:
        with self._lock:
            return self.predictions.get(prediction_id)

    def cancel(self, prediction_id: str) -> PredictionRecord | None:
        with self._lock:
            record = self.predictions.get(prediction_id)
            if record is None or record.status in TERMINAL:
                return record
            record.status = "canceled"
            record.completed_at = _now_iso()
            self.stats["canceled"] += 1
            self._changed.notify_all()
        self._send_completed(record)
        return record

    def wait_for(self, predicate: Any, timeout: float = 30.0) -> bool:
        """Block until predicate(engine) holds (tests); woken by every completion.

        The predicate runs outside the engine's lock: it may read the engine (or
        anything else) without holding up predictions. A change that lands between
        the check and the wait is seen at the next check, at most half a second on.
        """
        deadline = time.monotonic() + timeout
        while not predicate(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._lock:
                self._changed.wait(min(remaining, 0.5))
        return True

    # --- running predictions ----------------------------------------------------------------

    def _run(self, prediction_id: str) -> None:
        with self._lock:
            record = self.predictions[prediction_id]
            if record.status in TERMINAL:
                return
            record.status = "processing"
            record.started_at = _now_iso()
            fail = "fail" in record.faults or self._random.random() < self.config.failure_rate
            mode = self.config.mode
            fast_size = self.config.fast_size
        began = time.monotonic()
        output: Any = None
        error: str | None = None
        if fail:
            error = "The model failed (a failure the local engine was asked to simulate)."
        else:
            try:
                data, content_type = stand_ins.run(
                    record.role, record.input, fetch=self._fetch, mode=mode,
                    fast_size=fast_size, recolor="recolor" in record.faults,
                )
                name = f"output.{_extension(content_type)}"
                with self._lock:
                    self.files[f"{record.id}/{name}"] = (data, content_type)
                output = f"{self.base_url}/files/{record.id}/{name}"
                if record.role != "cutout":
                    output = [output] if record.role == "portrait" else output
            except Exception as exc:  # a stand-in's failure is the prediction's failure
                log.exception("stand-in model failed")
                error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            if record.status in TERMINAL:  # canceled while running
                return
            record.status = "failed" if error else "succeeded"
            record.error = error
            record.output = output
            record.completed_at = _now_iso()
            record.predict_time = round(time.monotonic() - began, 3)
            self.stats["completed"] += 1
            self._changed.notify_all()
        self._send_completed(record)

    def _fetch(self, url: str) -> bytes:
        if url.startswith("data:"):
            return base64.b64decode(url.split(",", 1)[1])
        parts = urlsplit(url)
        if parts.path.startswith("/files/") and url.startswith(self.base_url):
            with self._lock:
                return self.files[parts.path.removeprefix("/files/")][0]
        response = self._http.get(url)
        response.raise_for_status()
        return response.content

    # --- webhooks -------------------------------------------------------------------------

    def _send_completed(self, record: PredictionRecord) -> None:
        if not record.webhook or "completed" not in record.events:
            return
        with self._lock:
            lost = ("lose_webhook" in record.faults
                    or self._random.random() < self.config.lost_webhook_rate)
            twice = ("duplicate_webhook" in record.faults
                     or self._random.random() < self.config.duplicate_rate)
            if lost:
                self.stats["webhooks_lost"] += 1
                return
            body = json.dumps(record.to_json(self.base_url))
        webhook_id = f"msg_{secrets.token_hex(12)}"
        for _ in range(2 if twice else 1):
            self._senders.submit(self._deliver, record.webhook, webhook_id, body, 0)

    def _deliver(self, url: str, webhook_id: str, body: str, attempt: int) -> None:
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign_webhook(self.webhook_secret, webhook_id, timestamp, body),
        }
        try:
            status = self._http.post(url, content=body.encode(), headers=headers).status_code
        except httpx.HTTPError:
            status = 0
        with self._lock:
            self.stats["webhooks_sent"] += 1
            if not 200 <= status < 300:
                self.stats["webhook_failures"] += 1
        if 200 <= status < 300 or attempt >= len(WEBHOOK_RETRY_DELAYS) or self._stopping:
            return
        self._schedule(
            WEBHOOK_RETRY_DELAYS[attempt],
            lambda: self._senders.submit(self._deliver, url, webhook_id, body, attempt + 1),
        )

    # --- a tiny timer wheel: no thread sleeps per prediction --------------------------

    def _schedule(self, delay: float, action: Any) -> None:
        with self._timer_wakeup:
            heapq.heappush(self._timers, (time.monotonic() + max(0.0, delay),
                                          next(self._timer_seq), action))
            self._timer_wakeup.notify()

    def _run_timers(self) -> None:
        while True:
            with self._timer_wakeup:
                while not self._stopping and (
                    not self._timers or self._timers[0][0] > time.monotonic()
                ):
                    timeout = self._timers[0][0] - time.monotonic() if self._timers else None
                    self._timer_wakeup.wait(timeout)
                if self._stopping:
                    return
                _, _, action = heapq.heappop(self._timers)
            try:
                action()
            except RuntimeError:  # executor shut down while stopping
                return

    def close(self) -> None:
        with self._timer_wakeup:
            self._stopping = True
            self._timer_wakeup.notify_all()
        self._models.shutdown(wait=False, cancel_futures=True)
        self._senders.shutdown(wait=False, cancel_futures=True)
        self._http.close()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"config": asdict(self.config), "stats": dict(self.stats),
                    "pending_faults": [asdict(f) for f in self.faults]}


def _extension(content_type: str) -> str:
    return {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}.get(content_type, "bin")


class _Handler(BaseHTTPRequestHandler):
    engine: Engine
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("engine %s", format % args)

    def _json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, detail: str) -> None:
        self._json(status, {"detail": detail, "status": status, "title": HTTPStatus(status).phrase})

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        return json.loads(raw or b"{}")

    def _authorised(self) -> bool:
        expected = f"Bearer {self.engine.api_token}"
        given = self.headers.get("authorization", "")
        if hmac.compare_digest(given, expected) or (
            # The client sends "Token" in some versions.
            hmac.compare_digest(given, f"Token {self.engine.api_token}")
        ):
            return True
        self._error(401, "Invalid token.")
        return False

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path.startswith("/files/"):
            with self.engine._lock:
                found = self.engine.files.get(path.removeprefix("/files/"))
            if found is None:
                return self._error(404, "Not found.")
            data, content_type = found
            self.send_response(200)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return None
        if path == "/engine/state":
            return self._json(200, self.engine.snapshot())
        if not self._authorised():
            return None
        if path == "/v1/webhooks/default/secret":
            return self._json(200, {"key": self.engine.webhook_secret})
        if path.startswith("/v1/predictions/"):
            record = self.engine.get(path.removeprefix("/v1/predictions/"))
            if record is None:
                return self._error(404, "Prediction not found.")
            return self._json(200, record.to_json(self.engine.base_url))
        return self._error(404, "Not found.")

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        try:
            body = self._body()
        except ValueError:
            return self._error(400, "Body is not JSON.")
        if path == "/engine/config":
            try:
                return self._json(200, asdict(self.engine.configure(**body)))
            except (ValueError, TypeError) as error:
                return self._error(422, str(error))
        if path == "/engine/faults":
            self.engine.add_fault(Fault(**body))
            return self._json(201, self.engine.snapshot())
        if not self._authorised():
            return None
        if path.endswith("/cancel") and path.startswith("/v1/predictions/"):
            record = self.engine.cancel(path.removeprefix("/v1/predictions/").removesuffix("/cancel"))
            if record is None:
                return self._error(404, "Prediction not found.")
            return self._json(200, record.to_json(self.engine.base_url))
        try:
            if path == "/v1/predictions":
                version = str(body.get("version", ""))
                model = self.engine.roles.get(f"model-of:{version}", version)
                record = self.engine.create(model, version, body)
            elif path.startswith("/v1/models/") and path.endswith("/predictions"):
                owner_name = path.removeprefix("/v1/models/").removesuffix("/predictions")
                record = self.engine.create(owner_name, None, body)
            else:
                return self._error(404, "Not found.")
        except LookupError as error:
            return self._error(422, str(error))
        return self._json(201, record.to_json(self.engine.base_url))


class EngineServer:
    """The engine on 127.0.0.1, in a background thread."""

    def __init__(self, engine: Engine, *, host: str = "127.0.0.1", port: int = 0) -> None:
        handler = type("EngineHandler", (_Handler,), {"engine": engine})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.engine = engine
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        engine.base_url = self.url
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True,
                                        name="engine-http")

    def start(self) -> EngineServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.engine.close()
        self.httpd.shutdown()
        self.httpd.server_close()


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()

