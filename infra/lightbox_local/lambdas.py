"""Lambda on a laptop: the real handlers from functions/, invoked in this process.

Functions are found through template.yaml (CodeUri + Handler), imported from their
own folders, and invoked with a Lambda-like context. moto's Step Functions
interpreter reaches them through botocore: a ``before-send`` hook on
``lambda.Invoke`` answers the call with the handler's result, exactly as the Lambda
Invoke API would (``X-Amz-Function-Error: Unhandled`` and an ``errorType`` payload
when the handler raises, so ``Retry``/``Catch`` match error names as in AWS).
"""

from __future__ import annotations

import asyncio
import importlib.util
import io
import json
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import unquote

import boto3
import urllib3
from botocore.awsrequest import AWSResponse

from lightbox_local.template import ROOT, resources

ACCOUNT = "123456789012"
REGION = "us-east-1"


@dataclass
class LocalFunction:
    logical_id: str
    name: str
    code_dir: Path
    handler_name: str
    timeout: int
    memory: int
    events: dict[str, Any]
    environment_names: set[str]
    _module: ModuleType | None = field(default=None, repr=False)
    _import_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.name}"

    def handler(self) -> Callable[[Any, Any], Any]:
        with self._import_lock:
            if self._module is None:
                module_file, _ = self.handler_name.rsplit(".", 1)
                path = self.code_dir / f"{module_file}.py"
                spec = importlib.util.spec_from_file_location(f"lightbox_fn_{self.name}", path)
                assert spec and spec.loader
                module = importlib.util.module_from_spec(spec)
                sys.modules[spec.name] = module
                spec.loader.exec_module(module)
                self._module = module
            return getattr(self._module, self.handler_name.rsplit(".", 1)[1])


class LambdaContext:
    """What a handler sees as its `context` (the attributes Powertools reads)."""

    def __init__(self, function: LocalFunction) -> None:
        self.function_name = function.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function.arn
        self.memory_limit_in_mb = function.memory
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function.name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + function.timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _ensure_event_loop() -> None:
    """Lambda runs handlers on its main thread, where asyncio finds a loop (Mangum relies
    on it); the local runtime runs them on worker threads, so each gets its own."""
    try:
        asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())


class HandlerError(Exception):
    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(payload.get("errorMessage"))
        self.payload = payload


def discover_functions() -> dict[str, LocalFunction]:
    """Every AWS::Serverless::Function in the template, keyed by its folder name."""
    template_globals = _globals()
    functions = {}
    for logical_id, resource in resources("AWS::Serverless::Function").items():
        props = resource["Properties"]
        code_dir = ROOT / props["CodeUri"]
        name = code_dir.name
        env = set(template_globals.get("Environment", {}).get("Variables", {}))
        env |= set((props.get("Environment") or {}).get("Variables", {}))
        functions[name] = LocalFunction(
            logical_id=logical_id,
            name=name,
            code_dir=code_dir,
            handler_name=props.get("Handler", template_globals.get("Handler", "app.handler")),
            timeout=int(props.get("Timeout", template_globals.get("Timeout", 3))),
            memory=int(props.get("MemorySize", template_globals.get("MemorySize", 128))),
            events=props.get("Events") or {},
            environment_names=env,
        )
    return functions


def _globals() -> dict[str, Any]:
    from lightbox_local.template import load_template

    return (load_template().get("Globals") or {}).get("Function") or {}


class LocalLambda:
    """Invokes handlers and tells waiters when each invocation ends."""

    def __init__(self, functions: dict[str, LocalFunction]) -> None:
        self.functions = functions
        self.invocations = 0
        self.errors: list[tuple[str, dict[str, Any]]] = []
        self._settled = threading.Condition()
        self._hooked = False

    def by_arn_or_name(self, ref: str) -> LocalFunction:
        name = unquote(ref).split(":")[-1] if ref.startswith("arn:") or "%3A" in ref else ref
        if name not in self.functions:
            raise KeyError(f"no local function {name!r}")
        return self.functions[name]

    def invoke(self, name: str, event: Any) -> Any:
        """Run a handler; raise HandlerError with Lambda's error payload if it raises."""
        function = self.functions[name]
        _ensure_event_loop()
        # A round trip through JSON: the handler gets exactly what Lambda would deliver.
        event = json.loads(json.dumps(event))
        try:
            result = function.handler()(event, LambdaContext(function))
            result = json.loads(json.dumps(result))
        except Exception as error:  # the Lambda runtime reports every exception this way
            payload = {
                "errorMessage": str(error),
                "errorType": type(error).__name__,
                "requestId": "",
                "stackTrace": traceback.format_exception(error)[-6:],
            }
            with self._settled:
                self.errors.append((name, payload))
            raise HandlerError(payload) from error
        finally:
            with self._settled:
                self.invocations += 1
                self._settled.notify_all()
        return result

    def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Block until predicate() holds, re-checking after every invocation ends.

        The predicate runs outside the lock: it may call the functions itself (read
        the API), which end by taking that lock.
        """
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            # Re-check at least every half second: some changes (a webhook the engine
            # delivers) end no invocation of their own, and one may land between the
            # check and the wait.
            with self._settled:
                self._settled.wait(min(remaining, 0.5))
        return True

    # --- the botocore bridge -------------------------------------------------------------

    def install(self) -> None:
        """Answer every lambda.Invoke made through boto3's default session."""
        if self._hooked:
            return
        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        boto3.DEFAULT_SESSION.events.register("before-send.lambda.Invoke", self._on_invoke)
        self._hooked = True
        # In AWS each function has its process and its Logger; here they share one, so
        # the keys an invocation adds (function name, request id) belong to its thread.
        from lightbox.observability import logger

        logger.append_keys = logger.thread_safe_append_keys  # type: ignore[method-assign]

    def uninstall(self) -> None:
        if self._hooked and boto3.DEFAULT_SESSION is not None:
            boto3.DEFAULT_SESSION.events.unregister("before-send.lambda.Invoke", self._on_invoke)
        self._hooked = False

    def _on_invoke(self, request: Any, **_: Any) -> AWSResponse:
        ref = request.url.split("/functions/", 1)[1].split("/", 1)[0]
        function = self.by_arn_or_name(ref)
        body = request.body or b"{}"
        event = json.loads(body if isinstance(body, (bytes, str)) else body.read())
        headers = {"X-Amz-Executed-Version": "$LATEST"}
        try:
            payload: Any = self.invoke(function.name, event)
        except HandlerError as error:
            payload = error.payload
            headers["X-Amz-Function-Error"] = "Unhandled"
        data = json.dumps(payload).encode()
        raw = urllib3.HTTPResponse(body=io.BytesIO(data), status=200, headers=headers,
                                   preload_content=False)
        return AWSResponse(request.url, 200, headers, raw)
