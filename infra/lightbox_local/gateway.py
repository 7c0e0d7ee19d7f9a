"""API Gateway (HTTP API) on a laptop.

Routes come from the functions' ``HttpApi`` events in template.yaml; each request
becomes the same payload-format-2.0 event API Gateway would send, and the function's
answer becomes the response. The JWT authorizer is emulated too: a route that is not
``Auth: {Authorizer: NONE}`` needs ``Authorization: Bearer <token>`` from the local
issuer, and its verified claims land in ``requestContext.authorizer.jwt.claims``,
where the API reads them in AWS.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from lightbox_local.issuer import LocalIssuer, TokenRejected
from lightbox_local.lambdas import HandlerError, LocalLambda

log = logging.getLogger(__name__)

TEXT_TYPES = ("text/", "application/json", "application/x-www-form-urlencoded",
              "application/xml", "application/javascript")


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: str
    authorized: bool
    pattern: re.Pattern[str]
    greedy: bool

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


def routes_from_functions(local: LocalLambda) -> list[Route]:
    found = []
    for function in local.functions.values():
        for event in function.events.values():
            if event.get("Type") != "HttpApi":
                continue
            props = event.get("Properties") or {}
            path = props.get("Path", "/")
            auth = (props.get("Auth") or {}).get("Authorizer")
            found.append(
                Route(
                    method=str(props.get("Method", "ANY")).upper(),
                    path=path,
                    function=function.name,
                    authorized=auth != "NONE",
                    pattern=_path_pattern(path),
                    greedy="+}" in path,
                )
            )
    return found


def _path_pattern(path: str) -> re.Pattern[str]:
    regex = ""
    for part in re.split(r"(\{[^}]+\})", path):
        if part.startswith("{") and part.endswith("+}"):
            regex += f"(?P<{part[1:-2]}>.+)"
        elif part.startswith("{"):
            regex += f"(?P<{part[1:-1]}>[^/]+)"
        else:
            regex += re.escape(part)
    return re.compile(f"^{regex}$")


def match_route(routes: list[Route], method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """API Gateway's precedence: exact paths, then path parameters, then greedy ones
    (the longest first); for the same path, a method before ANY."""

    def rank(route: Route) -> tuple[int, int, int]:
        kind = 2 if route.greedy else (1 if "{" in route.path else 0)
        return (kind, -len(route.path), 0 if route.method == method else 1)

    for route in sorted(routes, key=rank):
        if route.method not in (method, "ANY"):
            continue
        found = route.pattern.match(path)
        if found:
            return route, found.groupdict()
    return None


class Gateway:
    def __init__(self, local: LocalLambda, issuer: LocalIssuer) -> None:
        self.local = local
        self.issuer = issuer
        self.routes = routes_from_functions(local)
        self.extra: dict[tuple[str, str], Callable[[dict[str, Any]], tuple[int, dict, bytes]]] = {}
        self.domain = "127.0.0.1"

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes,
               source_ip: str) -> tuple[int, dict[str, str], bytes, list[str]]:
        parts = urlsplit(raw_path)
        path = parts.path or "/"
        local_route = self.extra.get((method, path))
        if local_route is not None:
            status, out_headers, data = local_route(
                {"headers": headers, "body": body, "query": dict(parse_qsl(parts.query))})
            return status, out_headers, data, []
        found = match_route(self.routes, method, path)
        if found is None:
            return _json(404, {"message": "Not Found"})
        route, params = found
        claims = None
        if route.authorized:
            token = headers.get("authorization", "")
            try:
                claims = self.issuer.verify(token.removeprefix("Bearer ").strip())
            except TokenRejected:
                return _json(401, {"message": "Unauthorized"})
        event = self._event(route, method, path, parts.query, headers, body, params, claims,
                            source_ip)
        try:
            result = self.local.invoke(route.function, event)
        except HandlerError as error:
            log.error("function %s failed: %s", route.function, error.payload.get("errorMessage"))
            return _json(500, {"message": "Internal Server Error"})
        return _response(result)

    def _event(self, route: Route, method: str, path: str, query: str, headers: dict[str, str],
               body: bytes, params: dict[str, str], claims: dict[str, Any] | None,
               source_ip: str) -> dict[str, Any]:
        content_type = headers.get("content-type", "")
        is_text = not body or (content_type.startswith(TEXT_TYPES) and _is_utf8(body))
        cookies = [c.strip() for c in headers.get("cookie", "").split(";") if c.strip()]
        now = datetime.now(UTC)
        context: dict[str, Any] = {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": self.domain,
            "domainPrefix": self.domain.split(".")[0],
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": source_ip, "userAgent": headers.get("user-agent", "")},
            "requestId": uuid.uuid4().hex,
            "routeKey": route.route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        }
        if claims is not None:
            context["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route.route_key,
            "rawPath": path,
            "rawQueryString": query,
            "headers": {k: v for k, v in headers.items() if k != "cookie"},
            "requestContext": context,
            "isBase64Encoded": not is_text,
        }
        if cookies:
            event["cookies"] = cookies
        if query:
            event["queryStringParameters"] = dict(parse_qsl(query, keep_blank_values=True))
        if params:
            event["pathParameters"] = params
        if body:
            event["body"] = body.decode("utf-8") if is_text else base64.b64encode(body).decode()
        return event


def _is_utf8(body: bytes) -> bool:
    """API Gateway passes a body that does not decode as text base64-encoded, whatever
    its content type says."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _json(status: int, payload: Any) -> tuple[int, dict[str, str], bytes, list[str]]:
    return status, {"content-type": "application/json"}, json.dumps(payload).encode(), []


def _response(result: Any) -> tuple[int, dict[str, str], bytes, list[str]]:
    """Payload format 2.0: a dict with statusCode, or any JSON value meaning 200."""
    if not isinstance(result, dict) or "statusCode" not in result:
        return _json(200, result)
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    headers = {str(k).lower(): str(v) for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[str(name).lower()] = ", ".join(map(str, values))
    return int(result["statusCode"]), headers, data, list(result.get("cookies") or [])


class GatewayServer:
    def __init__(self, gateway: Gateway, *, host: str = "127.0.0.1", port: int = 0) -> None:
        handler = type("GatewayHandler", (_Handler,), {"gateway": gateway})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.httpd.request_queue_size = 256
        self.port = self.httpd.server_address[1]
        self.url = f"http://{host}:{self.port}"
        gateway.domain = f"{host}:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True,
                                        name="gateway-http")

    def start(self) -> GatewayServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    gateway: Gateway
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("gateway %s", format % args)

    def _serve(self) -> None:
        started = time.monotonic()
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        status, out_headers, data, cookies = self.gateway.handle(
            self.command, self.path, headers, body, self.client_address[0])
        self.send_response(status)
        for name, value in out_headers.items():
            if name not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        for cookie in cookies:
            self.send_header("set-cookie", cookie)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        log.debug("%s %s -> %s in %.0f ms", self.command, self.path, status,
                  (time.monotonic() - started) * 1000)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve
