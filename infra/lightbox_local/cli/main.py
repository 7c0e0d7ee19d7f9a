"""`lightbox`: Lightbox from the command line.

    lightbox dev                      keep the local stack running (API, webhooks, web app)
    lightbox shoot PHOTO --out DIR    shoot a photo into studio shots
    lightbox tool NAME PHOTO --out FILE  one image by a single-image tool (remove-background,
                                      upscale --scale 2|4, fit --preset ID), one credit
    lightbox buy --user ID            buy credits locally (a signed Stripe webhook)
    lightbox credits --user ID        show a balance and its ledger
    lightbox cutout PHOTO --out FILE  the local engine's cutout, as an RGBA PNG
    lightbox avatars ACTION           list, preview, create or generate avatars

`shoot`, `tool`, `buy` and `credits` talk HTTP to a running `lightbox dev` (``--api`` or
``LIGHTBOX_PORT``); with no stack running, `shoot` and `tool` start one in this process
for the length of the command.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from lightbox.errors import LightboxError
from lightbox_local.cli.avatars import (
    add_avatar_commands,
    ensure_catalogue_portrait,
    generate_in_background,
)
from lightbox_local.cli.session import (
    CliError,
    Session,
    add_api_option,
    api_or_local_stack,
    buy,
    running_api,
    start_stack,
    ticket_from,
    upload_photo,
    wait_for_job,
)
from lightbox_local.cli.tools import add_tool_command

DEFAULT_PORT = 8787


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except CliError as error:
        print(f"lightbox: {error}", file=sys.stderr)
        return error.exit_code
    except LightboxError as error:  # e.g. a photo that is not an image
        print(f"lightbox: {error.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lightbox", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    dev = commands.add_parser("dev", help="run the local stack until interrupted")
    dev.add_argument("--port", type=int, default=int(os.environ.get("LIGHTBOX_PORT", DEFAULT_PORT)))
    dev.add_argument("--sweep-every", type=float, default=60.0, help="seconds between sweeps")
    dev.add_argument("--verbose", action="store_true", help="show the functions' logs")
    dev.add_argument("--avatars", action="store_true",
                     help="make the avatar catalogue's placeholder portraits at start")
    dev.set_defaults(run=run_dev)

    shoot = commands.add_parser("shoot", help="shoot a product photo into studio shots")
    shoot.add_argument("photo", type=Path)
    shoot.add_argument("--scenes", default="all",
                       help="comma-separated scene ids, or 'all' (see `lightbox scenes`)")
    shoot.add_argument("--variants", type=int, default=1)
    shoot.add_argument("--presets", default="original",
                       help="comma-separated marketplace presets (e.g. original,amazon-main)")
    shoot.add_argument("--out", type=Path, default=Path("out"))
    shoot.add_argument("--user", default="demo-shop")
    shoot.add_argument("--avatar", metavar="ID", default=None,
                       help="the avatar for the with-model-* scenes (see `lightbox avatars "
                            "list`); with it, 'all' includes those scenes")
    shoot.add_argument("--buy", metavar="PACK", default=None,
                       help="buy this credit pack first (locally, through the signed webhook)")
    shoot.add_argument("--timeout", type=float, default=900.0)
    add_api_option(shoot)
    shoot.set_defaults(run=run_shoot)

    buy = commands.add_parser("buy", help="buy a credit pack locally")
    buy.add_argument("--user", required=True)
    buy.add_argument("--pack", default="starter")
    add_api_option(buy)
    buy.set_defaults(run=run_buy)

    credits = commands.add_parser("credits", help="show a user's balance and ledger")
    credits.add_argument("--user", required=True)
    credits.add_argument("--json", action="store_true")
    add_api_option(credits)
    credits.set_defaults(run=run_credits)

    scenes = commands.add_parser("scenes", help="list the scene templates")
    scenes.set_defaults(run=run_scenes)

    cutout = commands.add_parser("cutout", help="cut a product out with the local engine")
    cutout.add_argument("photo", type=Path)
    cutout.add_argument("--out", type=Path, required=True)
    cutout.set_defaults(run=run_cutout)

    add_tool_command(commands)  # `lightbox tool remove-background|upscale|fit PHOTO --out FILE`
    add_avatar_commands(commands)  # `lightbox avatars list|preview|create|generate`
    return parser


# --- the local stack --------------------------------------------------------------------


def run_dev(args: argparse.Namespace) -> int:
    stack = start_stack(args.port, sweep_every=args.sweep_every, verbose=args.verbose)
    print(f"Lightbox is running at {stack.url}")
    print(f"  web app           {stack.url}/")
    print(f"  API docs          {stack.url}/docs")
    print(f"  Replicate webhook {stack.url}/webhooks/replicate  (local engine {stack.engine_server.url})")
    print(f"  Stripe webhook    {stack.url}/webhooks/stripe")
    print(f"  AWS (moto)        {stack.aws_url}")
    print("Sign in from the web app, or: lightbox buy --user ID, lightbox shoot PHOTO --user ID")
    if args.avatars:
        generate_in_background()
    print("Press Ctrl-C to stop.", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("\nstopping")
    finally:
        stack.stop()
    return 0





# --- shoot ------------------------------------------------------------------------------


def run_shoot(args: argparse.Namespace) -> int:
    if not args.photo.is_file():
        raise CliError(f"no such photo: {args.photo}")
    with api_or_local_stack(args.api) as (api, stack):
        if args.buy:
            buy(api, args.user, args.buy)
        if args.avatar and stack is not None:
            # A stack started for this command has no catalogue portraits yet.
            ensure_catalogue_portrait(args.avatar)
        return shoot(api, args)


def shoot(api: str, args: argparse.Namespace) -> int:
    session = Session(api, args.user)
    scenes = _scene_ids(session, args.scenes, with_person=bool(args.avatar))
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    order: dict[str, Any] = {"scenes": scenes, "variants": args.variants, "presets": presets}
    if args.avatar:
        order["avatar_id"] = args.avatar
    ticket = ticket_from(session.post("/api/uploads", order), args.user)
    print(f"Job {ticket['job_id']}: {ticket['shots']} shots, {ticket['cost']} credits reserved")
    upload_photo(ticket, args.photo)
    job = wait_for_job(session, ticket["job_id"], args.timeout, _progress_line)
    return _download(session, job, args.out)


def _scene_ids(session: Session, wanted: str, *, with_person: bool = False) -> list[str]:
    catalogue = session.get("/api/scenes").json()
    available = [s["id"] for s in catalogue]
    if wanted == "all":
        # Scenes with a person need an avatar: "all" means them too only when one is given.
        return [s["id"] for s in catalogue if with_person or not s["person"]]
    chosen = [s.strip() for s in wanted.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in available]
    if unknown:
        raise CliError(f"unknown scene(s) {', '.join(unknown)}; choose from {', '.join(available)}")
    return chosen


def _progress_line(job: dict[str, Any]) -> str:
    phases: dict[str, int] = {}
    for shot in job.get("shots", []):
        phases[shot["phase"]] = phases.get(shot["phase"], 0) + 1
    order = ["queued", "composing", "checking", "upscaling", "done", "failed"]
    counts = " · ".join(f"{p} {phases[p]}" for p in order if phases.get(p))
    return f"{job['status']:<12} {counts}"


def _download(session: Session, job: dict[str, Any], out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []
    http = httpx.Client(timeout=60)
    for shot in job["shots"]:
        for preset, url in shot["outputs"].items():
            ext = url.split("?", 1)[0].rsplit(".", 1)[-1]
            path = out / f"{shot['shot_id']}-{shot['scene_id']}-{preset}.{ext}"
            path.write_bytes(http.get(url).raise_for_status().content)
            saved.append(path)
    sheet = manifest = None
    if job.get("contact_sheet_url"):
        sheet = out / "contact-sheet.png"
        sheet.write_bytes(http.get(job["contact_sheet_url"]).raise_for_status().content)
    if job.get("manifest_url"):
        manifest = out / "manifest.json"
        manifest.write_bytes(http.get(job["manifest_url"]).raise_for_status().content)
    rejected = [s for s in job["shots"] if s["phase"] == "failed"]
    print(f"Job {job['job_id']} {job['status']}: {job['delivered']} of {job['shots_total']} "
          f"shots delivered, {len(saved)} files in {out}/")
    for shot in rejected:
        print(f"  not delivered: {shot['shot_id']} {shot['scene_name']}: {shot['reason']}")
    for preset in job.get("presets", []):
        judged = [s for s in job["shots"] if preset in s["compliance"]]
        passing = [s for s in judged if s["compliance"][preset]]
        if not judged:
            continue
        names = ", ".join(f"{s['shot_id']} {s['scene_name']}" for s in passing[:4])
        more = f" and {len(passing) - 4} more" if len(passing) > 4 else ""
        print(f"  {preset}: {len(passing)} of {len(judged)} shots pass every compliance rule"
              + (f" ({names}{more})" if passing else "") + "; the rules per shot are in the "
              "manifest")
    if sheet:
        print(f"  contact sheet: {sheet}")
    if manifest:
        print(f"  manifest:      {manifest}")
    if job.get("costs"):
        print("  " + cost_line(job["costs"]))
    if job.get("reason") and job["status"] != "done":
        print(f"  {job['reason']}")
    return 0 if job["status"] in ("done", "partly_done") else 4


def cost_line(costs: dict[str, Any]) -> str:
    """What a job (or a catalogue) cost beside what it charged, in one line."""
    made = costs["replicate_usd"] + costs["aws_usd"]
    return (f"cost: Replicate ${costs['replicate_usd']:.3f} + AWS ~${costs['aws_usd']:.4f}; "
            f"charged {costs['credits_charged']} credits (${costs['credits_value_usd']:.2f}); "
            f"margin ${costs['credits_value_usd'] - made:.2f} "
            f"(prices as of {costs['prices_as_of']})")


# --- credits ----------------------------------------------------------------------------


def run_buy(args: argparse.Namespace) -> int:
    api = running_api(args.api)
    if api is None:
        raise CliError("no local stack is running: start `lightbox dev` first "
                       "(or set LIGHTBOX_PORT / --api)")
    buy(api, args.user, args.pack)
    return 0


def run_credits(args: argparse.Namespace) -> int:
    api = running_api(args.api)
    if api is None:
        raise CliError("no local stack is running: start `lightbox dev` first")
    session = Session(api, args.user)
    account = session.get("/api/credits").json()
    ledger = session.get("/api/credits/ledger", limit=100).json()
    if args.json:
        print(json.dumps({"account": account, "ledger": ledger}, indent=2))
        return 0
    print(f"{args.user}: {account['balance']} credits")
    for entry in ledger.get("entries", []):
        print(f"  {entry.get('created_at', '')[:19]}  {entry.get('kind', ''):<10} "
              f"{entry.get('amount', 0):>+6}  {entry.get('cause', '')}")
    return 0


# --- catalogue and engine tools -----------------------------------------------------------


def run_scenes(args: argparse.Namespace) -> int:
    from lightbox.catalog import load_scenes
    from lightbox.domain.pricing import load_pricing

    pricing = load_pricing()
    for scene in load_scenes().values():
        print(f"{scene.id:<20} {scene.kind:<10} {pricing.shot_price(scene)} credit(s)  {scene.name}")
    return 0


def run_cutout(args: argparse.Namespace) -> int:
    from PIL import Image

    from lightbox.domain.images import normalise_upload
    from lightbox_local.engine.vision.cutout import remove_background

    if not args.photo.is_file():
        raise CliError(f"no such photo: {args.photo}")
    normalised = normalise_upload(args.photo.read_bytes())
    started = time.monotonic()
    cutout: Image.Image = remove_background(normalised.image)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cutout.save(args.out, format="PNG")
    print(f"{args.out}: {cutout.width}x{cutout.height} RGBA in {time.monotonic() - started:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
