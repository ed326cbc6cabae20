"""The URLs Magic Hour fetches an upload (and its background) from: presigned S3 GETs, or — when Magic Hour
cannot reach the bucket — Magic Hour's own upload URLs with the bytes sent there."""

from __future__ import annotations

from typing import IO, Any, cast

from cutout.aws import aws_clients
from cutout.aws.inspection import IMAGE_EXTENSIONS, extension_of
from cutout.domain.errors import InvalidBackground
from cutout.domain.job import SourceObject
from cutout.magic_hour.client import MagicHourAccess
from cutout.runtime.config import Settings


class Assets:
    def __init__(self, settings: Settings, magic_hour: MagicHourAccess) -> None:
        self.settings = settings
        self.magic_hour = magic_hour

    def urls(self, source: SourceObject) -> tuple[str, str | None]:
        """(image URL, background URL or None). Raises InvalidBackground for a background we must not use."""
        background = None
        if source.background_key:
            self._check_background(source.bucket, source.background_key)
            background = self._url(source.bucket, source.background_key, None)
        return self._url(source.bucket, source.key, source.version_id), background

    def _check_background(self, bucket: str, key: str) -> None:
        if key != self.settings.default_background_key and not key.startswith(self.settings.background_prefix):
            raise InvalidBackground(f"background {key!r} is not under {self.settings.background_prefix!r}")
        if extension_of(key) not in IMAGE_EXTENSIONS:
            raise InvalidBackground(f"background {key!r} has no image extension")
        if not _exists(bucket, key):
            raise InvalidBackground(f"background {key!r} does not exist")

    def _url(self, bucket: str, key: str, version_id: str | None) -> str:
        params: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id:
            params["VersionId"] = version_id
        if self.settings.asset_transfer == "upload":
            # Magic Hour cannot reach this bucket (loopback, or a policy forbidding presigned access):
            # hand it the bytes through its own upload URL instead, streamed from S3 (never whole in memory).
            obj = aws_clients.s3().get_object(**params)
            with obj["Body"] as body:  # botocore's StreamingBody: a readable stream (an io.IOBase)
                stream = cast("IO[bytes]", body)
                return self.magic_hour().upload_asset(stream, extension_of(key), size=int(obj["ContentLength"]))
        # The key (with its extension) stays in the URL path, which is what Magic Hour needs to see.
        return aws_clients.s3().generate_presigned_url(
            "get_object", Params=params, ExpiresIn=self.settings.presign_expires_seconds
        )


def _exists(bucket: str, key: str) -> bool:
    """Whether the background exists: False on 404 only. S3 answers 404 to a HEAD of a missing key only when the
    caller may `s3:ListBucket` the bucket (403 otherwise: HeadObject API reference, "Permissions"), which the
    submit role may on the images bucket; any other answer (a 403 from KMS or a bucket policy, a throttle) raises,
    so the upload is retried rather than rejected for good over a background that may well exist."""
    from botocore.exceptions import ClientError

    try:
        aws_clients.s3().head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("404", "NoSuchKey", "NotFound") or status == 404:
            return False
        raise
    return True
