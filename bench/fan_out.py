"""How the fan-out scales: jobs of 1, 50 and 200 shots through the local flow, and what
the same jobs would take and cost in AWS.

    .venv/bin/python bench/fan_out.py [--shots 1,50,200] [--latency 2] [--repeat 1]

The whole local stack runs as in `lightbox dev`: moto executes the real state machine,
every function runs in worker processes of its own from its own package (the laptop
runtime), the local engine serves Replicate's API. The engine answers every
prediction after `latency` seconds with a small pre-made image ("fast" mode), so the
figures measure Lightbox's flow (webhooks, executions, fan-out, checks, settlement)
and not the stand-in models' CPU work. A 1-shot job runs first, unmeasured, so every
function has one warm worker, as a deployment that is in use has.

Per job:
- e2e: from the photo's upload to the job's final status, on this machine;
- cpu: CPU seconds of Lightbox's own functions (their invocations and cold starts; the
  engine, moto and the state machine interpreter are not counted);
- the AWS projection: the critical path if every invocation ran on its own Lambda:
  intake, the cutout, each shot's chain of measured invocation times after its model
  result (webhook, Fetch, Check, Deliver), plus a cold start of each function where
  the shots' concurrency needs more containers than the warm ones, then Finish;
- the AWS cost: invocations x measured duration (cold starts included, as Lambda
  bills them) x memory at arm64 prices, state transitions (from the executions'
  histories), DynamoDB and S3 requests (counted where moto receives them from the
  functions) and API Gateway requests, at the list prices in
  shared/lightbox/catalog/aws_prices.yaml.

Targets (issue "Deployable for real"): e2e(200)/e2e(1) at most 6 on a 2-core laptop,
the AWS-projected ratio at most 1.5, at most $0.001 per shot. The last line is one JSON
object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO / "infra" / "lightbox_local" / "samples" / "skimage-coffee.png"
#: A shot's functions after its model result, in order.
SHOT_CHAIN = ("replicate_webhook", "fetch_output", "check_shot", "settle_shot")
#: Functions API Gateway invokes (each call is an API request).
GATEWAY_FUNCTIONS = ("api", "replicate_webhook", "stripe_webhook")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shots", default="1,50,200")
    parser.add_argument("--latency", type=float, default=2.0, help="model seconds per prediction")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--scene", default="white-studio")
    args = parser.parse_args()
    sizes = [int(n) for n in args.shots.split(",")]

    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    from lightbox.catalog.costs import load_aws_prices
    from lightbox.models import JobStatus
    from lightbox.services.context import get_context
    from lightbox.services.payments import build_signed_checkout_event
    from lightbox_local.stack import AWS_REQUESTS, LocalStack, StackOptions

    options = StackOptions(
        log_level="ERROR",
        # Shots come back at 1640 px: the 2048-px "original" preset takes that with its
        # own Lanczos fit (at most 1.25x), so each shot is exactly one compose prediction.
        engine={"latency": args.latency, "jitter": 0.0, "mode": "fast", "fast_size": 1640},
    )
    photo = PHOTO.read_bytes()
    prices = load_aws_prices()
    figures: dict[str, Any] = {}
    details: list[dict[str, Any]] = []
    with LocalStack(options) as stack:
        user = "bench-fan-out"
        token = httpx.post(f"{stack.url}/local/sign-in", json={"user": user}).json()["token"]
        api = httpx.Client(base_url=stack.url, headers={"authorization": f"Bearer {token}"},
                           timeout=120)
        needed = (sum(sizes) * args.repeat) + 1
        for _ in range(-(-needed // 200)):  # enough starter packs for every job
            body, signature = build_signed_checkout_event(
                user, "starter", secret=stack.environment["STRIPE_WEBHOOK_SECRET"])
            api.post("/webhooks/stripe", content=body,
                     headers={"stripe-signature": signature}).raise_for_status()
        store = get_context().store
        sfn = stack.client("stepfunctions")

        def run_job(shots: int) -> dict[str, Any] | None:
            response = api.post("/api/uploads", json={
                "scenes": [args.scene], "variants": shots, "presets": ["original"]})
            response.raise_for_status()
            ticket = response.json()
            first = len(stack.lambdas.invocation_log)
            requests_before = AWS_REQUESTS.snapshot()
            inits_before = _init_cpu_ms(stack)
            started = time.perf_counter()
            posted = httpx.post(ticket["url"], data={**ticket["fields"],
                                                     "Content-Type": "image/png"},
                                files={"file": ("photo.png", photo, "image/png")})
            posted.raise_for_status()

            def finished(job_id: str = ticket["job_id"]) -> bool:
                job = store.get_job(job_id)
                return job is not None and job.status.terminal

            if not stack.wait_for(finished, timeout=900):
                print(f"job of {shots} shots did not finish in 900 s", file=sys.stderr)
                return None
            elapsed = time.perf_counter() - started
            finished_at = datetime.now(UTC)
            job = store.get_job(ticket["job_id"])
            assert job is not None
            invocations = list(stack.lambdas.invocation_log)[first:]
            requests = AWS_REQUESTS.snapshot() - requests_before
            shot_records = store.get_shots(job.job_id)
            cpu_ms = sum(i.cpu_ms for i in invocations) + _init_cpu_ms(stack) - inits_before
            model = model_timeline(stack.engine, shot_records, finished_at)
            cost = aws_cost(stack, sfn, prices, job, shot_records, invocations, requests)
            if job.status != JobStatus.DONE:
                print(f"job {job.job_id} ended {job.status}: not a clean run", file=sys.stderr)
            raw[job.job_id] = (job, shot_records, invocations)
            return {"job_id": job.job_id, "shots": shots, "e2e_s": round(elapsed, 3),
                    "cpu_s": round(cpu_ms / 1000, 3), **model,
                    "aws_cost_usd": round(cost, 6),
                    "delivered": len(job.delivered), "status": job.status.value}

        print(f"fan-out: model latency {args.latency:.1f} s, engine mode fast, scene "
              f"{args.scene}; warming up with one 1-shot job")
        raw: dict[str, tuple[Any, list[Any], list[Any]]] = {}
        warm_up = run_job(1)
        if warm_up is None:
            return 1
        for shots in sizes:
            for _ in range(args.repeat):
                result = run_job(shots)
                if result is None:
                    return 1
                details.append(result)
        # What each function takes in AWS: warm durations from the smallest jobs, cold
        # starts from the warm-up (every function's first invocation).
        smallest_runs = [d for d in details if d["shots"] == min(sizes)]
        reference, _ = reference_durations(
            [call for d in smallest_runs for call in raw[d["job_id"]][2]])
        _, cold = reference_durations(raw[warm_up["job_id"]][2])
        print(f"{'shots':>6} {'e2e s':>8} {'cpu s':>7} {'fan-out s':>10} {'peak':>5} "
              f"{'tail s':>7} {'aws e2e s':>10} {'aws $/shot':>11} {'status':>9}")
        for result in details:
            job, shot_records, invocations = raw[result["job_id"]]
            result["aws_e2e_s"] = round(aws_projection(
                stack, job, shot_records, invocations, reference, cold), 3)
            print(f"{result['shots']:>6} {result['e2e_s']:>8.2f} {result['cpu_s']:>7.2f} "
                  f"{result['fan_out_s']:>10.2f} {result['peak']:>5} {result['tail_s']:>7.2f} "
                  f"{result['aws_e2e_s']:>10.2f} {result['aws_cost_usd'] / result['shots']:>11.6f} "
                  f"{result['status']:>9}")
        figures["aws_function_s"] = {f: round(v, 3) for f, v in sorted(reference.items())}
        figures["aws_cold_start_s"] = {f: round(v, 3) for f, v in sorted(cold.items())}
        for shots in sizes:
            mine = [d for d in details if d["shots"] == shots]
            figures[f"e2e_{shots}_s"] = round(statistics.median(d["e2e_s"] for d in mine), 3)
            figures[f"results_in_{shots}_s"] = round(statistics.median(
                d["e2e_s"] - d["tail_s"] for d in mine), 3)
            figures[f"aws_e2e_{shots}_s"] = round(statistics.median(
                d["aws_e2e_s"] for d in mine), 3)

    smallest, largest = min(sizes), max(sizes)
    ratio = figures[f"e2e_{largest}_s"] / figures[f"e2e_{smallest}_s"]
    figures[f"ratio_{largest}_over_{smallest}"] = round(ratio, 3)
    figures[f"results_in_ratio_{largest}_over_{smallest}"] = round(
        figures[f"results_in_{largest}_s"] / figures[f"results_in_{smallest}_s"], 3)
    aws_ratio = figures[f"aws_e2e_{largest}_s"] / figures[f"aws_e2e_{smallest}_s"]
    figures[f"aws_ratio_{largest}_over_{smallest}"] = round(aws_ratio, 3)
    shots_total = sum(d["shots"] for d in details)
    figures["cpu_s_per_shot"] = round(sum(d["cpu_s"] for d in details) / shots_total, 4)
    figures["aws_cost_per_shot_usd"] = round(
        sum(d["aws_cost_usd"] for d in details) / shots_total, 6)
    print(f"e2e({largest}) / e2e({smallest}) = {ratio:.2f} on this machine's "
          f"{os.cpu_count()} cores (target <= 6)")
    print(f"AWS-projected e2e({largest}) / e2e({smallest}) = {aws_ratio:.2f} (target <= 1.5)")
    print(f"Lightbox's own CPU per shot {figures['cpu_s_per_shot']:.3f} s; AWS cost per shot "
          f"${figures['aws_cost_per_shot_usd']:.6f} (target <= $0.001; prices as of "
          f"{prices.as_of})")
    print(json.dumps({"bench": "fan_out", "latency_s": args.latency, "cpus": os.cpu_count(),
                      **figures, "runs": details}))
    return 0


def _init_cpu_ms(stack: Any) -> float:
    return sum(sum(s.init_cpu_ms) for s in stack.lambdas.stats().values())


def model_timeline(engine: Any, shots: list[Any], finished_at: datetime) -> dict[str, Any]:
    """When the job's compose predictions ran, from the engine's own records.

    fan_out_s: first to last compose prediction created (how long the fan-out took to
    start every shot); peak: most compose predictions running at once; tail_s: from
    the last compose prediction finishing to the job's end (checks, delivery, finish).
    """
    spans = [span for span in (_span(engine, shot.prediction_id) for shot in shots) if span]
    if not spans:
        return {"fan_out_s": 0.0, "peak": 0, "tail_s": 0.0}
    starts = sorted(start for start, _ in spans)
    ends = sorted(end for _, end in spans)
    peak = running = 0
    events = sorted([(t, 1) for t in starts] + [(t, -1) for t in ends], key=lambda e: (e[0], e[1]))
    for _, change in events:
        running += change
        peak = max(peak, running)
    return {
        "fan_out_s": round(starts[-1] - starts[0], 3),
        "peak": peak,
        "tail_s": round(finished_at.timestamp() - ends[-1], 3),
    }


def _span(engine: Any, prediction_id: str | None) -> tuple[float, float] | None:
    """(created, completed) of a prediction, as epoch seconds."""
    record = engine.get(prediction_id) if prediction_id else None
    if record is None or not record.completed_at:
        return None
    return (datetime.fromisoformat(record.created_at).timestamp(),
            datetime.fromisoformat(record.completed_at).timestamp())


def aws_projection(stack: Any, job: Any, shots: list[Any], invocations: list[Any],
                   reference: dict[str, float], cold: dict[str, float]) -> float:
    """Seconds from upload to the job's end if every invocation had a Lambda of its own.

    Durations are each function's warm duration measured with nothing competing (the
    1-shot jobs: here a 200-shot job's invocations share two cores with each other and
    with moto, which measures the laptop, not Lambda). From the job itself: each
    prediction's model time and when the fan-out created it (measured here, so on the
    slow side). Each function starts with one warm container; a shot that finds every
    container of a function busy starts a new one, paying that function's cold start.
    Webhook deliveries and state transitions are taken to cost no time.
    """
    cutout = job.cutout_prediction_id
    cutout_span = _span(stack.engine, cutout)
    before = (reference.get("upload_received", 0.0)
              + (cutout_span[1] - cutout_span[0] if cutout_span else 0.0)
              + reference.get("replicate_webhook", 0.0) + reference.get("fetch_output", 0.0))
    fan_outs = sorted(c.started for c in invocations if c.function == "fan_out")
    fan_out_start = fan_outs[0] if fan_outs else 0.0
    ready = []
    for shot in shots:
        span = _span(stack.engine, shot.prediction_id)
        if span is not None:
            ready.append(span[1] - fan_out_start)
    busy_until: dict[str, list[float]] = {function: [0.0] for function in SHOT_CHAIN}
    ends = []
    for clock in sorted(ready):
        for function in SHOT_CHAIN:
            containers = busy_until[function]
            free = [i for i, until in enumerate(containers) if until <= clock]
            if free:
                index = free[0]
            else:
                containers.append(0.0)
                index = len(containers) - 1
                clock += cold.get(function, 0.0)
            clock += reference.get(function, 0.0)
            containers[index] = clock
        ends.append(clock)
    return before + (max(ends) if ends else 0.0) + reference.get("finish_job", 0.0)


def reference_durations(invocations: list[Any]) -> tuple[dict[str, float], dict[str, float]]:
    """Each function's warm duration, and what a cold start adds (its init and the slower
    first invocation), in seconds, from invocations that ran with nothing competing."""
    warm: dict[str, list[float]] = defaultdict(list)
    first: dict[str, list[float]] = defaultdict(list)
    for call in invocations:
        if call.cold_start_ms is None:
            warm[call.function].append(call.duration_ms / 1000)
        else:
            first[call.function].append((call.cold_start_ms + call.duration_ms) / 1000)
    durations = {f: statistics.median(values) for f, values in warm.items()}
    cold = {f: max(0.0, statistics.median(values) - durations.get(f, 0.0))
            for f, values in first.items()}
    return durations, cold


def aws_cost(stack: Any, sfn: Any, prices: Any, job: Any, shots: list[Any],
             invocations: list[Any], requests: Counter) -> float:
    """What the job cost in AWS at list prices (see the module's docstring)."""
    memory = {name: spec.memory for name, spec in stack.lambdas.functions.items()}
    gb_seconds = sum((call.duration_ms + (call.cold_start_ms or 0.0)) / 1000
                     * memory[call.function] / 1024 for call in invocations)
    cost = prices.lambda_cost(len(invocations), gb_seconds)
    predictions = [job.cutout_prediction_id] + [s.prediction_id for s in shots]
    transitions = 0
    for prediction_id in filter(None, predictions):
        arn = f"{stack.state_machine_arn.replace(':stateMachine:', ':execution:')}:{prediction_id}"
        history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        transitions += sum(1 for event in history if event["type"].endswith("StateEntered"))
    cost += prices.transitions_cost(transitions)
    dynamo = {op: n for (service, op), n in requests.items() if service == "dynamodb"}
    writes = (sum(dynamo.get(op, 0) for op in ("PutItem", "UpdateItem", "DeleteItem"))
              + 2 * dynamo.get("TransactWriteItems:items", 0)
              + dynamo.get("BatchWriteItem:items", 0))
    reads = sum(dynamo.get(op, 0) for op in ("GetItem", "Query", "Scan", "BatchGetItem"))
    cost += prices.dynamodb_cost(writes, reads)
    s3 = {op: n for (service, op), n in requests.items() if service == "s3"}
    cost += prices.s3_cost(s3.get("PUT", 0) + s3.get("POST", 0),
                           s3.get("GET", 0) + s3.get("HEAD", 0))
    cost += prices.api_cost(sum(1 for c in invocations if c.function in GATEWAY_FUNCTIONS))
    return cost


if __name__ == "__main__":
    sys.exit(main())
