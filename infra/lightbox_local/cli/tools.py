"""`lightbox tool NAME PHOTO --out FILE`: one single-image tool, one credit.

    lightbox tool remove-background PHOTO --out cutout.png
    lightbox tool upscale PHOTO --out big.png --scale 4
    lightbox tool fit PHOTO --out amazon.jpg --preset amazon-main

The photo takes the path a browser's does (POST /api/tools, the presigned POST, the
model's webhook, the state machine); the image is saved when the job is done.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import httpx

from lightbox.catalog.presets import load_presets
from lightbox.models import ToolName
from lightbox.services.tools import DEFAULT_FIT_PRESET, UPSCALE_FACTORS
from lightbox_local.cli.session import (
    CliError,
    Session,
    add_api_option,
    api_or_local_stack,
    buy,
    ticket_from,
    upload_photo,
    wait_for_job,
)

_SUFFIXES = {"image/png": {".png"}, "image/jpeg": {".jpg", ".jpeg"}, "image/webp": {".webp"}}


def add_tool_command(commands: argparse._SubParsersAction) -> None:
    tool = commands.add_parser(
        "tool", help="run a single-image tool on a photo (one credit)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    tool.add_argument("name", choices=[t.value for t in ToolName], metavar="NAME",
                      help="remove-background, upscale or fit")
    tool.add_argument("photo", type=Path, metavar="PHOTO")
    tool.add_argument("--out", type=Path, required=True, metavar="FILE",
                      help="where the image is saved")
    tool.add_argument("--scale", type=int, choices=UPSCALE_FACTORS, default=None,
                      help=f"upscale: how many times larger (default {UPSCALE_FACTORS[0]})")
    tool.add_argument("--preset", metavar="ID", default=None,
                      help=f"fit: the marketplace preset (default {DEFAULT_FIT_PRESET}): "
                           f"{', '.join(load_presets())}")
    tool.add_argument("--user", default="demo-shop")
    tool.add_argument("--buy", metavar="PACK", default=None,
                      help="buy this credit pack first (locally, through the signed webhook)")
    tool.add_argument("--timeout", type=float, default=600.0)
    add_api_option(tool)
    tool.set_defaults(run=run_tool)


def run_tool(args: argparse.Namespace) -> int:
    if not args.photo.is_file():
        raise CliError(f"no such photo: {args.photo}")
    options = _options(args)
    with api_or_local_stack(args.api) as (api, _):
        if args.buy:
            buy(api, args.user, args.buy)
        session = Session(api, args.user)
        ticket = ticket_from(session.post("/api/tools", {"tool": args.name, "options": options}),
                             args.user)
        print(f"Job {ticket['job_id']}: {args.name}, {ticket['cost']} credit reserved")
        upload_photo(ticket, args.photo)
        job = wait_for_job(session, ticket["job_id"], args.timeout, _progress_line)
        return _save(job, args.out)


def _options(args: argparse.Namespace) -> dict[str, Any]:
    if args.scale is not None and args.name != ToolName.UPSCALE:
        raise CliError("--scale is for the upscale tool")
    if args.preset is not None and args.name != ToolName.FIT:
        raise CliError("--preset is for the fit tool")
    if args.name == ToolName.UPSCALE:
        return {"scale": args.scale or UPSCALE_FACTORS[0]}
    if args.name == ToolName.FIT:
        preset = args.preset or DEFAULT_FIT_PRESET
        if preset not in load_presets():
            raise CliError(f"unknown preset {preset}; choose from {', '.join(load_presets())}")
        return {"preset": preset}
    return {}


def _progress_line(job: dict[str, Any]) -> str:
    return str(job["status"])


def _save(job: dict[str, Any], out: Path) -> int:
    result = job.get("result")
    if job["status"] != "done" or not result:
        print(f"Job {job['job_id']} {job['status']}: {job.get('reason') or 'no image'} "
              "(the credit was refunded)", file=sys.stderr)
        return 4
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(httpx.get(result["url"], timeout=120).raise_for_status().content)
    kind = result["content_type"]
    print(f"{out}: {result['width']}x{result['height']} {kind}, 1 credit spent")
    if out.suffix.lower() not in _SUFFIXES.get(kind, {out.suffix.lower()}):
        print(f"  (the file is {kind}, whatever its name says)")
    report = result.get("compliance")
    if report:
        unmet = [r for r in report["rules"] if not r["passed"] and r["severity"] == "error"]
        notes = [r for r in report["rules"] if not r["passed"] and r["severity"] == "warning"]
        verdict = "every rule met" if report["passed"] else f"{len(unmet)} rule(s) not met"
        print(f"  {report['preset']}: {verdict}"
              + (f", {len(notes)} note(s) to read" if notes else ""))
        for rule in unmet + notes:
            print(f"    {rule['severity']}: {rule['rule']}: {rule['detail']}")
    return 0
