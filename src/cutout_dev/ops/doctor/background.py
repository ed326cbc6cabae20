"""The objects the configuration names: the default background (``DefaultBackgroundKey``) exists in the images
bucket and is an image Magic Hour accepts. A missing one rejects every upload (``background_invalid``); those
rejections are retryable once it is fixed, which the fix says."""

from __future__ import annotations

import shlex
from typing import Any

from botocore.exceptions import ClientError
from cutout.aws.inspection import SNIFF_BYTES, Inspected, key_shape_problem, problem
from cutout.runtime.config import Settings

from cutout_dev.ops.doctor.base import Check, DoctorContext

NAME = "default-background"


class BackgroundChecks:
    def __init__(self, ctx: DoctorContext) -> None:
        self.ctx = ctx

    def default_background(self) -> Check:
        target = self.ctx.target
        key = (target.parameters.get("DefaultBackgroundKey") or "").lstrip("/")
        if not key:
            return Check(NAME, "ok", "no default background (DefaultBackgroundKey is empty: cutouts are transparent)")
        uri = f"s3://{target.bucket}/{key}"
        upload = f"{self.ctx.aws} s3 cp BACKGROUND.png {shlex.quote(uri)}"
        retry = f"{self.ctx.cutout} retry --status rejected --code background_invalid --yes"
        seen = self._read(target.bucket, key)
        if seen is None:
            return Check(
                NAME,
                "fail",
                f"the default background {uri} does not exist: every upload is rejected (background_invalid)",
                f"{upload}\n{retry}   # the uploads it rejected meanwhile",
            )
        refused = key_shape_problem(key) or problem(seen, self._settings())
        if refused:
            code, why = refused
            return Check(
                NAME,
                "fail",
                f"the default background {uri} is not an image Magic Hour accepts ({code}: {why}): every upload "
                "is rejected (background_invalid)",
                f"{upload}   # a PNG or JPEG, over the same key\n{retry}",
            )
        return Check(NAME, "ok", f"the default background {uri} exists ({seen.size:,} bytes, an image)")

    def _settings(self) -> Settings:
        params = self.ctx.target.parameters
        env = {"JOBS_TABLE": "-"}  # the checks of an upload need no table: the name only satisfies the parsing
        if params.get("MaxInputBytes"):
            env["MAX_INPUT_BYTES"] = params["MaxInputBytes"]
        return Settings.from_env(env)

    def _read(self, bucket: str, key: str) -> Inspected | None:
        """The object's first bytes, size and type as the submit reads an upload (None: no such key)."""
        s3 = self.ctx.target.client("s3")
        try:
            resp: dict[str, Any] = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{SNIFF_BYTES - 1}")
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("NoSuchKey", "404") or status == 404:
                return None
            if code == "InvalidRange" or status == 416:
                return Inspected(key, "", None, 0, "", b"", {})  # empty
            raise
        content_range = str(resp.get("ContentRange") or "")
        size = int(content_range.rsplit("/", 1)[1]) if "/" in content_range else int(resp.get("ContentLength", 0))
        content_type = str(resp.get("ContentType") or "").split(";")[0].strip().lower()
        return Inspected(key, str(resp.get("ETag", "")), None, size, content_type, resp["Body"].read(), {})
