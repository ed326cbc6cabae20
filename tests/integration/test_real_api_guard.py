"""The real, paid Magic Hour API is used only when asked for, confirmed, reachable and accepting the key.

The "real" API here is the emulator over HTTP (as MAGIC_HOUR_BASE_URL points real mode at it), a closed port, and a
socket that accepts and never answers: no test reaches the internet.
"""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator

import pytest

from cutout_dev.emulator import EmulatorServer
from cutout_dev.real_api import RealApiRefused, RealApiTarget, confirm, preflight, target_from_env
from tests.conftest import API_KEY


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections (the backlog does) and never answers: a black hole, like a stalled proxy."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


def test_no_key_in_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAGIC_HOUR_API_KEY", raising=False)
    with pytest.raises(RealApiRefused, match="needs MAGIC_HOUR_API_KEY"):
        target_from_env()


def test_without_a_terminal_it_refuses_unless_yes_and_names_the_credits() -> None:
    target = RealApiTarget("https://api.example.test", "k")
    # given no terminal and no --yes, when confirming 4 images, then refused, naming 20 credits and --yes
    with pytest.raises(RealApiRefused) as refused:
        confirm(target, 4, assume_yes=False, stdin=io.StringIO(""), stdout=io.StringIO())
    assert "20 credits" in str(refused.value)
    assert "--yes" in str(refused.value)
    assert "\n" not in str(refused.value)
    # when --yes is given, then it goes ahead and says what it may spend
    said = io.StringIO()
    confirm(target, 4, assume_yes=True, stdin=io.StringIO(""), stdout=said)
    assert "up to 20 credits" in said.getvalue()


@pytest.mark.parametrize(("answer", "goes_ahead"), [("y\n", True), ("yes\n", True), ("\n", False), ("no\n", False)])
def test_at_a_terminal_only_yes_goes_ahead(answer: str, goes_ahead: bool) -> None:
    target = RealApiTarget("https://api.example.test", "k")
    asked = io.StringIO()
    if goes_ahead:
        confirm(target, None, assume_yes=False, stdin=_Terminal(answer), stdout=asked)
    else:
        with pytest.raises(RealApiRefused, match="not confirmed"):
            confirm(target, None, assume_yes=False, stdin=_Terminal(answer), stdout=asked)
    # the question names the price per image when the number of images is not known (the local stack)
    assert "5 credits for every image you upload" in asked.getvalue()


def test_preflight_passes_with_a_valid_key_and_spends_nothing(emulator: EmulatorServer) -> None:
    preflight(RealApiTarget(emulator.base_url, API_KEY))
    assert emulator.state.creates == []


def test_preflight_refuses_a_bad_key_in_one_line(emulator: EmulatorServer) -> None:
    with pytest.raises(RealApiRefused, match="refused MAGIC_HOUR_API_KEY") as refused:
        preflight(RealApiTarget(emulator.base_url, "not-the-key"))
    assert "not-the-key" not in str(refused.value)  # never echo a key
    assert "\n" not in str(refused.value)


def test_an_unreachable_api_fails_at_once() -> None:
    # a refused connection is the answer itself (ConnectionError), not the bound running out
    with pytest.raises(RealApiRefused, match=r"cannot reach .* \(ConnectionError\)"):
        preflight(RealApiTarget(f"http://127.0.0.1:{_closed_port()}", "k"), seconds=5)


def test_an_api_that_never_answers_fails_within_the_bound(silent_server: str) -> None:
    # the refusal comes from the bound: the read timeout inside it, or the bound itself (name resolution too)
    with pytest.raises(RealApiRefused, match=r"cannot reach .*(\(ReadTimeout\)|within 1 s)"):
        preflight(RealApiTarget(silent_server, "k"), seconds=1.0)
