"""How well the fan-out parallelises: jobs of 1, 50 and 200 shots through the local flow.

    .venv/bin/python bench/fan_out.py [--shots 1,50,200] [--latency 2] [--repeat 1]

The whole local stack runs as in `lightbox dev`: moto executes the real state machine,
the real handlers run in-process, the local engine serves Replicate's API. The engine
is set to answer every prediction after `latency` seconds with a small pre-made image
("fast" mode), so the figures measure Lightbox's flow (webhooks, executions, fan-out,
checks, settlement) and not the stand-in models' CPU work.

End-to-end time runs from the photo's upload to the job's final status. A fan-out
that is really parallel finishes 200 shots in about the time of one: the ratio
e2e(200) / e2e(1) is the figure to watch (target at most 1.5). The last line is one
JSON object with every figure, for tracking over time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO / "infra" / "lightbox_local" / "samples" / "skimage-coffee.png"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shots", default="1,50,200")
    parser.add_argument("--latency", type=float, default=2.0, help="model seconds per prediction")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--scene", default="white-studio")
    args = parser.parse_args()
    sizes = [int(n) for n in args.shots.split(",")]

    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    from lightbox.models import JobStatus
    from lightbox.services.context import get_context
    from lightbox.services.payments import build_signed_checkout_event
    from lightbox_local.stack import LocalStack, StackOptions

    options = StackOptions(
        log_level="ERROR",
        # Shots come back at 1640 px: the 2048-px "original" preset takes that with its
        # own Lanczos fit (at most 1.25x), so each shot is exactly one compose prediction.
        engine={"latency": args.latency, "jitter": 0.0, "mode": "fast", "fast_size": 1640},
    )
    photo = PHOTO.read_bytes()
    figures: dict[str, float] = {}
    details: list[dict[str, object]] = []
    with LocalStack(options) as stack:
        user = "bench-fan-out"
        token = httpx.post(f"{stack.url}/local/sign-in", json={"user": user}).json()["token"]
        api = httpx.Client(base_url=stack.url, headers={"authorization": f"Bearer {token}"},
                           timeout=120)
        needed = sum(sizes) * args.repeat
        for _ in range(-(-needed // 200)):  # enough starter packs for every job
            body, signature = build_signed_checkout_event(
                user, "starter", secret=stack.environment["STRIPE_WEBHOOK_SECRET"])
            api.post("/webhooks/stripe", content=body,
                     headers={"stripe-signature": signature}).raise_for_status()
        store = get_context().store

        print(f"fan-out: model latency {args.latency:.1f} s, engine mode fast, scene "
              f"{args.scene}")
        print(f"{'shots':>6} {'run':>4} {'e2e s':>8} {'cpu s':>8} {'fan-out s':>10} "
              f"{'peak':>5} {'tail s':>7} {'delivered':>10} {'status':>12}")
        for shots in sizes:
            runs = []
            for run in range(args.repeat):
                response = api.post("/api/uploads", json={
                    "scenes": [args.scene], "variants": shots, "presets": ["original"]})
                response.raise_for_status()
                ticket = response.json()
                started, cpu_started = time.perf_counter(), time.process_time()
                posted = httpx.post(ticket["url"], data={**ticket["fields"],
                                                         "Content-Type": "image/png"},
                                    files={"file": ("photo.png", photo, "image/png")})
                posted.raise_for_status()

                def finished(job_id: str = ticket["job_id"]) -> bool:
                    job = store.get_job(job_id)
                    return job is not None and job.status.terminal

                if not stack.wait_for(finished, timeout=600):
                    print(f"job of {shots} shots did not finish in 600 s", file=sys.stderr)
                    return 1
                elapsed = time.perf_counter() - started
                finished_at = datetime.now(UTC)
                cpu = time.process_time() - cpu_started
                job = store.get_job(ticket["job_id"])
                assert job is not None
                delivered = len(job.delivered)
                model = model_timeline(stack.engine, store.get_shots(job.job_id), finished_at)
                print(f"{shots:>6} {run + 1:>4} {elapsed:>8.2f} {cpu:>8.2f} "
                      f"{model['fan_out_s']:>10.2f} {model['peak']:>5} {model['tail_s']:>7.2f} "
                      f"{delivered:>10} {job.status.value:>12}")
                if job.status != JobStatus.DONE:
                    print(f"job {job.job_id} ended {job.status}: not a clean run",
                          file=sys.stderr)
                runs.append(elapsed)
                details.append({"shots": shots, "e2e_s": round(elapsed, 3),
                                "cpu_s": round(cpu, 3), **model,
                                "delivered": delivered, "status": job.status.value})
            figures[f"e2e_{shots}_s"] = round(statistics.median(runs), 3)
            figures[f"results_in_{shots}_s"] = round(statistics.median(
                d["e2e_s"] - d["tail_s"] for d in details if d["shots"] == shots), 3)

    smallest, largest = min(sizes), max(sizes)
    ratio = figures[f"e2e_{largest}_s"] / figures[f"e2e_{smallest}_s"]
    figures[f"ratio_{largest}_over_{smallest}"] = round(ratio, 3)
    results_ratio = (figures[f"results_in_{largest}_s"]
                     / figures[f"results_in_{smallest}_s"])
    figures[f"results_in_ratio_{largest}_over_{smallest}"] = round(results_ratio, 3)
    print(f"e2e({largest}) / e2e({smallest}) = {ratio:.2f}  (target <= 1.5)")
    print(f"until every model result is in: {results_ratio:.2f}x; the rest is the tail of "
          f"checks and deliveries, which share this process's {os.cpu_count()} cores here "
          "and run in their own Lambdas in AWS")
    print(json.dumps({"bench": "fan_out", "latency_s": args.latency, "cpus": os.cpu_count(),
                      **figures, "runs": details}))
    return 0


def model_timeline(engine: Any, shots: list[Any], finished_at: datetime) -> dict[str, Any]:
    """When the job's compose predictions ran, from the engine's own records.

    fan_out_s: first to last compose prediction created (how long the fan-out took to
    start every shot); peak: most compose predictions running at once; tail_s: from
    the last compose prediction finishing to the job's end (checks, delivery, finish).
    """
    records = [engine.get(shot.prediction_id) for shot in shots if shot.prediction_id]
    spans = [(datetime.fromisoformat(r.created_at), datetime.fromisoformat(r.completed_at))
             for r in records if r is not None and r.completed_at]
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
        "fan_out_s": round((starts[-1] - starts[0]).total_seconds(), 3),
        "peak": peak,
        "tail_s": round((finished_at - ends[-1]).total_seconds(), 3),
    }


if __name__ == "__main__":
    sys.exit(main())
