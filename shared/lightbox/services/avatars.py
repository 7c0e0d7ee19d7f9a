"""Avatars: the catalogue's portraits, the custom-avatar wizard, and avatars in jobs.

Portraits are predictions like every other: created with a webhook, recorded, and
finished by the "finish image" state machine (Fetch copies the output into S3, then
RecordPortrait, `record_portrait` here, records it on the avatar).

Who pays:
- Catalogue portraits are made once, in a batch the operator runs
  (`lightbox avatars generate`), on the operator's Replicate account; no shop's
  credits move. The batch is idempotent: a portrait already made, or whose
  prediction is in flight, is skipped; a claim (a conditional write) comes before
  each prediction, so two batches at once never both pay for one portrait.
- A custom avatar's candidates cost the shop `pricing.portrait` credits each:
  reserved when asked for (cause: the avatar id), spent for every candidate made and
  refunded for every one that failed, once every candidate has finished.

Custom avatars are private: only their owner lists, reads, keeps or shoots with one;
anyone else gets 404, as for jobs.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from lightbox.adapters.avatar_store import AvatarStore
from lightbox.domain import avatars as domain
from lightbox.domain.avatars import CATALOGUE_OWNER, AvatarCatalogue, CatalogueAvatar
from lightbox.errors import Conflict, InvalidInput, LightboxError, NotFound, RateBudgetExhausted
from lightbox.models import (
    Avatar,
    AvatarStatus,
    Job,
    Portrait,
    PortraitStatus,
    Prediction,
    Role,
    utcnow,
)
from lightbox.observability import logger
from lightbox.services.context import Context
from lightbox.services.predictions import PredictionFor, start_prediction

#: A claimed portrait whose prediction was never created (a crash in between) may be
#: claimed again after this long.
STALE_CLAIM = timedelta(minutes=10)
#: How long the shop's browser may show a portrait's link.
PORTRAIT_URL_SECONDS = 900


def avatar_store(ctx: Context) -> AvatarStore:
    return AvatarStore(ctx.dynamodb, ctx.settings.table_name)


def catalogue() -> AvatarCatalogue:
    return domain.load_avatar_catalogue()


# --- views ------------------------------------------------------------------------------


class OptionView(BaseModel):
    id: str
    label: str


class AvatarOptions(BaseModel):
    """What the picker filters by and the wizard asks for."""

    attributes: dict[str, list[OptionView]]
    portrait_price: int
    max_candidates: int = domain.MAX_CANDIDATES
    default_candidates: int = 3


class CandidateView(BaseModel):
    candidate: int
    status: PortraitStatus
    portrait_url: str | None = None
    error: str | None = None


class AvatarView(BaseModel):
    avatar_id: str
    kind: Literal["catalogue", "custom"]
    name: str
    attributes: dict[str, str]
    #: catalogue: missing | generating | ready | failed; custom: AvatarStatus.
    status: str
    #: True when a job may use it: it has a portrait.
    usable: bool
    portrait_key: str | None = None
    portrait_url: str | None = None
    prompt: str
    candidates: list[CandidateView] = Field(default_factory=list)
    chosen: int | None = None
    cost: int | None = None
    reason: str | None = None
    created_at: datetime | None = None


class AvatarRequest(BaseModel):
    """The wizard's form: one value per attribute (see GET /api/avatars/options)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=40)
    age_range: str | None = Field(default=None, max_length=40)
    gender_presentation: str | None = Field(default=None, max_length=40)
    skin_tone: str | None = Field(default=None, max_length=40)
    hair: str | None = Field(default=None, max_length=40)
    build: str | None = Field(default=None, max_length=40)
    style: str | None = Field(default=None, max_length=40)
    setting: str | None = Field(default=None, max_length=40)
    candidates: int = Field(default=3, ge=1, le=domain.MAX_CANDIDATES)

    def choices(self) -> dict[str, str]:
        given = self.model_dump(include=set(domain.ATTRIBUTES))
        return {k: v for k, v in given.items() if v is not None}


class KeepRequest(BaseModel):
    candidate: int = Field(ge=1, le=domain.MAX_CANDIDATES)


def options(ctx: Context) -> AvatarOptions:
    return AvatarOptions(
        attributes={name: [OptionView(id=o.id, label=o.label) for o in values]
                    for name, values in catalogue().attributes.items()},
        portrait_price=ctx.pricing.portrait,
    )


def list_avatars(
    ctx: Context,
    user_id: str,
    *,
    filters: dict[str, list[str]] | None = None,
    source: Literal["all", "catalogue", "mine"] = "all",
    usable_only: bool = False,
) -> list[AvatarView]:
    """The catalogue's avatars and the user's own, filtered by attribute values."""
    wanted = domain.validate_filters(filters or {}, catalogue())
    views: list[AvatarView] = []
    if source in ("all", "mine"):
        for avatar in avatar_store(ctx).list_avatars(user_id):
            view = _custom_view(ctx, avatar, candidates=[])
            views.append(view)
    if source in ("all", "catalogue"):
        made = avatar_store(ctx).catalogue_portraits()
        views += [_catalogue_view(ctx, a, made.get(a.id)) for a in catalogue().avatars]
    return [
        v for v in views
        if domain.matches(domain.AvatarAttributes.model_validate(v.attributes), wanted)
        and (v.usable or not usable_only)
    ]


def avatar_view(ctx: Context, user_id: str, avatar_id: str) -> AvatarView:
    if domain.is_catalogue_id(avatar_id):
        entry = catalogue().by_id().get(avatar_id)
        if entry is None:
            raise NotFound("No such avatar.")
        return _catalogue_view(ctx, entry, avatar_store(ctx).get_portrait(avatar_id))
    avatar = _owned(ctx, user_id, avatar_id)
    if avatar.status == AvatarStatus.GENERATING:
        avatar = _repair(ctx, avatar)
    return _custom_view(ctx, avatar, candidates=avatar_store(ctx).get_candidates(avatar_id))


def _catalogue_view(ctx: Context, entry: CatalogueAvatar, portrait: Portrait | None) -> AvatarView:
    key = portrait.key if portrait else None
    if portrait is None:
        status = "missing"
    elif portrait.status in (PortraitStatus.REQUESTED, PortraitStatus.GENERATING):
        status = "generating"
    elif key:
        status = "ready"
    else:
        status = "failed"
    return AvatarView(
        avatar_id=entry.id, kind="catalogue", name=entry.name,
        attributes=entry.attributes.model_dump(), status=status, usable=key is not None,
        portrait_key=key, portrait_url=_link(ctx, key), prompt=entry.prompt,
    )


def _custom_view(ctx: Context, avatar: Avatar, *, candidates: list[Portrait]) -> AvatarView:
    return AvatarView(
        avatar_id=avatar.avatar_id, kind="custom", name=avatar.name,
        attributes=avatar.attributes, status=str(avatar.status),
        usable=avatar.status == AvatarStatus.READY and avatar.portrait_key is not None,
        portrait_key=avatar.portrait_key, portrait_url=_link(ctx, avatar.portrait_key),
        prompt=avatar.prompt, chosen=avatar.chosen, cost=avatar.credits_reserved,
        reason=avatar.reason, created_at=avatar.created_at,
        candidates=[
            CandidateView(candidate=c.candidate, status=c.status, portrait_url=_link(ctx, c.key),
                          error=c.error)
            for c in candidates
        ],
    )


def _link(ctx: Context, key: str | None) -> str | None:
    return ctx.objects.presigned_get(key, PORTRAIT_URL_SECONDS) if key else None


def _owned(ctx: Context, user_id: str, avatar_id: str) -> Avatar:
    """The user's own avatar; NotFound for anyone else's (never "forbidden")."""
    avatar = avatar_store(ctx).get_avatar(avatar_id) if _plausible_id(avatar_id) else None
    if avatar is None or avatar.owner_id != user_id:
        raise NotFound("No such avatar.")
    return avatar


def _plausible_id(avatar_id: str) -> bool:
    return 0 < len(avatar_id) <= 64 and all(c.isalnum() or c in "-_" for c in avatar_id)


# --- the wizard -------------------------------------------------------------------------


def create_avatar(ctx: Context, user_id: str, request: AvatarRequest) -> AvatarView:
    """Validate the choices, reserve the candidates' credits, ask for the candidates."""
    book = catalogue()
    attributes = domain.validate_choices(request.choices(), book)
    avatar_id = domain.new_avatar_id()
    seeds = domain.candidate_seeds(avatar_id, request.candidates)
    price = ctx.pricing.portrait
    cost = price * len(seeds)
    grant = ctx.budget.take(len(seeds))
    if grant.granted < len(seeds):
        ctx.budget.give_back(grant.granted)
        raise RateBudgetExhausted("Lightbox is busy making images; try again in a minute.",
                                  retry_after=round(grant.retry_after, 1))
    try:
        # Reserve first: a refusal (402) leaves nothing behind.
        ctx.ledger.reserve(user_id, avatar_id, cost)
    except LightboxError:
        ctx.budget.give_back(len(seeds))
        raise
    store = avatar_store(ctx)
    avatar = Avatar(
        avatar_id=avatar_id, owner_id=user_id,
        name=(request.name or "").strip() or _default_name(attributes, book),
        attributes=attributes.model_dump(), prompt=domain.build_prompt(attributes, book),
        candidates=len(seeds), price_each=price, credits_reserved=cost,
    )
    store.put_avatar(avatar)
    portraits = [Portrait(avatar_id=avatar_id, candidate=n, seed=seed)
                 for n, seed in enumerate(seeds, start=1)]
    for portrait in portraits:
        store.put_portrait(portrait)
    for portrait in portraits:
        try:
            _start_portrait(ctx, avatar.prompt, portrait, owner=user_id)
        except LightboxError as error:
            ctx.budget.give_back(1)
            store.fail_unbound(avatar_id, portrait.candidate, "The model could not be asked.")
            logger.warning("portrait not requested", extra={"avatar_id": avatar_id,
                                                            "error": error.code})
    _settle_if_done(ctx, avatar_id)
    logger.info("avatar requested", extra={"avatar_id": avatar_id, "candidates": len(seeds)})
    return avatar_view(ctx, user_id, avatar_id)


def _default_name(attributes: domain.AvatarAttributes, book: AvatarCatalogue) -> str:
    gender = book.option("gender_presentation", attributes.gender_presentation).label
    age = book.option("age_range", attributes.age_range).label
    return f"{gender}, {age}"


def keep_candidate(ctx: Context, user_id: str, avatar_id: str, candidate: int) -> AvatarView:
    """Make one generated candidate the avatar's portrait (it may be changed later)."""
    avatar = _owned(ctx, user_id, avatar_id)
    portrait = avatar_store(ctx).get_portrait(avatar_id, candidate)
    if portrait is None or portrait.status != PortraitStatus.READY or portrait.key is None:
        raise Conflict(f"Candidate {candidate} has no portrait to keep.",
                       candidate=candidate, status=str(portrait.status) if portrait else None)
    kept = avatar_store(ctx).update_avatar(
        avatar_id, expect=[AvatarStatus.CHOOSING, AvatarStatus.READY],
        status=AvatarStatus.READY, chosen=candidate, portrait_key=portrait.key,
    )
    if kept is None:
        raise Conflict("The avatar's portraits are still being made.", status=str(avatar.status))
    return avatar_view(ctx, user_id, avatar_id)


def _repair(ctx: Context, avatar: Avatar) -> Avatar:
    """Fail candidates whose prediction was never created (the request died half-way)."""
    store = avatar_store(ctx)
    stale = utcnow() - STALE_CLAIM
    for portrait in store.get_candidates(avatar.avatar_id):
        if (portrait.status == PortraitStatus.REQUESTED and portrait.prediction_id is None
                and portrait.requested_at < stale):
            store.fail_unbound(avatar.avatar_id, portrait.candidate, "The model was never asked.")
    _settle_if_done(ctx, avatar.avatar_id)
    return store.get_avatar(avatar.avatar_id) or avatar


def _settle_if_done(ctx: Context, avatar_id: str) -> bool:
    """Once every candidate has finished: spend the made ones' credits, refund the rest.

    Exactly once in effect: the ledger settles a cause once (the same figures again
    move nothing), and the status moves from generating once.
    """
    store = avatar_store(ctx)
    avatar = store.get_avatar(avatar_id)
    if avatar is None or avatar.status != AvatarStatus.GENERATING:
        return False
    candidates = store.get_candidates(avatar_id)
    if len(candidates) < avatar.candidates or not all(c.status.terminal for c in candidates):
        return False
    made = sum(1 for c in candidates if c.status == PortraitStatus.READY)
    spent = made * avatar.price_each
    ctx.ledger.settle(avatar.owner_id, avatar_id, spent=spent,
                      refunded=avatar.credits_reserved - spent)
    store.update_avatar(
        avatar_id, expect=[AvatarStatus.GENERATING],
        status=AvatarStatus.CHOOSING if made else AvatarStatus.FAILED,
        reason=None if made else "No portrait could be made; every credit was refunded.",
    )
    logger.info("avatar candidates settled", extra={"avatar_id": avatar_id, "made": made,
                                                    "asked": avatar.candidates})
    return True


# --- the catalogue batch (the operator's) ---------------------------------------------------


class CatalogueBatch(BaseModel):
    """What one run of the catalogue batch did, by avatar id."""

    requested: list[str] = Field(default_factory=list)
    already_made: list[str] = Field(default_factory=list)
    in_flight: list[str] = Field(default_factory=list)
    #: Not asked for this run: the shared rate budget had no room (run again).
    deferred: list[str] = Field(default_factory=list)
    failed: dict[str, str] = Field(default_factory=dict)
    retry_after: float = 0.0


def generate_catalogue(
    ctx: Context, *, only: list[str] | None = None, regenerate: bool = False
) -> CatalogueBatch:
    """Ask for every catalogue portrait not made yet (or, with `regenerate`, every one).

    Idempotent: running it again asks for nothing that is made or in flight.
    """
    book = catalogue().by_id()
    unknown = sorted(set(only or []) - set(book))
    if unknown:
        raise InvalidInput(f"Unknown avatar(s): {', '.join(unknown)}.", allowed=sorted(book))
    chosen = [book[i] for i in (only or list(book))]
    store = avatar_store(ctx)
    existing = store.catalogue_portraits()
    stale = utcnow() - STALE_CLAIM
    report = CatalogueBatch()
    todo: list[tuple[CatalogueAvatar, Portrait | None]] = []
    for entry in chosen:
        previous = existing.get(entry.id)
        if previous is None or previous.status == PortraitStatus.FAILED:
            todo.append((entry, previous))
        elif previous.status == PortraitStatus.GENERATING or (
            previous.status == PortraitStatus.REQUESTED and previous.requested_at >= stale
        ):
            report.in_flight.append(entry.id)
        elif previous.status == PortraitStatus.READY and not regenerate:
            report.already_made.append(entry.id)
        else:
            todo.append((entry, previous))
    if not todo:
        return report
    grant = ctx.budget.take(len(todo))
    admitted, report.deferred = todo[: grant.granted], [e.id for e, _ in todo[grant.granted:]]
    if report.deferred:
        report.retry_after = round(grant.retry_after, 1)
    workers = max(1, min(ctx.settings.fan_out_concurrency, len(admitted)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = list(pool.map(
            lambda job: _start_catalogue_portrait(ctx, store, job[0], job[1], regenerate),
            admitted,
        ))
    for (entry, _), (outcome, reason) in zip(admitted, outcomes, strict=True):
        if outcome == "requested":
            report.requested.append(entry.id)
        elif outcome == "in_flight":
            report.in_flight.append(entry.id)
        else:
            report.failed[entry.id] = reason or "not asked for"
    unused = len(admitted) - len(report.requested)
    if unused:
        ctx.budget.give_back(unused)
    logger.info("catalogue portraits requested",
                extra={"requested": len(report.requested), "made": len(report.already_made),
                       "in_flight": len(report.in_flight), "deferred": len(report.deferred),
                       "failed": len(report.failed)})
    return report


BatchOutcome = tuple[Literal["requested", "in_flight", "failed"], str | None]


def _start_catalogue_portrait(
    ctx: Context, store: AvatarStore, entry: CatalogueAvatar, previous: Portrait | None,
    regenerate: bool,
) -> BatchOutcome:
    """Claim one catalogue portrait, then ask for it; (outcome, why it failed)."""
    claimed = store.claim_catalogue_portrait(
        entry.id, seed=entry.seed, previous=previous, regenerate=regenerate,
        stale_before=utcnow() - STALE_CLAIM,
    )
    if claimed is None:
        return "in_flight", None  # another batch claimed it first
    try:
        _start_portrait(ctx, entry.prompt, claimed, owner=CATALOGUE_OWNER)
    except LightboxError as error:
        store.fail_unbound(entry.id, 1, error.message)
        return "failed", error.message
    return "requested", None


def _start_portrait(ctx: Context, prompt: str, portrait: Portrait, *, owner: str) -> str | None:
    """Create one portrait prediction, record it, and bind the portrait to it (once);
    the caller took its token from the budget."""
    purpose = PredictionFor(role=Role.PORTRAIT, job_id=portrait.avatar_id, user_id=owner,
                            shot_id=domain.candidate_label(portrait.candidate),
                            attempt=portrait.generation)
    return start_prediction(
        ctx, ctx.models.portrait, domain.portrait_inputs(prompt, portrait.seed), purpose,
        lambda created: avatar_store(ctx).bind_portrait(
            portrait.avatar_id, portrait.candidate, portrait.generation, created),
        admission="admitted",
    )


# --- the state machine's side: where a portrait goes and how it is recorded -----------------


def portrait_output_key(prediction: Prediction, extension: str) -> str:
    """Where Fetch copies a portrait: the catalogue's shared key, or the owner's prefix."""
    if prediction.user_id == CATALOGUE_OWNER:
        entry = catalogue().by_id().get(prediction.job_id)
        if entry is None:
            raise NotFound(f"Avatar {prediction.job_id} is not in the catalogue.")
        return entry.portrait_key
    return domain.candidate_key(prediction.user_id, prediction.job_id,
                                int(prediction.shot_id or 1), extension)


def is_stale(ctx: Context, prediction: Prediction) -> bool:
    """A portrait prediction nobody waits for (superseded, cancelled, already recorded)."""
    portrait = avatar_store(ctx).get_portrait(prediction.job_id, int(prediction.shot_id or 1))
    return (portrait is None or portrait.prediction_id != prediction.prediction_id
            or portrait.status != PortraitStatus.GENERATING)


class PortraitResult(BaseModel):
    avatar_id: str
    candidate: int
    status: PortraitStatus | None = None
    recorded: bool


def record_portrait(
    ctx: Context, prediction_id: str, *, key: str | None, error: str | None
) -> PortraitResult:
    """The RecordPortrait step: the portrait made (its key) or not (why), then credits."""
    prediction = ctx.store.get_prediction(prediction_id)
    if prediction is None or prediction.role != Role.PORTRAIT:
        raise NotFound(f"Prediction {prediction_id} is not a portrait's.")
    avatar_id, candidate = prediction.job_id, int(prediction.shot_id or 1)
    reason = None if key else (error or "the model made no portrait")
    recorded = avatar_store(ctx).settle_portrait(avatar_id, candidate, prediction_id,
                                                 key=key, error=reason)
    if prediction.user_id != CATALOGUE_OWNER:
        _settle_if_done(ctx, avatar_id)
    logger.info("portrait recorded", extra={"avatar_id": avatar_id, "candidate": candidate,
                                            "made": key is not None,
                                            "first": recorded is not None})
    return PortraitResult(avatar_id=avatar_id, candidate=candidate,
                          status=recorded.status if recorded else None,
                          recorded=recorded is not None)


def portrait_failed(ctx: Context, prediction_id: str, error: str) -> PortraitResult:
    """A portrait's steps failed after their retries: record it as not made."""
    return record_portrait(ctx, prediction_id, key=None,
                           error=f"Lightbox could not finish this portrait ({error}).")


# --- avatars in jobs --------------------------------------------------------------------


class JobAvatarView(BaseModel):
    """The person a job's "with model" shots show: the portrait fixed when it was ordered."""

    avatar_id: str
    name: str
    portrait_url: str


def job_avatar_view(ctx: Context, job: Job) -> JobAvatarView | None:
    if not job.avatar_id or not job.avatar_portrait_key:
        return None
    if domain.is_catalogue_id(job.avatar_id):
        entry = catalogue().by_id().get(job.avatar_id)
        name = entry.name if entry else job.avatar_id
    else:
        avatar = avatar_store(ctx).get_avatar(job.avatar_id)
        name = avatar.name if avatar and avatar.owner_id == job.user_id else job.avatar_id
    return JobAvatarView(avatar_id=job.avatar_id, name=name,
                         portrait_url=ctx.objects.presigned_get(job.avatar_portrait_key,
                                                                PORTRAIT_URL_SECONDS))


class JobAvatar(BaseModel):
    avatar_id: str
    portrait_key: str


def avatar_for_job(ctx: Context, user_id: str, avatar_id: str) -> JobAvatar:
    """The portrait a job's "with model" shots will reference.

    Another user's custom avatar is NotFound (404), as if it did not exist; an avatar
    without a portrait yet is a Conflict (409). Either way nothing is reserved.
    """
    if domain.is_catalogue_id(avatar_id):
        if avatar_id not in catalogue().by_id():
            raise NotFound("No such avatar.")
        portrait = avatar_store(ctx).get_portrait(avatar_id)
        if portrait is None or portrait.key is None:
            raise Conflict("This avatar's portrait has not been made yet; choose another.",
                           avatar_id=avatar_id)
        return JobAvatar(avatar_id=avatar_id, portrait_key=portrait.key)
    avatar = _owned(ctx, user_id, avatar_id)
    if avatar.status != AvatarStatus.READY or avatar.portrait_key is None:
        raise Conflict("Keep one of this avatar's portraits before shooting with it.",
                       avatar_id=avatar_id, status=str(avatar.status))
    return JobAvatar(avatar_id=avatar_id, portrait_key=avatar.portrait_key)
