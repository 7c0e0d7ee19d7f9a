"""Lambda on a laptop: each function runs from its own package, in processes of its own.

The functions are read from template.yaml (`lightbox_local.packaging`): a function's
package is its CodeUri plus the layers the template attaches to it, built for this
machine by the layers' own Makefiles. Each function gets worker processes
(`lightbox_local/worker.py`) that import only from that package and the standard
library, as in Lambda:

- one event at a time per process; a busy function starts another process, up to its
  concurrency (ReservedConcurrentExecutions, or the runtime's default);
- warm processes are reused, so module-level state (clients, caches) lives per process;
- the import of the handler is the cold start: timed, logged and kept in `stats()`;
- a handler that cannot import (a package its layers lack) fails every invocation with
  Lambda's `Runtime.ImportModuleError`; one that runs past its Timeout is killed and
  reported as `Sandbox.Timedout`.

moto's Step Functions interpreter reaches the functions through botocore: a
``before-send`` hook on ``lambda.Invoke`` answers the call with the function's result,
exactly as the Lambda Invoke API would (``X-Amz-Function-Error: Unhandled`` and the
error payload when the handler raises, so ``Retry``/``Catch`` match error names as in
AWS).
"""

from __future__ import annotations

import io
import json
import logging
import os
import select
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import boto3
import urllib3
from botocore.awsrequest import AWSResponse

from lightbox_local.packaging import FunctionSpec, functions, package_path

log = logging.getLogger(__name__)

ACCOUNT = "123456789012"
REGION = "us-east-1"
WORKER = Path(__file__).resolve().with_name("worker.py")
#: Processes one function may run at once when the template sets no reserved concurrency.
DEFAULT_CONCURRENCY = 4
#: Lambda gives a function's initialisation (the imports) at most this long.
INIT_TIMEOUT_SECONDS = 10.0


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def discover_functions() -> dict[str, FunctionSpec]:
    """Every AWS::Serverless::Function in the template, keyed by its folder name."""
    return functions()


class HandlerError(Exception):
    """A function's invocation failed; `payload` is what Lambda's Invoke returns."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(payload.get("errorMessage"))
        self.payload = payload


@dataclass
class FunctionStats:
    cold_starts_ms: list[float] = field(default_factory=list)
    init_cpu_ms: list[float] = field(default_factory=list)
    durations_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    errors: int = 0

    def summary(self) -> dict[str, float]:
        def median(values: list[float]) -> float:
            return round(statistics.median(values), 1) if values else 0.0

        return {
            "invocations": len(self.durations_ms),
            "errors": self.errors,
            "cold_starts": len(self.cold_starts_ms),
            "cold_start_ms_median": median(self.cold_starts_ms),
            "duration_ms_median": median(self.durations_ms),
            "cpu_ms_total": round(sum(self.cpu_ms) + sum(self.init_cpu_ms), 1),
        }


@dataclass(frozen=True)
class Invocation:
    """One invocation as Lambda would bill and trace it."""

    function: str
    #: Wall-clock time (time.time()) when the event reached the function.
    started: float
    duration_ms: float
    cpu_ms: float
    #: The cold start this invocation waited for (its worker's init), if any.
    cold_start_ms: float | None
    error: str | None
    #: job_id, shot_id and prediction_id, where the event names them.
    ids: dict[str, str]


def event_ids(event: Any) -> dict[str, str]:
    """The job, shot and prediction an event is about (a task's input, or a webhook's body)."""
    found: dict[str, str] = {}

    def visit(value: Any, depth: int) -> None:
        if not isinstance(value, dict) or depth > 2:
            return
        for key, item in value.items():
            if key in ("job_id", "shot_id", "prediction_id") and isinstance(item, str):
                found.setdefault(key, item)
            else:
                visit(item, depth + 1)

    visit(event, 0)
    body = event.get("body") if isinstance(event, dict) else None
    if isinstance(body, str) and body.startswith("{") and "prediction_id" not in found:
        try:
            prediction = json.loads(body).get("id")
        except ValueError:
            prediction = None
        if isinstance(prediction, str):
            found["prediction_id"] = prediction
    return found


class _Worker:
    """One execution environment: a process that runs one function, an event at a time."""

    def __init__(self, function: FunctionSpec, path: list[Path],
                 environment: Mapping[str, str], stderr: Any) -> None:
        self.function = function
        request_read, request_write = os.pipe()
        reply_read, reply_write = os.pipe()
        env = {**environment, "LIGHTBOX_FUNCTION_PATH": json.dumps([str(p) for p in path])}
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-S", str(WORKER), str(request_read), str(reply_write)],
            pass_fds=(request_read, reply_write), env=env, stdin=subprocess.DEVNULL,
            stdout=stderr, stderr=stderr, cwd=function.code_dir, start_new_session=True,
        )
        os.close(request_read)
        os.close(reply_write)
        self._requests = os.fdopen(request_write, "wb", buffering=0)
        self._replies = reply_read
        self._buffer = b""
        hello = self._read(INIT_TIMEOUT_SECONDS)
        if hello is None or "init_error" in hello:
            self.kill()
            raise HandlerError((hello or {}).get("init_error") or {
                "errorMessage": f"{function.name} did not initialise within "
                                f"{INIT_TIMEOUT_SECONDS:.0f} seconds",
                "errorType": "Runtime.InitTimeout", "requestId": "", "stackTrace": []})
        self.init_ms = float(hello["init_ms"])
        self.init_cpu_ms = float(hello["init_cpu_ms"])

    def run(self, event: Any, timeout: float) -> dict[str, Any]:
        request_id = str(uuid.uuid4())
        message = {"event": event, "request_id": request_id, "timeout": timeout}
        try:
            self._requests.write(json.dumps(message).encode() + b"\n")
        except BrokenPipeError:
            return self._exited(request_id)
        reply = self._read(timeout)
        if reply is None:
            if self.process.poll() is not None:
                return self._exited(request_id)
            self.kill()
            return {"error": {
                "errorMessage": f"{request_id} Task timed out after {timeout:.2f} seconds",
                "errorType": "Sandbox.Timedout", "requestId": request_id, "stackTrace": []}}
        return reply

    def _exited(self, request_id: str) -> dict[str, Any]:
        code = self.process.wait()
        return {"error": {"errorMessage": f"RequestId: {request_id} Error: Runtime exited "
                                          f"with error: exit status {code}",
                          "errorType": "Runtime.ExitError", "requestId": request_id,
                          "stackTrace": []}}

    def _read(self, timeout: float) -> dict[str, Any] | None:
        """The next JSON line from the worker, or None at its end or after `timeout`."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self._replies], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self._replies, 1 << 20)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        try:
            self._requests.close()
            self.process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.kill()
        finally:
            os.close(self._replies)

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()


class _Pool:
    """The execution environments of one function."""

    def __init__(self, function: FunctionSpec, start: Callable[[FunctionSpec], _Worker],
                 concurrency: int) -> None:
        self.function = function
        self._start = start
        self.concurrency = concurrency
        self._idle: list[_Worker] = []
        self._count = 0
        self._changed = threading.Condition()

    def acquire(self) -> tuple[_Worker, bool]:
        """A warm worker if one is idle, else a new one (a cold start) within the cap."""
        with self._changed:
            while not self._idle and self._count >= self.concurrency:
                self._changed.wait()
            if self._idle:
                return self._idle.pop(), False
            self._count += 1
        try:
            return self._start(self.function), True
        except BaseException:
            self._gone()
            raise

    def release(self, worker: _Worker) -> None:
        if not worker.alive:
            self._gone()
            return
        with self._changed:
            self._idle.append(worker)
            self._changed.notify()

    def _gone(self) -> None:
        with self._changed:
            self._count -= 1
            self._changed.notify()

    def close(self) -> None:
        with self._changed:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.stop()


class LocalLambda:
    """Invokes functions in their own processes and tells waiters when each invocation ends."""

    def __init__(self, functions: dict[str, FunctionSpec], *,
                 environment: Mapping[str, str] | None = None,
                 concurrency: int = DEFAULT_CONCURRENCY, stderr: Any = None) -> None:
        self.functions = functions
        #: The stack's settings, given to every function (set before the first invocation).
        self.environment = dict(environment or {})
        self.invocations = 0
        self.errors: list[tuple[str, dict[str, Any]]] = []
        self._stats = {name: FunctionStats() for name in functions}
        #: Every invocation, for benchmarks that project what the functions cost in AWS.
        self.invocation_log: deque[Invocation] = deque(maxlen=200_000)
        self._stderr = stderr
        self._paths = {name: package_path(spec) for name, spec in functions.items()}
        self._pools = {
            name: _Pool(spec, self._start_worker, spec.reserved_concurrency or concurrency)
            for name, spec in functions.items()
        }
        self._settled = threading.Condition()
        self._hooked = False

    def by_arn_or_name(self, ref: str) -> FunctionSpec:
        name = unquote(ref).split(":")[-1] if ref.startswith("arn:") or "%3A" in ref else ref
        if name not in self.functions:
            raise KeyError(f"no local function {name!r}")
        return self.functions[name]

    def _start_worker(self, function: FunctionSpec) -> _Worker:
        worker = _Worker(function, self._paths[function.name],
                         self._function_environment(function), self._stderr)
        stats = self._stats[function.name]
        with self._settled:
            stats.cold_starts_ms.append(worker.init_ms)
            stats.init_cpu_ms.append(worker.init_cpu_ms)
        log.info("cold start of %s: %.0f ms", function.name, worker.init_ms,
                 extra={"function": function.name, "init_ms": round(worker.init_ms, 1)})
        return worker

    def _function_environment(self, function: FunctionSpec) -> dict[str, str]:
        """What Lambda sets for a function, over the stack's settings."""
        return {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            **self.environment,
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"local/{function.name}",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_python{sys.version_info[0]}.{sys.version_info[1]}",
            "LAMBDA_TASK_ROOT": str(function.code_dir),
            "LIGHTBOX_FUNCTION_ARN": function_arn(function.name),
            "_HANDLER": function.handler,
        }

    def invoke(self, name: str, event: Any) -> Any:
        """Run a function on one of its workers; raise HandlerError with Lambda's payload."""
        function = self.functions[name]
        pool = self._pools[name]
        stats = self._stats[name]
        # A round trip through JSON: the handler gets exactly what Lambda would deliver.
        event = json.loads(json.dumps(event))
        started = time.time()
        cold_start_ms = None
        try:
            try:
                worker, cold = pool.acquire()
            except HandlerError as error:
                reply: dict[str, Any] = {"error": error.payload}
            else:
                cold_start_ms = worker.init_ms if cold else None
                try:
                    reply = worker.run(event, float(function.timeout))
                finally:
                    pool.release(worker)
            with self._settled:
                if "duration_ms" in reply:
                    stats.durations_ms.append(reply["duration_ms"])
                    stats.cpu_ms.append(reply["cpu_ms"])
                if "error" in reply:
                    stats.errors += 1
                    self.errors.append((name, reply["error"]))
                self.invocation_log.append(Invocation(
                    function=name, started=started,
                    duration_ms=float(reply.get("duration_ms", 0.0)),
                    cpu_ms=float(reply.get("cpu_ms", 0.0)), cold_start_ms=cold_start_ms,
                    error=(reply.get("error") or {}).get("errorType"), ids=event_ids(event)))
            if "error" in reply:
                raise HandlerError(reply["error"])
            return reply["result"]
        finally:
            with self._settled:
                self.invocations += 1
                self._settled.notify_all()

    def stats(self) -> dict[str, FunctionStats]:
        with self._settled:
            return {name: FunctionStats(list(s.cold_starts_ms), list(s.init_cpu_ms),
                                        list(s.durations_ms), list(s.cpu_ms), s.errors)
                    for name, s in self._stats.items()}

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

    def close(self) -> None:
        """Stop every worker (their functions' processes end, as when Lambda scales in)."""
        for pool in self._pools.values():
            pool.close()

    # --- the botocore bridge -------------------------------------------------------------

    def install(self) -> None:
        """Answer every lambda.Invoke made through boto3's default session."""
        if self._hooked:
            return
        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        boto3.DEFAULT_SESSION.events.register("before-send.lambda.Invoke", self._on_invoke)
        self._hooked = True

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
