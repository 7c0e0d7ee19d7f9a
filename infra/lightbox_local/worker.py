"""One Lambda execution environment on a laptop: a process that runs one function.

Started by `lightbox_local.lambdas` as

    python -I -S worker.py REQUEST_FD REPLY_FD

with the function's package (its CodeUri, then its layers) in LIGHTBOX_FUNCTION_PATH
and nothing else importable but the standard library: no site-packages, no project
checkout. Like Lambda's runtime it imports the handler once (the cold start, timed),
then runs one event at a time for as long as it lives, so module-level state (clients,
caches) is per process. Requests and replies are JSON lines on their own pipes; what
the function prints (its logs) goes to stderr, as Lambda sends it to CloudWatch.

This file is the runtime, not part of any function: it imports only the standard
library.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
import uuid
from typing import Any


class LambdaContext:
    """What a handler gets as `context` (the attributes Powertools and Mangum read)."""

    def __init__(self, request_id: str, timeout: float) -> None:
        name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "function")
        self.function_name = name
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = os.environ.get("LIGHTBOX_FUNCTION_ARN", name)
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", f"/aws/lambda/{name}")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "local")
        self._deadline = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _error(error: BaseException, error_type: str | None = None) -> dict[str, Any]:
    """An exception as the Lambda runtime reports it to the caller."""
    return {
        "errorMessage": str(error),
        "errorType": error_type or type(error).__name__,
        "requestId": "",
        "stackTrace": traceback.format_exception(error)[-8:],
    }


def _load_handler(spec: str) -> Any:
    module_name, function_name = spec.rsplit(".", 1)
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        # Lambda's own wording, so the caller sees what AWS would report
        raise _InitError(_error(error, "Runtime.ImportModuleError") | {
            "errorMessage": f"Unable to import module '{module_name}': {error}"}) from error
    handler = getattr(module, function_name, None)
    if handler is None:
        raise _InitError({"errorMessage": f"Handler '{function_name}' missing on module "
                                          f"'{module_name}'",
                          "errorType": "Runtime.HandlerNotFound", "requestId": "",
                          "stackTrace": []})
    return handler


class _InitError(Exception):
    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(payload["errorMessage"])
        self.payload = payload


def main() -> int:
    request_fd, reply_fd = int(sys.argv[1]), int(sys.argv[2])
    requests = os.fdopen(request_fd, "rb", buffering=0)
    replies = os.fdopen(reply_fd, "wb", buffering=0)
    os.dup2(2, 1)  # the function's prints and logs go to stderr, never into a reply
    sys.stdout = sys.stderr

    def send(message: dict[str, Any]) -> None:
        replies.write(json.dumps(message).encode() + b"\n")

    sys.path[:0] = json.loads(os.environ["LIGHTBOX_FUNCTION_PATH"])
    os.chdir(sys.path[0])  # Lambda runs handlers with the code's folder as the cwd
    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        handler = _load_handler(os.environ["_HANDLER"])
    except _InitError as error:
        send({"init_error": error.payload})
        return 1
    send({"ready": True,
          "init_ms": (time.perf_counter() - started) * 1000,
          "init_cpu_ms": (time.process_time() - cpu_started) * 1000})

    for line in requests:
        request = json.loads(line)
        context = LambdaContext(request.get("request_id") or str(uuid.uuid4()),
                                float(request.get("timeout", 3)))
        # As Lambda does per invocation: the X-Ray trace header (not sampled locally).
        os.environ["_X_AMZN_TRACE_ID"] = (f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};"
                                          f"Parent={uuid.uuid4().hex[:16]};Sampled=0")
        began, cpu_began = time.perf_counter(), time.process_time()
        try:
            result = handler(request["event"], context)
            reply: dict[str, Any] = {"result": json.loads(json.dumps(result))}
        except Exception as error:  # noqa: BLE001 - the runtime reports every exception
            reply = {"error": _error(error)}
        reply["duration_ms"] = (time.perf_counter() - began) * 1000
        reply["cpu_ms"] = (time.process_time() - cpu_began) * 1000
        send(reply)
    return 0


if __name__ == "__main__":
    sys.exit(main())
