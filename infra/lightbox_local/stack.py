"""The whole of Lightbox on a laptop: no AWS account, no tokens, no network.

    moto (S3, DynamoDB, Step Functions, SQS) ── a threaded server on 127.0.0.1
    the local engine (Replicate's API)        ── 127.0.0.1, signed webhooks
    the gateway (API Gateway, JWT authorizer) ── 127.0.0.1:PORT, routes from template.yaml
    the functions in functions/               ── worker processes of their own, each
                                                 with only its package (lambdas.py)

The resources are made from template.yaml (the table's keys, the state machine's
definition and substitutions, the functions and their events). S3 event
notifications go to an SQS queue in moto, and a pump hands each one to
`upload_received` as Lambda's S3 trigger would (moto cannot run Lambda code without
Docker). The sweeper runs on a timer, like its schedule.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import os
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self

import boto3
import httpx
from botocore.config import Config
from moto.server import ThreadedMotoServer

from lightbox_local.gateway import Gateway, GatewayServer
from lightbox_local.issuer import LocalIssuer
from lightbox_local.lambdas import (
    ACCOUNT,
    DEFAULT_CONCURRENCY,
    REGION,
    LocalLambda,
    discover_functions,
    function_arn,
)
from lightbox_local.template import ROOT, create_table, resources

log = logging.getLogger(__name__)

TABLE = "lightbox"
BUCKET = "lightbox-images"
QUEUE = "lightbox-upload-events"
STATE_MACHINE = "finish-image"
ASL = ROOT / "infra" / "finish_image.asl.json"
#: The documented default for local Stripe webhooks (`lightbox buy` signs with it).
LOCAL_STRIPE_WEBHOOK_SECRET = "whsec_lightbox_local_development_only"


@dataclass
class StackOptions:
    port: int = 0
    engine: dict[str, Any] = field(default_factory=dict)
    #: Seconds between sweeper runs; None runs it only when asked (tests).
    sweep_every: float | None = None
    log_level: str = "WARNING"
    #: Settings for the functions (environment variables), over the defaults.
    environment: dict[str, str] = field(default_factory=dict)
    #: Worker processes one function may run at once (its reserved concurrency wins).
    concurrency: int = DEFAULT_CONCURRENCY


class LocalStack:
    def __init__(self, options: StackOptions | None = None) -> None:
        self.options = options or StackOptions()
        self.moto: ThreadedMotoServer | None = None
        self.gateway_server: GatewayServer | None = None
        self.engine_server: Any = None
        self.lambdas: LocalLambda | None = None
        self.issuer: LocalIssuer | None = None
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.environment: dict[str, str] = {}

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> LocalStack:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        _serialise_moto_dynamodb_writes()
        _spare_moto_step_functions_repeated_work()
        _count_aws_requests()
        with _SFN_CLIENTS_LOCK:
            _SFN_CLIENTS.clear()
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.moto.start()
        host, port = self.moto.get_host_and_port()
        self.aws_url = f"http://{host}:{port}"
        # moto's server keeps its state in this process's backends, which outlive a
        # stopped stack: a new stack starts from nothing (tests start one per package).
        httpx.post(f"{self.aws_url}/moto-api/reset").raise_for_status()
        httpx.post(f"{self.aws_url}/moto-api/config",
                   json={"stepfunctions": {"execute_state_machine": True}}).raise_for_status()

        self.lambdas = LocalLambda(discover_functions(), concurrency=self.options.concurrency)
        self.issuer = LocalIssuer()
        gateway = Gateway(self.lambdas, self.issuer)
        self.gateway_server = GatewayServer(gateway, port=self.options.port)
        self.url = self.gateway_server.url
        self.issuer.issuer_url = f"{self.url}/local-issuer"

        from lightbox_local.engine.server import (
            Engine,
            EngineConfig,
            EngineServer,
            new_webhook_secret,
        )

        api_token = f"r8_local_{secrets.token_hex(12)}"
        webhook_secret = new_webhook_secret()
        engine = Engine(api_token=api_token, webhook_secret=webhook_secret,
                        config=EngineConfig(**self.options.engine))
        self.engine_server = EngineServer(engine)

        gateway.extra[("POST", "/local/sign-in")] = self._sign_in
        self.environment = self._environment(api_token, webhook_secret)
        self.lambdas.environment = self.environment
        # This process (tests, the CLI) reads the same table and bucket as the functions.
        os.environ.update(self.environment)
        _reset_lightbox_caches()
        self._create_resources()
        self.lambdas.install()

        self.engine_server.start()
        self.gateway_server.start()
        self._spawn(self._pump_upload_events, "s3-events")
        if self.options.sweep_every:
            self._spawn(self._sweep_on_schedule, "sweeper-schedule")
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self.gateway_server:
            self.gateway_server.stop()
        if self.engine_server:
            self.engine_server.stop()
        for thread in self._threads:
            thread.join(timeout=25)
        if self.lambdas:
            self.lambdas.uninstall()
            self.lambdas.close()
        if self.moto:
            self.moto.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def engine(self) -> Any:
        return self.engine_server.engine

    # --- configuration ----------------------------------------------------------------

    def _environment(self, api_token: str, webhook_secret: str) -> dict[str, str]:
        env = {
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_SESSION_TOKEN": "local",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": self.aws_url,
            "TABLE_NAME": TABLE,
            "BUCKET_NAME": BUCKET,
            "STATE_MACHINE_ARN": self.state_machine_arn,
            "WEBHOOK_BASE_URL": self.url,
            "APP_BASE_URL": self.url,
            # Locally secrets come from the environment; in AWS only these names do.
            "REPLICATE_API_TOKEN": api_token,
            "REPLICATE_API_TOKEN_PARAM": "",
            "REPLICATE_WEBHOOK_SECRET": webhook_secret,
            "REPLICATE_WEBHOOK_SECRET_PARAM": "",
            "REPLICATE_BASE_URL": self.engine_server.url,
            "REPLICATE_RATE_PER_MINUTE": "600",
            "STRIPE_WEBHOOK_SECRET": os.environ.get("STRIPE_WEBHOOK_SECRET",
                                                    LOCAL_STRIPE_WEBHOOK_SECRET),
            "STRIPE_WEBHOOK_SECRET_PARAM": "",
            "STRIPE_API_KEY": "",
            "STRIPE_API_KEY_PARAM": "",
            "CHECKOUT_MODE": "local",
            "POWERTOOLS_SERVICE_NAME": "lightbox",
            "POWERTOOLS_METRICS_NAMESPACE": "Lightbox",
            "POWERTOOLS_LOG_LEVEL": self.options.log_level,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }
        env.update(self.options.environment)
        return env

    @property
    def state_machine_arn(self) -> str:
        return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{STATE_MACHINE}"

    def client(self, service: str) -> Any:
        config = Config(signature_version="s3v4", s3={"addressing_style": "path"}) \
            if service == "s3" else None
        return boto3.client(service, region_name=REGION, endpoint_url=self.aws_url,
                            aws_access_key_id="local", aws_secret_access_key="local",
                            config=config)

    def _create_resources(self) -> None:
        create_table(self.client("dynamodb"), TABLE)
        sqs = self.client("sqs")
        queue_url = sqs.create_queue(QueueName=QUEUE,
                                     Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
        self.queue_url = queue_url
        queue_arn = sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        s3 = self.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_cors(Bucket=BUCKET, CORSConfiguration=_bucket_cors())
        s3.put_bucket_notification_configuration(
            Bucket=BUCKET,
            NotificationConfiguration={"QueueConfigurations": [{
                "QueueArn": queue_arn,
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "uploads/"}]}},
            }]},
        )
        self.client("stepfunctions").create_state_machine(
            name=STATE_MACHINE,
            definition=state_machine_definition(self.lambdas),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/finish-image",
            type="STANDARD",
        )

    # --- event sources --------------------------------------------------------------------

    def _spawn(self, target: Any, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _pump_upload_events(self) -> None:
        """S3 → upload_received, one notification at a time, as Lambda's trigger does."""
        sqs = self.client("sqs")
        while not self._stopping.is_set():
            try:
                messages = sqs.receive_message(QueueUrl=self.queue_url, WaitTimeSeconds=1,
                                               MaxNumberOfMessages=10).get("Messages", [])
            except Exception:  # the server is going away
                if self._stopping.is_set():
                    return
                raise
            for message in messages:
                event = json.loads(message["Body"])
                if "Records" in event:  # S3 also sends a test event on configuration
                    try:
                        self.lambdas.invoke("upload_received", event)
                    except Exception:
                        log.exception("upload_received failed; the event is retried")
                        continue
                sqs.delete_message(QueueUrl=self.queue_url,
                                   ReceiptHandle=message["ReceiptHandle"])

    def _sweep_on_schedule(self) -> None:
        while not self._stopping.wait(self.options.sweep_every):
            try:
                self.run_sweeper()
            except Exception:
                log.exception("sweeper failed")

    def run_sweeper(self, now: datetime | None = None) -> dict[str, Any]:
        """Invoke the sweeper with a scheduled event whose time is `now`."""
        moment = (now or datetime.now(UTC)).astimezone(UTC)
        event = json.loads((ROOT / "events" / "sweeper_schedule.json").read_text())
        event["time"] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        return self.lambdas.invoke("sweeper", event)

    # --- helpers for the CLI and tests -----------------------------------------------------

    def _sign_in(self, request: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        """POST /local/sign-in {"user": ID}: a token from the local issuer (no password:
        this route exists only on a laptop's stack)."""
        try:
            user = str(json.loads(request["body"] or b"{}")["user"])
        except (ValueError, KeyError, TypeError):
            return 400, {"content-type": "application/json"}, b'{"error": "send {\\"user\\": ID}"}'
        if not _valid_user_id(user):
            return 422, {"content-type": "application/json"}, json.dumps(
                {"error": "user ids are 1-64 letters, digits, '-' or '_'"}).encode()
        token = self.token(user)
        return 200, {"content-type": "application/json"}, json.dumps(
            {"token": token, "user": user}).encode()

    def token(self, user_id: str) -> str:
        return self.issuer.sign_in(user_id)

    def wait_for(self, predicate: Any, timeout: float) -> bool:
        return self.lambdas.wait(predicate, timeout)


def _valid_user_id(user: str) -> bool:
    return 0 < len(user) <= 64 and all(c.isalnum() or c in "-_" for c in user)


def state_machine_definition(lambdas: LocalLambda) -> str:
    """The ASL from infra/ with DefinitionSubstitutions resolved to the local functions."""
    definition = ASL.read_text()
    (machine,) = resources("AWS::Serverless::StateMachine").values()
    by_logical_id = {f.logical_id: f for f in lambdas.functions.values()}
    for name, value in machine["Properties"]["DefinitionSubstitutions"].items():
        logical_id = value["Fn::GetAtt"][0]
        definition = definition.replace("${" + name + "}",
                                        function_arn(by_logical_id[logical_id].name))
    if "${" in definition:
        raise ValueError("unresolved substitution in the state machine definition")
    return definition


def _bucket_cors() -> dict[str, Any]:
    (bucket,) = resources("AWS::S3::Bucket").values()
    rules = bucket["Properties"]["CorsConfiguration"]["CorsRules"]
    # CloudFormation's property names differ from the S3 API's for two of them.
    renamed = {"ExposedHeaders": "ExposeHeaders", "MaxAge": "MaxAgeSeconds"}
    return {"CORSRules": [
        {**{renamed.get(k, k): v for k, v in rule.items() if k != "AllowedOrigins"},
         # The page is served from the gateway's own origin on a random port.
         "AllowedOrigins": ["*"]}
        for rule in rules
    ]}


_MOTO_WRITE_LOCK = threading.RLock()


def _serialise_moto_dynamodb_writes() -> None:
    """Give moto's DynamoDB the per-request atomicity real DynamoDB has.

    moto applies a TransactWriteItems by copying the table, writing, and putting the
    copy back when a condition fails, without a lock: a concurrent write committed in
    between would be undone, which DynamoDB never does. Running moto's write
    operations one at a time restores that guarantee; the races Lightbox is built for
    (read, decide, conditional write from many callers) still interleave between
    requests.
    """
    from moto.dynamodb.models import DynamoDBBackend

    if getattr(DynamoDBBackend, "_lightbox_serialised", False):
        return
    for name in ("put_item", "update_item", "delete_item", "transact_write_items",
                 "batch_write_item"):
        original = getattr(DynamoDBBackend, name, None)
        if original is None:
            continue

        def serialised(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with _MOTO_WRITE_LOCK:
                return __original(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, serialised)
    DynamoDBBackend._lightbox_serialised = True  # type: ignore[attr-defined]


#: Step Functions' boto3 clients. A client copies the session's event hooks when made,
#: so each stack starts with none: a client made for a stopped stack would invoke its
#: functions.
_SFN_CLIENTS: dict[tuple[str, str], Any] = {}
_SFN_CLIENTS_LOCK = threading.Lock()


def _spare_moto_step_functions_repeated_work() -> None:
    """Stop moto's Step Functions from redoing per execution what AWS does once.

    moto parses the state machine's definition again for every execution, compiles
    every JSONPath again at every step, and makes a new boto3 client for every Lambda
    task. With one execution per image, a 200-shot job spends more CPU there than in
    Lightbox. The parsed program is kept per definition and shared (its components
    are set when parsed and hold no execution state: that lives in each execution's
    environment), compiled paths and clients are cached, and so is the server's
    lookup of which service a request is for. What an execution or a request does is
    unchanged; only the repeated set-up goes.
    """
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import (
        lambda_eval_utils,
    )
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.asl.utils import json_path
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    if getattr(ExecutionWorker, "_lightbox_cached", False):
        return
    json_path.parse = functools.lru_cache(maxsize=1024)(json_path.parse)
    result_path.parse = functools.lru_cache(maxsize=1024)(result_path.parse)
    make_client = lambda_eval_utils.boto_client_for
    def cached_client(region: str, service: str, state_credentials: Any = None) -> Any:
        with _SFN_CLIENTS_LOCK:
            if (region, service) not in _SFN_CLIENTS:
                _SFN_CLIENTS[(region, service)] = make_client(region, service, state_credentials)
            return _SFN_CLIENTS[(region, service)]

    lambda_eval_utils.boto_client_for = cached_client

    programs: dict[str, Any] = {}
    programs_lock = threading.Lock()

    def parsed_program(self: Any) -> Any:
        definition = self._evaluation_details.state_machine_details.definition
        with programs_lock:
            if definition not in programs:
                programs[definition] = AmazonStateLanguageParser.parse(definition)[0]
            return programs[definition]

    ExecutionWorker._get_evaluation_entrypoint = parsed_program
    ExecutionWorker._lightbox_cached = True

    # moto's server finds the backend for every request under one global lock, by
    # trying each service's URL patterns in turn: with hundreds of requests a second
    # that lock is the queue. The answer depends on the host alone; keep it.
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    find_backend = DomainDispatcherApplication.get_backend_for_host
    backends_by_host: dict[str, Any] = {}

    def cached_backend(self: Any, host: str | None) -> Any:
        if host is None:
            return None
        if host not in backends_by_host:
            backends_by_host[host] = find_backend(self, host)
        return backends_by_host[host]

    DomainDispatcherApplication.get_backend_for_host = cached_backend


class AwsRequests:
    """The AWS requests Lightbox's functions make, counted where moto receives them.

    A request counts when its User-Agent says it comes from a Lambda function
    (botocore adds ``exec-env/AWS_Lambda_...`` under AWS_EXECUTION_ENV, which the local
    runtime sets as Lambda does): the tests' and the CLI's own reads are not counted.
    Keyed by (service, operation); DynamoDB's batch and transaction writes also count
    their items (``("dynamodb", "TransactWriteItems:items")``), which is what they bill.
    """

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def snapshot(self) -> Counter[tuple[str, str]]:
        with self._lock:
            return Counter(self._counts)

    def record(self, environ: dict[str, Any]) -> None:
        if "exec-env/AWS_Lambda" not in environ.get("HTTP_USER_AGENT", ""):
            return
        scope = environ.get("HTTP_AUTHORIZATION", "").split("Credential=", 1)[-1].split("/")
        service = scope[3] if len(scope) > 3 else "unknown"
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        operation = target.split(".", 1)[1] if "." in target else environ["REQUEST_METHOD"]
        items = 0
        if operation in ("TransactWriteItems", "BatchWriteItem"):
            items = _count_items(environ, operation)
        with self._lock:
            self._counts[(service, operation)] += 1
            if items:
                self._counts[(service, f"{operation}:items")] += items


def _count_items(environ: dict[str, Any], operation: str) -> int:
    """Items in a batch or transaction body (the body is read and put back)."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    try:
        request = json.loads(body)
    except ValueError:
        return 0
    if operation == "TransactWriteItems":
        return len(request.get("TransactItems", []))
    return sum(len(writes) for writes in request.get("RequestItems", {}).values())


AWS_REQUESTS = AwsRequests()


def _count_aws_requests() -> None:
    """Count every request moto's server receives (see AwsRequests)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    if getattr(DomainDispatcherApplication, "_lightbox_counted", False):
        return
    dispatch = DomainDispatcherApplication.__call__

    def counted(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        AWS_REQUESTS.record(environ)
        return dispatch(self, environ, start_response)

    DomainDispatcherApplication.__call__ = counted
    DomainDispatcherApplication._lightbox_counted = True  # type: ignore[attr-defined]


def _reset_lightbox_caches() -> None:
    """Settings and clients are per process (per container in AWS); a new stack needs new ones."""
    from lightbox.config import get_settings
    from lightbox.services.context import get_context

    get_settings.cache_clear()
    get_context.cache_clear()


def wait_until(predicate: Any, timeout: float, step: float = 0.2) -> bool:
    """For callers outside the stack (the CLI over HTTP): check, then wait a little."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
