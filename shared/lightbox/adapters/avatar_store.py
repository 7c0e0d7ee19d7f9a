"""Avatars and their portraits in the one DynamoDB table.

| item                      | pk                 | sk                  | gsi1 (owner's list)                 |
| ------------------------- | ------------------ | ------------------- | ----------------------------------- |
| custom avatar             | AVATAR#{avatar}    | AVATAR              | USER#{owner} / AVATAR#{created}#{id} |
| custom avatar's candidate | AVATAR#{avatar}    | PORTRAIT#{nn}       |                                     |
| catalogue portrait        | CATALOGUE#AVATARS  | PORTRAIT#{avatar}   |                                     |

The catalogue's avatars themselves are data (catalog/avatars.yaml); the table only
records whether each portrait has been made. They share one partition so the picker
reads them all with one query (about a hundred small items).

Every write that must happen once is conditional: a portrait is claimed before its
prediction is created (two batches never both pay for it), bound to exactly one
prediction, and settled only by that prediction.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from lightbox.adapters.dynamo import DynamoStore, iso, serialize, to_model
from lightbox.domain.avatars import candidate_label, is_catalogue_id
from lightbox.models import Avatar, AvatarStatus, Portrait, PortraitStatus, utcnow

CATALOGUE_PARTITION = "CATALOGUE#AVATARS"


def avatar_key(avatar_id: str) -> dict[str, str]:
    return {"pk": f"AVATAR#{avatar_id}", "sk": "AVATAR"}


def portrait_key(avatar_id: str, candidate: int = 1) -> dict[str, str]:
    if is_catalogue_id(avatar_id):
        return {"pk": CATALOGUE_PARTITION, "sk": f"PORTRAIT#{avatar_id}"}
    return {"pk": f"AVATAR#{avatar_id}", "sk": f"PORTRAIT#{candidate_label(candidate)}"}


class AvatarStore(DynamoStore):
    """Reads and conditional writes of avatars and portraits."""

    # --- custom avatars -----------------------------------------------------------------

    def put_avatar(self, avatar: Avatar) -> bool:
        item = avatar.model_dump(mode="json")
        item.update(avatar_key(avatar.avatar_id))
        item["gsi1pk"] = f"USER#{avatar.owner_id}"
        item["gsi1sk"] = f"AVATAR#{iso(avatar.created_at)}#{avatar.avatar_id}"
        return self._put_new(item)

    def get_avatar(self, avatar_id: str) -> Avatar | None:
        item = self._get(avatar_key(avatar_id))
        return to_model(item, Avatar) if item else None

    def list_avatars(self, owner_id: str, *, limit: int = 100) -> list[Avatar]:
        response = self._call(
            "query",
            IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :u AND begins_with(gsi1sk, :a)",
            ExpressionAttributeValues=serialize({":u": f"USER#{owner_id}", ":a": "AVATAR#"}),
            ScanIndexForward=False,
            Limit=limit,
        )
        return [to_model(i, Avatar) for i in response.get("Items", [])]

    def update_avatar(
        self, avatar_id: str, *, expect: Iterable[AvatarStatus] | None = None, **values: Any
    ) -> Avatar | None:
        """Set fields if the avatar's status is one of `expect`; None if it was not."""
        values["updated_at"] = iso(utcnow())
        condition = "attribute_exists(pk)"
        condition_values: dict[str, Any] = {}
        if expect is not None:
            placeholders = {f":st{i}": str(s) for i, s in enumerate(expect)}
            condition += f" AND #status IN ({', '.join(placeholders)})"
            condition_values = {"#status": "status", **placeholders}
        new = self._update(
            avatar_key(avatar_id),
            set_values={k: _plain(v) for k, v in values.items()},
            condition=condition,
            condition_values=condition_values,
            returns="ALL_NEW",
        )
        return Avatar.model_validate(new) if new else None

    # --- portraits ----------------------------------------------------------------------

    def put_portrait(self, portrait: Portrait) -> bool:
        """A new candidate (custom avatars); False if it exists already."""
        item = portrait.model_dump(mode="json")
        item.update(portrait_key(portrait.avatar_id, portrait.candidate))
        return self._put_new(item)

    def get_portrait(self, avatar_id: str, candidate: int = 1) -> Portrait | None:
        item = self._get(portrait_key(avatar_id, candidate))
        return to_model(item, Portrait) if item else None

    def get_candidates(self, avatar_id: str) -> list[Portrait]:
        items = self._query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
            ExpressionAttributeValues=serialize({":pk": f"AVATAR#{avatar_id}",
                                                 ":p": "PORTRAIT#"}),
            ConsistentRead=True,
        )
        return sorted((to_model(i, Portrait) for i in items), key=lambda p: p.candidate)

    def catalogue_portraits(self) -> dict[str, Portrait]:
        items = self._query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
            ExpressionAttributeValues=serialize({":pk": CATALOGUE_PARTITION, ":p": "PORTRAIT#"}),
        )
        portraits = (to_model(i, Portrait) for i in items)
        return {p.avatar_id: p for p in portraits}

    def claim_catalogue_portrait(
        self,
        avatar_id: str,
        *,
        seed: int,
        previous: Portrait | None,
        regenerate: bool,
        stale_before: datetime,
    ) -> Portrait | None:
        """Claim the right to make a catalogue portrait (its next generation), or None.

        Claimed only if nobody made it yet, or its last attempt failed, or (with
        `regenerate`) it is made; or a claim whose prediction never got created has
        gone stale. A portrait in flight is never claimed again. A regeneration keeps
        the last portrait's key until the new one is made.
        """
        generation = (previous.generation + 1) if previous else 1
        now = utcnow()
        values = {
            "avatar_id": avatar_id, "candidate": 1, "seed": seed, "generation": generation,
            "status": str(PortraitStatus.REQUESTED), "requested_at": iso(now),
            "updated_at": iso(now),
        }
        if previous is None:
            condition = "attribute_not_exists(pk)"
            condition_values: dict[str, Any] = {}
        else:
            reclaimable = [":failed"] + ([":ready"] if regenerate else [])
            condition = (
                "#generation = :previous AND (#status IN ({}) OR (#status = :requested "
                "AND attribute_not_exists(prediction_id) AND requested_at < :stale))"
            ).format(", ".join(reclaimable))
            condition_values = {
                "#generation": "generation", "#status": "status",
                ":previous": previous.generation, ":failed": str(PortraitStatus.FAILED),
                ":requested": str(PortraitStatus.REQUESTED), ":stale": iso(stale_before),
            }
            if regenerate:
                condition_values[":ready"] = str(PortraitStatus.READY)
        new = self._update(
            portrait_key(avatar_id),
            set_values=values,
            remove=["prediction_id", "error"],
            condition=condition,
            condition_values=condition_values,
            returns="ALL_NEW",
        )
        return Portrait.model_validate(new) if new else None

    def bind_portrait(
        self, avatar_id: str, candidate: int, generation: int, prediction_id: str
    ) -> bool:
        """Point a claimed portrait at its prediction, once."""
        return self._update(
            portrait_key(avatar_id, candidate),
            set_values={"status": str(PortraitStatus.GENERATING),
                        "prediction_id": prediction_id, "updated_at": iso(utcnow())},
            condition=("#status = :requested AND #generation = :g "
                       "AND attribute_not_exists(prediction_id)"),
            condition_values={"#status": "status", "#generation": "generation",
                              ":requested": str(PortraitStatus.REQUESTED), ":g": generation},
        ) is not None

    def settle_portrait(
        self,
        avatar_id: str,
        candidate: int,
        prediction_id: str,
        *,
        key: str | None,
        error: str | None,
    ) -> Portrait | None:
        """Record what the portrait's own prediction made; None if it is not (or no longer)
        that prediction's to record."""
        now = iso(utcnow())
        values: dict[str, Any] = {"updated_at": now}
        if key is not None:
            values.update(status=str(PortraitStatus.READY), key=key, generated_at=now)
            remove: list[str] = ["error"]
        else:
            values.update(status=str(PortraitStatus.FAILED), error=error or "not made")
            remove = []
        new = self._update(
            portrait_key(avatar_id, candidate),
            set_values=values,
            remove=remove,
            condition="prediction_id = :p AND #status = :generating",
            condition_values={"#status": "status", ":p": prediction_id,
                              ":generating": str(PortraitStatus.GENERATING)},
            returns="ALL_NEW",
        )
        return Portrait.model_validate(new) if new else None

    def fail_unbound(self, avatar_id: str, candidate: int, error: str) -> bool:
        """A claimed portrait whose prediction could not be created: failed, nothing paid."""
        return self._update(
            portrait_key(avatar_id, candidate),
            set_values={"status": str(PortraitStatus.FAILED), "error": error,
                        "updated_at": iso(utcnow())},
            condition="#status = :requested AND attribute_not_exists(prediction_id)",
            condition_values={"#status": "status",
                              ":requested": str(PortraitStatus.REQUESTED)},
        ) is not None


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, (AvatarStatus, PortraitStatus)):
        return str(value)
    return value
