"""Bad input ends the job as failed, with a clear reason, and creates no prediction."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from lightbox.models import JobStatus
from lightbox.services.context import get_context
from tests.flow.conftest import Shop

pytestmark = [pytest.mark.flow, pytest.mark.slow]


def _png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge image: a decompression bomb."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + \
        chunk(b"IEND", b"")


def _truncated_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (800, 600), (200, 120, 40)).save(buffer, format="JPEG")
    return buffer.getvalue()[: len(buffer.getvalue()) // 3]


BAD_UPLOADS = {
    "not an image": (b"%PDF-1.7 this is a document, not a photo" * 10, "image/png", "not"),
    "empty": (b"", "image/png", "empty"),
    "truncated": (_truncated_jpeg(), "image/jpeg", "damaged"),
    "decompression bomb": (_png_declaring(40_000, 40_000), "image/png", "megapixels"),
}


@pytest.mark.parametrize("case", sorted(BAD_UPLOADS))
def test_a_bad_upload_fails_the_job_with_a_reason_and_costs_nothing(
    paying_shop: Shop, case: str
) -> None:
    data, content_type, words = BAD_UPLOADS[case]
    created_before = paying_shop.stack.engine.stats["created"]
    ticket = paying_shop.order(["white-studio", "grey-studio"]).json()
    response = paying_shop.upload(ticket, data, content_type)
    if response.status_code != 201:
        # An empty body is refused by the bucket itself (content-length-range in AWS);
        # then no event ever comes and the sweeper closes the job at its deadline.
        pytest.skip(f"the bucket refused the upload ({response.status_code})")
    job = paying_shop.wait_for_job(ticket["job_id"], timeout=60)
    assert job.status == JobStatus.FAILED
    assert job.reason and words in job.reason.lower()
    assert paying_shop.stack.engine.stats["created"] == created_before
    account = paying_shop.settled_balance(200)
    assert (account["balance"], account["reserved"]) == (200, 0)


def test_an_upload_over_the_size_limit_fails_the_job(paying_shop: Shop) -> None:
    limit = get_context().settings.max_upload_bytes
    data = b"\x89PNG\r\n\x1a\n" + b"\x00" * limit
    ticket = paying_shop.order(["white-studio"]).json()
    assert paying_shop.upload(ticket, data).status_code == 201  # moto does not enforce the policy
    job = paying_shop.wait_for_job(ticket["job_id"], timeout=60)
    assert job.status == JobStatus.FAILED
    assert "limit" in (job.reason or "")
    assert paying_shop.settled_balance(200)["balance"] == 200


def test_an_upload_under_another_users_folder_fails_that_job(
    paying_shop: Shop, coffee: bytes
) -> None:
    # Given a job of this shop, and its photo written under someone else's prefix
    ticket = paying_shop.order(["white-studio"]).json()
    key = ticket["fields"]["key"].replace(f"uploads/{paying_shop.user}/", "uploads/intruder/")
    created_before = paying_shop.stack.engine.stats["created"]
    paying_shop.stack.client("s3").put_object(
        Bucket="lightbox-images", Key=key, Body=coffee, ContentType="image/png")
    # Then the job named in the key ends failed, without any prediction
    job = paying_shop.wait_for_job(ticket["job_id"], timeout=60)
    assert job.status == JobStatus.FAILED
    assert "another user" in (job.reason or "")
    assert paying_shop.stack.engine.stats["created"] == created_before
    assert paying_shop.settled_balance(200)["balance"] == 200
