"""The credit packs the shop's users buy through Stripe (`packs.yaml`)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

from lightbox.catalog import read_yaml
from lightbox.errors import InvalidInput


class Pack(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str = Field(pattern=r"^[a-z0-9_-]{1,40}$")
    name: str
    credits: PositiveInt
    #: Price in the currency's minor unit (cents), as Stripe counts.
    amount: PositiveInt
    currency: str = Field(default="usd", pattern=r"^[a-z]{3}$")


class PackCatalog(BaseModel):
    default: str
    packs: list[Pack]

    @model_validator(mode="after")
    def _default_is_a_pack(self) -> PackCatalog:
        ids = [p.id for p in self.packs]
        if len(set(ids)) != len(ids):
            raise ValueError("pack ids must be unique")
        if self.default not in ids:
            raise ValueError(f"default pack {self.default!r} is not in the catalogue")
        return self


@lru_cache(maxsize=1)
def load_pack_catalog() -> PackCatalog:
    return PackCatalog.model_validate(read_yaml("packs.yaml"))


def load_packs() -> dict[str, Pack]:
    return {p.id: p for p in load_pack_catalog().packs}


def default_pack_id() -> str:
    return load_pack_catalog().default


def require_pack(packs: dict[str, Pack], pack_id: str) -> Pack:
    pack = packs.get(pack_id)
    if pack is None:
        allowed = sorted(packs)
        raise InvalidInput(
            f"There is no pack {pack_id!r}; choose one of: {', '.join(allowed)}.",
            pack_id=pack_id,
            allowed=allowed,
        )
    return pack


def usd_per_credit() -> float:
    """What a credit brings in at the default pack's price (in its currency's units)."""
    pack = load_packs()[default_pack_id()]
    return pack.amount / 100 / pack.credits
