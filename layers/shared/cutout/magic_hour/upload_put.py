"""The PUT of an asset's bytes to Magic Hour's signed upload URL."""

from __future__ import annotations

from typing import IO

import requests


def put_with_length(
    url: str, data: IO[bytes] | bytes, size: int | None, timeout: tuple[float, float]
) -> requests.Response:
    """PUT `data` with its length declared. requests cannot measure a stream that cannot seek, such as an S3 body,
    and would send it chunked, which signed PUT URLs of object stores refuse (S3 answers 501 to a
    Transfer-Encoding it does not implement): the prepared request says Content-Length, so it is streamed whole."""
    request = requests.Request("PUT", url, data=data).prepare()
    if size is not None and not isinstance(data, bytes):
        request.headers.pop("Transfer-Encoding", None)
        request.headers["Content-Length"] = str(size)
    with requests.Session() as session:
        return session.send(request, timeout=timeout)
