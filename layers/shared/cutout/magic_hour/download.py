"""Fetch Magic Hour's result: stream it (bounded) into a spool, checking on the way that it is a whole PNG."""

from __future__ import annotations

from typing import IO

import requests

from cutout.domain.errors import InvalidOutput, RetryLater, UrlExpired

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_TRAILER = b"IEND\xaeB`\x82"
DOWNLOAD_CHUNK = 1024 * 1024
HEAD_BYTES = 64
TAIL_BYTES = 16


def check_png(head: bytes, tail: bytes) -> None:
    if not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR":
        raise InvalidOutput("invalid_output", "the download is not a PNG")
    if not tail.endswith(PNG_TRAILER):
        raise InvalidOutput("invalid_output", "the PNG is truncated (no IEND)")


def download(url: str, sink: IO[bytes], limit: int) -> int:
    """Stream `url` into `sink`; returns the size. Raises UrlExpired (401/403/404/410), InvalidOutput (too large,
    not a whole PNG) or RetryLater (5xx, redirect, network)."""
    try:
        # Signed storage URLs point straight at their object: redirects are refused, not followed.
        with requests.get(url, stream=True, timeout=(3.05, 30), allow_redirects=False) as resp:
            if resp.status_code in (401, 403, 404, 410):
                raise UrlExpired(resp.status_code)
            if resp.status_code != 200:
                raise RetryLater(f"download answered {resp.status_code}")
            declared = resp.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > limit:
                raise InvalidOutput("output_too_large", f"output of {declared} bytes exceeds {limit}")
            size, head, tail = 0, b"", b""
            for chunk in resp.iter_content(DOWNLOAD_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise InvalidOutput("output_too_large", f"output exceeds {limit} bytes")
                if len(head) < HEAD_BYTES:
                    head = (head + chunk)[:HEAD_BYTES]
                tail = (tail + chunk)[-TAIL_BYTES:]
                sink.write(chunk)
    except requests.exceptions.RequestException as exc:
        raise RetryLater(f"download failed: {type(exc).__name__}") from None
    check_png(head, tail)
    return size
