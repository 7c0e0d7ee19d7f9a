"""Portrait records: every write that must happen once is conditional (moto DynamoDB)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lightbox.adapters.avatar_store import AvatarStore
from lightbox.models import Avatar, AvatarStatus, Portrait, PortraitStatus, utcnow
from tests.integration.conftest import TABLE


@pytest.fixture
def store(dynamodb) -> AvatarStore:
    return AvatarStore(dynamodb, TABLE)


def _claim(store: AvatarStore, previous: Portrait | None, *, regenerate: bool = False,
           stale_before=None) -> Portrait | None:
    return store.claim_catalogue_portrait(
        "c007", seed=42, previous=previous, regenerate=regenerate,
        stale_before=stale_before or utcnow() - timedelta(minutes=10))


def test_a_catalogue_portrait_is_claimed_bound_and_settled_once(store: AvatarStore) -> None:
    # Given a catalogue portrait nobody made
    claimed = _claim(store, None)
    assert claimed is not None and claimed.status == PortraitStatus.REQUESTED
    # When a second batch tries to claim it too, it cannot
    assert _claim(store, None) is None
    # and its prediction is bound once
    assert store.bind_portrait("c007", 1, claimed.generation, "p1")
    assert not store.bind_portrait("c007", 1, claimed.generation, "p2")
    # and while it is in flight nobody claims it, not even to regenerate it
    in_flight = store.get_portrait("c007")
    assert in_flight is not None and in_flight.status == PortraitStatus.GENERATING
    assert _claim(store, in_flight, regenerate=True) is None
    # When another prediction reports for it, nothing is recorded
    assert store.settle_portrait("c007", 1, "p2", key="avatars/catalog/c007.jpg",
                                 error=None) is None
    # and its own prediction records it once
    made = store.settle_portrait("c007", 1, "p1", key="avatars/catalog/c007.jpg", error=None)
    assert made is not None and made.status == PortraitStatus.READY
    assert store.settle_portrait("c007", 1, "p1", key="x", error=None) is None
    # Then a made portrait is claimed again only to regenerate it, as its next generation
    assert _claim(store, made) is None
    again = _claim(store, made, regenerate=True)
    assert again is not None and again.generation == 2
    # keeping the last portrait's key until the new one is made
    assert again.key == "avatars/catalog/c007.jpg" and again.prediction_id is None
    # and a claim from a stale read (generation 1) loses to the one that won
    assert _claim(store, made, regenerate=True) is None


def test_a_claim_whose_prediction_never_came_is_claimed_again_once_stale(
    store: AvatarStore,
) -> None:
    claimed = _claim(store, None)
    assert claimed is not None
    # Not yet stale: the first claimant may still be creating the prediction
    assert _claim(store, claimed) is None
    # Stale: another batch takes it over
    retaken = _claim(store, claimed, stale_before=utcnow() + timedelta(seconds=1))
    assert retaken is not None and retaken.generation == 2


def test_a_failed_portrait_is_claimed_again_and_unbound_claims_fail_without_a_prediction(
    store: AvatarStore,
) -> None:
    claimed = _claim(store, None)
    assert claimed is not None
    assert store.fail_unbound("c007", 1, "the model could not be asked")
    failed = store.get_portrait("c007")
    assert failed is not None and failed.status == PortraitStatus.FAILED
    assert not store.fail_unbound("c007", 1, "again")
    assert _claim(store, failed) is not None


def test_custom_avatars_are_listed_for_their_owner_only(store: AvatarStore) -> None:
    for owner, avatar_id in (("shop-a", "a1"), ("shop-a", "a2"), ("shop-b", "a3")):
        store.put_avatar(Avatar(avatar_id=avatar_id, owner_id=owner, name=avatar_id,
                                attributes={}, prompt="p", candidates=1, price_each=1,
                                credits_reserved=1))
    assert {a.avatar_id for a in store.list_avatars("shop-a")} == {"a1", "a2"}
    assert [a.avatar_id for a in store.list_avatars("shop-b")] == ["a3"]
    # and a status change is conditional on the status expected
    assert store.update_avatar("a1", expect=[AvatarStatus.CHOOSING], chosen=1) is None
    moved = store.update_avatar("a1", expect=[AvatarStatus.GENERATING],
                                status=AvatarStatus.CHOOSING)
    assert moved is not None and moved.status == AvatarStatus.CHOOSING


def test_a_custom_avatars_candidates_are_kept_apart_from_the_catalogue(store: AvatarStore) -> None:
    store.put_portrait(Portrait(avatar_id="a9", candidate=2, seed=1))
    store.put_portrait(Portrait(avatar_id="a9", candidate=1, seed=2))
    assert not store.put_portrait(Portrait(avatar_id="a9", candidate=1, seed=3))
    assert [p.candidate for p in store.get_candidates("a9")] == [1, 2]
    assert store.catalogue_portraits() == {}
