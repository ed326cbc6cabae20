from __future__ import annotations

import pytest
from cutout.domain.errors import WebhookRejected
from cutout.magic_hour.webhook_auth import MAX_BODY_BYTES, sign, verify

SECRET = "s3cr3t"
BODY = b'{"type":"image.completed","payload":{"id":"x"}}'
NOW = 1_764_000_000


def headers(ts: int = NOW, sig: str | None = None, body: bytes = BODY) -> dict[str, str]:
    return {
        "Magic-Hour-Event-Timestamp": str(ts),
        "magic-hour-event-signature": sig if sig is not None else sign(SECRET, str(ts), body),
    }


def test_valid_signature_over_raw_bytes_is_accepted() -> None:
    assert verify(headers(), BODY, SECRET, now=NOW + 299) == sign(SECRET, str(NOW), BODY)


def test_signature_matches_the_documented_construction() -> None:
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), f"{NOW}.{BODY.decode()}".encode(), hashlib.sha256).hexdigest()
    assert sign(SECRET, str(NOW), BODY) == expected


@pytest.mark.parametrize(
    ("hdrs", "body", "now", "status"),
    [
        (headers(sig="0" * 64), BODY, NOW, 401),
        (headers(), BODY + b" ", NOW, 401),  # re-serialised / tampered body
        (headers(), BODY, NOW + 301, 401),
        (headers(), BODY, NOW - 301, 401),
        ({"magic-hour-event-signature": "ab"}, BODY, NOW, 401),
        ({"magic-hour-event-timestamp": str(NOW)}, BODY, NOW, 401),
        (headers() | {"magic-hour-event-timestamp": "12.5"}, BODY, NOW, 401),
        (headers(), b"x" * (MAX_BODY_BYTES + 1), NOW, 413),
    ],
)
def test_bad_deliveries_are_rejected(hdrs: dict[str, str], body: bytes, now: int, status: int) -> None:
    with pytest.raises(WebhookRejected) as err:
        verify(hdrs, body, SECRET, now=now)
    assert err.value.status == status


@pytest.mark.parametrize(
    ("hdrs", "body", "now"),
    [
        ({}, BODY, NOW),  # unsigned
        (headers(), BODY, NOW + 3600),  # stale: a genuine delivery replayed an hour later
        (headers(), BODY, NOW - 3600),  # from the future
        (headers() | {"magic-hour-event-timestamp": "soon"}, BODY, NOW),
        (headers(sig="not-a-sha256"), BODY, NOW),  # no hex SHA-256 can match it
        (headers(), b"x" * (MAX_BODY_BYTES + 1), NOW),
    ],
)
def test_requests_that_cannot_be_authentic_never_ask_for_the_secret(
    hdrs: dict[str, str], body: bytes, now: int
) -> None:
    # given: the secret behind a read that must not happen (in Lambda: a Secrets Manager call)
    def secret() -> str:
        raise AssertionError("the secret was read for a request that could not be authentic")

    # when / then: rejected on what the request itself shows
    with pytest.raises(WebhookRejected):
        verify(hdrs, body, secret, now=now)


def test_a_plausible_delivery_reads_the_secret_once_to_check_it() -> None:
    reads: list[int] = []

    def secret() -> str:
        reads.append(1)
        return SECRET

    assert verify(headers(), BODY, secret, now=NOW) == sign(SECRET, str(NOW), BODY)
    with pytest.raises(WebhookRejected):
        verify(headers(sig="0" * 64), BODY, secret, now=NOW)  # forged, fresh: only the secret can tell
    assert len(reads) == 2
