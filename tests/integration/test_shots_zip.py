"""The "download all" zip against moto's S3 and DynamoDB: every delivered image, in shot
order, written to the bucket in parts once it outgrows memory, and made once per count."""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass
from datetime import timedelta

import boto3
import pytest

from lightbox.adapters.dynamo import DynamoStore
from lightbox.adapters.s3 import ObjectStore
from lightbox.config import Settings
from lightbox.errors import NotFound
from lightbox.models import Job, JobStatus, Shot, ShotStatus, utcnow
from lightbox.services import jobs
from tests.integration.conftest import REGION, TABLE, AtomicRequests

USER, BUCKET = "user-zip", "lightbox-zip-test"


@dataclass
class ZipContext:
    """What `zip_shots` needs of the context."""

    store: DynamoStore
    objects: ObjectStore
    settings: Settings


@pytest.fixture
def ctx(dynamodb: AtomicRequests) -> ZipContext:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    store = DynamoStore(dynamodb, TABLE)
    return ZipContext(store=store, objects=ObjectStore(s3, BUCKET),
                      settings=Settings(BUCKET_NAME=BUCKET))


def a_job_with_shots(ctx: ZipContext, job_id: str, delivered: int, rejected: int) -> dict:
    """A finished job; returns each delivered image's bytes by its zip name."""
    job = Job(job_id=job_id, user_id=USER, status=JobStatus.PARTLY_DONE,
              scenes=["white-studio"], variants=delivered + rejected, presets=["original", "etsy"],
              shots_total=delivered + rejected, source_key=f"uploads/{USER}/{job_id}/original",
              deadline=utcnow() + timedelta(minutes=20))
    ctx.store.client.transact_write_items(TransactItems=[ctx.store.new_job(job)])
    expected, shots = {}, []
    for index in range(delivered + rejected):
        shot_id = f"{index + 1:03d}"
        shot = Shot(job_id=job_id, shot_id=shot_id, index=index, scene_id="white-studio",
                    variant=index + 1, seed=index)
        if index < delivered:
            shot.status = ShotStatus.DELIVERED
            for preset, ext in (("original", "png"), ("etsy", "jpg")):
                key = f"shots/{USER}/{job_id}/{shot_id}/{preset}.{ext}"
                data = os.urandom(200 * 1024)  # incompressible, like an encoded image
                ctx.objects.put(key, data, "image/jpeg")
                shot.outputs[preset] = key
                expected[f"{shot_id}-white-studio-v{index + 1}-{preset}.{ext}"] = data
        else:
            shot.status = ShotStatus.REJECTED
        shots.append(shot)
    ctx.store.put_shots(shots)
    return expected


def zip_entries(ctx: ZipContext, job_id: str, files: int) -> tuple[list[str], dict]:
    data = ctx.objects.get(f"work/{USER}/{job_id}/shots-{files}.zip")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        return names, {name: archive.read(name) for name in names}


def test_every_delivered_image_is_in_the_zip_in_shot_order(ctx, monkeypatch):
    # Given a job of 30 delivered and 3 rejected shots (12 MB of images: more than one
    # part of an upload), and a zip that leaves memory past 1 MB
    monkeypatch.setattr(jobs, "ZIP_IN_MEMORY_BYTES", 2**20)
    expected = a_job_with_shots(ctx, "job-zip", delivered=30, rejected=3)

    made = jobs.zip_shots(ctx, USER, "job-zip")

    assert made.files == 60
    names, contents = zip_entries(ctx, "job-zip", made.files)
    assert names == sorted(expected)  # shot by shot, each shot's presets by name
    assert contents == expected
    assert "lightbox-job-zip.zip" in made.url


def test_a_zip_already_made_for_the_same_shots_is_not_made_again(ctx, monkeypatch):
    a_job_with_shots(ctx, "job-zip", delivered=2, rejected=0)
    first = jobs.zip_shots(ctx, USER, "job-zip")

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("the zip was written again")

    monkeypatch.setattr(ctx.objects, "upload", fail)
    again = jobs.zip_shots(ctx, USER, "job-zip")
    assert again.files == first.files == 4


def test_another_users_job_has_no_zip(ctx):
    a_job_with_shots(ctx, "job-zip", delivered=1, rejected=0)
    with pytest.raises(NotFound, match="No such job"):
        jobs.zip_shots(ctx, "someone-else", "job-zip")
