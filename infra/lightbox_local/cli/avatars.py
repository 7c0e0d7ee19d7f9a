"""`lightbox avatars`: the avatar catalogue and custom avatars from the command line.

    lightbox avatars list [--gender-presentation feminine ...]   the catalogue (and yours)
    lightbox avatars preview --out sheet.png [filters]           a contact sheet of portraits
    lightbox avatars create --age-range 25-34 ... [--keep 1]     the wizard: candidates, keep one
    lightbox avatars generate [--only c001,c002] [--regenerate]  (operator) make catalogue portraits

`list`, `preview` and `create` talk HTTP to a running `lightbox dev` (``--api`` or
``LIGHTBOX_PORT``); with none running, `preview` and `create` start the local stack in
this process for the length of the command (`list` reads the catalogue file).

`generate` is the operator's: it runs the catalogue batch against the Lightbox its
environment names (TABLE_NAME, BUCKET_NAME, WEBHOOK_BASE_URL, REPLICATE_API_TOKEN_PARAM,
as the deployed functions have them, and AWS credentials), on the operator's Replicate
account; shops pay nothing for catalogue portraits. `--local` runs it on a local stack
started for the command instead. It is idempotent: portraits made or in flight are not
asked for again.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path
from typing import Any

import httpx

from lightbox.domain.avatars import ATTRIBUTES
from lightbox_local.cli.session import (
    CliError,
    Session,
    add_api_option,
    api_or_local_stack,
    buy,
    running_api,
    start_stack,
)

TILE = 240
CAPTION = 44
GAP = 10


def add_avatar_commands(commands: Any) -> None:
    """Register `lightbox avatars ...` on the main parser's subcommands."""

    avatars = commands.add_parser("avatars", help="list, preview, create and generate avatars")
    actions = avatars.add_subparsers(dest="avatars_action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="list avatars (catalogue and your own)")
    _add_filters(listing)
    listing.add_argument("--source", choices=["all", "catalogue", "mine"], default="all")
    listing.add_argument("--usable", action="store_true", help="only avatars a job can use")
    listing.add_argument("--user", default="demo-shop")
    listing.add_argument("--json", action="store_true")
    add_api_option(listing)
    listing.set_defaults(run=run_list)

    preview = actions.add_parser("preview", help="a contact sheet of avatars' portraits")
    _add_filters(preview)
    preview.add_argument("--source", choices=["all", "catalogue", "mine"], default="catalogue")
    preview.add_argument("--out", type=Path, default=Path("out/avatars.png"))
    preview.add_argument("--limit", type=int, default=24, help="at most this many portraits")
    preview.add_argument("--user", default="demo-shop")
    preview.add_argument("--timeout", type=float, default=600.0)
    add_api_option(preview)
    preview.set_defaults(run=run_preview)

    create = actions.add_parser("create", help="make your own avatar: candidates, keep one")
    for name in ATTRIBUTES:
        create.add_argument(f"--{name.replace('_', '-')}", dest=name, metavar="VALUE")
    create.add_argument("--name")
    create.add_argument("--candidates", type=int, default=3)
    create.add_argument("--keep", type=int, default=1,
                        help="the candidate to keep (0: keep none yet)")
    create.add_argument("--out", type=Path, help="save the candidates' portraits here")
    create.add_argument("--user", default="demo-shop")
    create.add_argument("--buy", metavar="PACK", help="buy this credit pack first (locally)")
    create.add_argument("--timeout", type=float, default=600.0)
    add_api_option(create)
    create.set_defaults(run=run_create)

    generate = actions.add_parser("generate", help="(operator) make the catalogue's portraits")
    generate.add_argument("--only", help="comma-separated catalogue ids (default: all)")
    generate.add_argument("--regenerate", action="store_true",
                          help="make portraits again even if made (never one in flight)")
    generate.add_argument("--wait", action="store_true", help="wait until they are made")
    generate.add_argument("--local", action="store_true",
                          help="on a local stack started for this command")
    generate.add_argument("--timeout", type=float, default=1800.0)
    generate.set_defaults(run=run_generate)


def _add_filters(parser: argparse.ArgumentParser) -> None:
    for name in ATTRIBUTES:
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, metavar="VALUES",
                            help="comma-separated values (any of them matches)")


def _filters(args: argparse.Namespace) -> dict[str, list[str]]:
    chosen = {}
    for name in ATTRIBUTES:
        value = getattr(args, name, None)
        if value:
            chosen[name] = [v.strip() for v in value.split(",") if v.strip()]
    return chosen


# --- list -------------------------------------------------------------------------------


def run_list(args: argparse.Namespace) -> int:

    api = running_api(args.api)
    if api is None:
        found = _catalogue_rows(_filters(args))
        where = "the catalogue file (start `lightbox dev` to see which portraits are made)"
    else:
        session = Session(api, args.user)
        found = _fetch_avatars(session, _filters(args), args.source, args.usable)
        where = api
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    for avatar in found:
        values = " ".join(avatar["attributes"][name] for name in ATTRIBUTES)
        print(f"{avatar['avatar_id']:<36} {avatar['name']:<16} {avatar.get('status', '-'):<10} "
              f"{values}")
    print(f"{len(found)} avatar(s) from {where}")
    return 0


def _catalogue_rows(filters: dict[str, list[str]]) -> list[dict[str, Any]]:
    from lightbox.domain import avatars

    book = avatars.load_avatar_catalogue()
    wanted = _checked(lambda: avatars.validate_filters(filters, book))
    return [{"avatar_id": a.id, "name": a.name, "kind": "catalogue", "status": "-",
             "attributes": a.attributes.model_dump(), "portrait_key": a.portrait_key}
            for a in book.avatars if avatars.matches(a.attributes, wanted)]


def _fetch_avatars(session: Any, filters: dict[str, list[str]], source: str,
                   usable: bool) -> list[dict[str, Any]]:
    params: list[tuple[str, str]] = [(k, v) for k, values in filters.items() for v in values]
    params += [("source", source), ("usable", "true" if usable else "false")]
    response = session.http.get(f"{session.api}/api/avatars", params=params)
    _raise_for(response)
    return response.json()["avatars"]


# --- preview ----------------------------------------------------------------------------


def run_preview(args: argparse.Namespace) -> int:

    with api_or_local_stack(args.api, why="placeholder portraits",
                            sweep_every=None) as (api, stack):
        session = Session(api, args.user)
        if stack is not None and args.source != "mine":
            ids = [r["avatar_id"] for r in _catalogue_rows(_filters(args))][: args.limit]
            _generate_and_wait(ids, regenerate=False, timeout=args.timeout)
        found = _fetch_avatars(session, _filters(args), args.source, usable=True)[: args.limit]
        if not found:
            print("No avatar with a portrait matches; `lightbox avatars generate` makes the "
                  "catalogue's.")
            return 1
        sheet = render_avatar_sheet(
            [(a, _download(a["portrait_url"])) for a in found],
            title=f"Lightbox avatars: {len(found)} shown",
        )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        sheet.save(args.out)
        print(f"{args.out}: {len(found)} portraits")
        return 0


def _download(url: str) -> Any:
    from PIL import Image

    image = Image.open(io.BytesIO(httpx.get(url, timeout=60).raise_for_status().content))
    image.load()
    return image


def render_avatar_sheet(entries: list[tuple[dict[str, Any], Any]], *, title: str,
                        columns: int = 6) -> Any:
    """Portraits in a titled grid, each captioned with its id, name and attributes."""
    from PIL import Image, ImageDraw, ImageFont, ImageOps

    columns = max(1, min(columns, len(entries)))
    rows = -(-len(entries) // columns)
    header = 40
    sheet = Image.new("RGB", (GAP + columns * (TILE + GAP),
                              header + GAP + rows * (TILE + CAPTION + GAP)), (246, 246, 244))
    draw = ImageDraw.Draw(sheet)
    font, title_font = ImageFont.load_default(size=13), ImageFont.load_default(size=20)
    draw.text((GAP, 10), title, fill=(34, 34, 34), font=title_font)
    for n, (avatar, image) in enumerate(entries):
        x = GAP + (n % columns) * (TILE + GAP)
        y = header + GAP + (n // columns) * (TILE + CAPTION + GAP)
        thumb = ImageOps.contain(image.convert("RGB"), (TILE, TILE))
        sheet.paste(thumb, (x + (TILE - thumb.width) // 2, y))
        a = avatar["attributes"]
        draw.text((x, y + TILE + 4), f"{avatar['avatar_id'][:18]}  {avatar['name']}",
                  fill=(34, 34, 34), font=font)
        draw.text((x, y + TILE + 22), f"{a['age_range']} · {a['skin_tone']} · {a['hair']}",
                  fill=(90, 90, 90), font=font)
    return sheet


# --- create -----------------------------------------------------------------------------


def run_create(args: argparse.Namespace) -> int:

    with api_or_local_stack(args.api, sweep_every=None) as (api, _):
        if args.buy:
            buy(api, args.user, args.buy)
        session = Session(api, args.user)
        body = {name: getattr(args, name) for name in ATTRIBUTES if getattr(args, name)}
        body["candidates"] = args.candidates
        if args.name:
            body["name"] = args.name
        created = session.post("/api/avatars", body)
        _raise_for(created, user=args.user)
        avatar = created.json()
        print(f"Avatar {avatar['avatar_id']}: {args.candidates} candidate portrait(s), "
              f"{avatar['cost']} credit(s) reserved")
        avatar = _wait_for_candidates(session, avatar["avatar_id"], args.timeout)
        for candidate in avatar["candidates"]:
            line = f"  candidate {candidate['candidate']}: {candidate['status']}"
            if args.out and candidate["portrait_url"]:
                args.out.mkdir(parents=True, exist_ok=True)
                path = args.out / f"{avatar['avatar_id']}-{candidate['candidate']}.jpg"
                path.write_bytes(httpx.get(candidate["portrait_url"], timeout=60).content)
                line += f" -> {path}"
            print(line)
        if avatar["status"] == "failed":
            print(f"  {avatar['reason']}")
            return 4
        if args.keep:
            kept = session.post(f"/api/avatars/{avatar['avatar_id']}/keep",
                                {"candidate": args.keep})
            _raise_for(kept)
            print(f"Kept candidate {args.keep}: order the with-model-* scenes with "
                  f"\"avatar_id\": \"{avatar['avatar_id']}\" (POST /api/uploads)")
        return 0


def _wait_for_candidates(session: Any, avatar_id: str, timeout: float) -> dict[str, Any]:

    started = time.monotonic()
    while True:
        view = session.get(f"/api/avatars/{avatar_id}").json()
        if view["status"] != "generating":
            return view
        if time.monotonic() - started > timeout:
            raise CliError(f"avatar {avatar_id} still generating after {timeout:.0f} s")
        time.sleep(0.5)


# --- generate (the operator's batch) ----------------------------------------------------------


def run_generate(args: argparse.Namespace) -> int:

    only = [i.strip() for i in args.only.split(",") if i.strip()] if args.only else None
    stack = None
    if args.local:
        print("Starting the local stack (moto, the local engine, the functions)...", flush=True)
        stack = start_stack(sweep_every=None)
    try:
        wait = args.wait or stack is not None
        report = _generate_and_wait(only, regenerate=args.regenerate,
                                    timeout=args.timeout if wait else 0)
        print(f"asked for {len(report['requested'])}, already made {len(report['made'])}, "
              f"in flight {len(report['in_flight'])}, failed {len(report['failed'])}")
        for avatar_id, reason in report["failed"].items():
            print(f"  {avatar_id}: {reason}")
        return 0 if not report["failed"] else 4
    finally:
        if stack is not None:
            stack.stop()


def _generate_and_wait(only: list[str] | None, *, regenerate: bool,
                       timeout: float) -> dict[str, Any]:
    """Run the batch (again while the rate budget defers some), then wait for the portraits."""
    from lightbox.services import avatars
    from lightbox.services.context import get_context

    ctx = get_context()
    asked: list[str] = []
    made: list[str] = []
    in_flight: list[str] = []
    report = _checked(lambda: avatars.generate_catalogue(ctx, only=only, regenerate=regenerate))
    while True:
        asked += report.requested
        made += report.already_made
        in_flight += report.in_flight
        if not report.deferred:
            break
        time.sleep(max(1.0, report.retry_after))
        report = avatars.generate_catalogue(ctx, only=report.deferred)
    failed = dict(report.failed)
    waiting = set(asked) | set(in_flight)
    deadline = time.monotonic() + timeout
    while waiting and timeout:
        portraits = avatars.avatar_store(ctx).catalogue_portraits()
        for avatar_id in list(waiting):
            portrait = portraits.get(avatar_id)
            if portrait is not None and portrait.status.terminal:
                waiting.discard(avatar_id)
                if portrait.status == "failed":
                    failed[avatar_id] = portrait.error or "not made"
        if waiting and time.monotonic() > deadline:
            raise CliError(f"{len(waiting)} portrait(s) not made within {timeout:.0f} s")
        if waiting:
            time.sleep(0.5)
    return {"requested": asked, "made": made, "in_flight": in_flight, "failed": failed}


def ensure_catalogue_portrait(avatar_id: str, *, timeout: float = 600) -> None:
    """Make a catalogue avatar's portrait if it is not made yet (a fresh local stack has
    none), and wait for it: `lightbox shoot --avatar` then shoots instead of refusing."""
    from lightbox.domain.avatars import is_catalogue_id

    if not is_catalogue_id(avatar_id):
        return  # a shop's own avatar: its wizard made the portrait
    report = _generate_and_wait([avatar_id], regenerate=False, timeout=timeout)
    if avatar_id in report["failed"]:
        raise CliError(f"the portrait of avatar {avatar_id} could not be made: "
                       f"{report['failed'][avatar_id]}")
    if avatar_id in report["requested"]:
        print(f"Made the portrait of avatar {avatar_id} for its first shoot")


def generate_in_background() -> None:
    """`lightbox dev --avatars`: the catalogue's portraits, made while the stack serves."""
    import threading

    def run() -> None:
        from lightbox.errors import LightboxError

        try:
            report = _generate_and_wait(None, regenerate=False, timeout=1800)
        except (CliError, LightboxError) as error:  # report; never take the stack down
            print(f"avatar catalogue: not made ({error})", flush=True)
            return
        print(f"avatar catalogue: {len(report['requested']) + len(report['made'])} portraits "
              f"ready, {len(report['failed'])} failed", flush=True)

    threading.Thread(target=run, name="avatar-catalogue", daemon=True).start()
    print("  Avatars           making the catalogue's portraits in the background")


# --- helpers ------------------------------------------------------------------------------


def _checked(call: Any) -> Any:
    from lightbox.errors import InvalidInput

    try:
        return call()
    except InvalidInput as error:
        raise CliError(_allowed_text(error.message, error.details)) from error


def _raise_for(response: httpx.Response, *, user: str | None = None) -> None:

    if response.status_code < 400:
        return
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        raise CliError(f"{response.status_code} {response.text[:200]}") from None
    if response.status_code == 402 and user:
        raise CliError(f"{error['message']} Buy credits with: lightbox buy --user {user}",
                       exit_code=3)
    raise CliError(_allowed_text(error["message"], error.get("details") or {}))


def _allowed_text(message: str, details: dict[str, Any]) -> str:
    lines = [message]
    for problem in details.get("problems") or []:
        if isinstance(problem, dict) and problem.get("allowed"):
            flag = f"--{str(problem['field']).replace('_', '-')}"
            lines.append(f"  {flag}: {', '.join(map(str, problem['allowed']))}")
    return "\n".join(lines)
