"""Images in S3: originals under uploads/, intermediates under work/, results under shots/.

Nothing in the bucket is public: browsers and the CLI read through short-lived
presigned GETs and write through presigned POSTs whose policy fixes the key, the
content type family and the size range.
"""

from __future__ import annotations

from typing import Any, BinaryIO

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import ClientError

from lightbox.errors import NotFound, TransientError


def upload_key(user_id: str, job_id: str) -> str:
    return f"uploads/{user_id}/{job_id}/original"


def work_prefix(user_id: str, job_id: str) -> str:
    return f"work/{user_id}/{job_id}"


def shots_prefix(user_id: str, job_id: str) -> str:
    return f"shots/{user_id}/{job_id}"


def parse_upload_key(key: str) -> tuple[str, str] | None:
    """(user_id, job_id) of an original's key, or None for anything else."""
    parts = key.split("/")
    if len(parts) == 4 and parts[0] == "uploads" and parts[3] == "original" and all(parts):
        return parts[1], parts[2]
    return None


class ObjectStore:
    def __init__(self, client: Any, bucket: str, *, public_client: Any | None = None) -> None:
        self.client = client
        self.bucket = bucket
        # Presigned URLs must name the endpoint the browser reaches; in AWS that is
        # the same client, locally it may differ from the one the functions use.
        self.public_client = public_client or client

    def put(self, key: str, data: bytes, content_type: str, **extra: Any) -> None:
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, **extra
            )
        except ClientError as error:
            raise _fault(error) from error

    def upload(self, key: str, source: BinaryIO, content_type: str) -> None:
        """Write a large object from a file, in parts (boto3's managed transfer)."""
        try:
            self.client.upload_fileobj(source, self.bucket, key,
                                       ExtraArgs={"ContentType": content_type})
        except ClientError as error:
            raise _fault(error) from error
        except S3UploadFailedError as error:
            raise TransientError("Writing to the bucket failed; try again.") from error

    def get(self, key: str, *, max_bytes: int | None = None) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404", "NotFound"):
                raise NotFound(f"No object at {key}.") from error
            raise _fault(error) from error
        body = response["Body"]
        if max_bytes is None:
            return body.read()
        data = body.read(max_bytes + 1)
        body.close()
        return data

    def head(self, key: str) -> dict[str, Any] | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404", "NotFound"):
                return None
            raise _fault(error) from error

    def presigned_get(self, key: str, expires: int, *, filename: str | None = None) -> str:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if filename:
            params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
        return self.public_client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=expires
        )

    def presigned_post(
        self, key: str, *, max_bytes: int, expires: int
    ) -> dict[str, Any]:
        """A form POST straight to the bucket: exact key, images only, bounded size."""
        return self.public_client.generate_presigned_post(
            Bucket=self.bucket,
            Key=key,
            Fields={"success_action_status": "201"},
            Conditions=[
                {"key": key},
                ["starts-with", "$Content-Type", "image/"],
                ["content-length-range", 1, max_bytes],
                {"success_action_status": "201"},
            ],
            ExpiresIn=expires,
        )


def _fault(error: ClientError) -> Exception:
    code = error.response.get("Error", {}).get("Code", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if code in ("SlowDown", "ServiceUnavailable", "InternalError") or status >= 500:
        return TransientError(f"S3 is busy ({code}); try again.")
    return error
