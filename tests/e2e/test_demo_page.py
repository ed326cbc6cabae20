"""The demo as a user runs it: on the emulator whatever the environment says, ending in a before/after page that
a real headless browser renders with every image loaded; and the local stack's page of what was uploaded.

Chromium is the Debian package (``make test`` installs it when missing); the browser reads the marker the page's
own script sets once every image has settled (see cutout_dev.gallery).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cutout_dev import browser
from cutout_dev.gallery import LivePage
from cutout_dev.local_stack import LocalStack
from cutout_dev.local_stack.stack import PROJECT_ROOT
from cutout_dev.make_samples import NON_IMAGE, SAMPLES
from tests.support.waiting import wait_until


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def _demo(args: list[str], env: dict[str, str], timeout: float) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "cutout_dev.demo", *args],
        cwd=PROJECT_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,  # not a terminal, as in CI
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return proc, time.monotonic() - started


def _env_with_a_key() -> dict[str, str]:
    # An exported key, as anyone who uses Magic Hour has, and a "real" API that nothing can reach: if the demo
    # went there it would fail, so finishing proves it stayed on the emulator.
    return {**os.environ, "MAGIC_HOUR_API_KEY": "anything", "MAGIC_HOUR_BASE_URL": _closed_port_url()}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], float, Path]:
    out = tmp_path_factory.mktemp("demo-output")
    proc, seconds = _demo(["--output-dir", str(out)], _env_with_a_key(), timeout=180)
    return proc, seconds, out


def test_demo_with_a_key_exported_stays_on_the_emulator(
    demo_run: tuple[subprocess.CompletedProcess[str], float, Path],
) -> None:
    # given MAGIC_HOUR_API_KEY exported and no reachable API, when `make demo` runs (no flag)
    proc, _seconds, out = demo_run
    # then it used the emulator and every check passed (how long it took is `make demo`'s figure, not a test's)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "the Magic Hour emulator" in proc.stdout
    assert "REAL" not in proc.stdout
    assert "[FAIL]" not in proc.stdout
    assert (out / "index.html").is_file()
    assert sorted(p.name for p in out.glob("*.png")) == sorted(Path(n).stem + ".png" for n in SAMPLES)
    # and the renditions of every sample, by preset, as samples/presets.json names them
    presets = json.loads((PROJECT_ROOT / "samples" / "presets.json").read_text(encoding="utf-8"))["presets"]
    for name, preset in presets.items():
        extension = {"jpeg": "jpg"}.get(preset["format"], preset["format"])
        made = sorted(p.name for p in (out / "renditions" / name).iterdir())
        assert made == sorted(f"{Path(n).stem}.{extension}" for n in SAMPLES), name
    assert "renditions made with no Magic Hour call" in proc.stdout


def test_the_demo_page_renders_in_a_browser_with_every_image_loaded(
    demo_run: tuple[subprocess.CompletedProcess[str], float, Path],
) -> None:
    proc, _, out = demo_run
    assert proc.returncode == 0
    # when a headless browser opens the page the demo wrote
    rendered = browser.render(out / "index.html")
    # then every image decoded: an upload, its cutout and each of its renditions for each sample; the non-image
    # shows its reason instead
    presets = json.loads((PROJECT_ROOT / "samples" / "presets.json").read_text(encoding="utf-8"))["presets"]
    assert len(presets) >= 3  # at least the marketplace JPEG, the WebP thumbnail and the mask
    assert rendered.images == "loaded"
    assert rendered.image_count == (2 + len(presets)) * len(SAMPLES)
    assert rendered.dom.count('<img class="rendition"') == len(presets) * len(SAMPLES)
    for name in presets:
        assert rendered.dom.count(f"-r-{name}.") == len(SAMPLES), name
    assert f"incoming/{NON_IMAGE}" in rendered.dom
    assert "not_an_image" in rendered.dom
    assert rendered.dom.count('class="pane checker"><img src=') == len(SAMPLES)  # each cutout on the checkerboard
    assert 'id="stand-in"' in rendered.dom  # the emulator's cutouts are labelled as a stand-in for Magic Hour's


def test_the_real_api_without_yes_and_no_terminal_is_refused_before_anything_starts() -> None:
    # given the flag but no --yes and no terminal to ask at
    proc, _ = _demo(["--real-magic-hour"], _env_with_a_key(), timeout=60)
    # then one line naming what it would spend, exit 1, no stack started
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0
    assert f"{5 * len(SAMPLES)} credits" in proc.stderr  # one create (5 credits) per sample image
    assert "--yes" in proc.stderr
    assert "Starting the local stack" not in proc.stdout


def test_an_unreachable_real_api_fails_within_seconds_in_one_line() -> None:
    # given the real API asked for and confirmed, but nothing listening there
    proc, _ = _demo(["--real-magic-hour", "--yes"], _env_with_a_key(), timeout=60)
    # then the demo stops at the preflight: one line, exit 1, long before any retry loop could start
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "cannot reach" in proc.stderr
    assert "nothing spent" in proc.stderr


def test_the_local_stack_page_shows_what_was_uploaded(
    make_stack: Callable[..., LocalStack], samples: dict[str, Path], tmp_path: Path
) -> None:
    # given a local stack and a page watching it, before anything is uploaded
    stack = make_stack()
    page = LivePage(tmp_path / "page", stack.client("s3"), default_output_bucket=stack.endpoints.output_bucket)
    assert page.refresh(stack.jobs())
    assert browser.render(page.page).images == "loaded"  # no image yet: nothing can be broken
    # when two images and the non-image are uploaded and finish
    uploads = [stack.upload(samples[n]) for n in ("red flower.png", "green leaf.webp", NON_IMAGE)]
    stack.wait_for_terminal(uploads, timeout=60)
    # then the refreshed page shows them, newest first, and every image loads in a browser
    assert page.refresh(stack.jobs())
    assert not page.refresh(stack.jobs())  # nothing changed: not rewritten
    rendered = browser.render(page.page)
    assert rendered.images == "loaded"
    assert rendered.image_count == 4
    assert "not_an_image" in rendered.dom
    assert 'data-refresh-seconds="3"' in rendered.dom  # the page reloads itself in a user's browser


def _cutout(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cutout_dev.cli", *args],
        cwd=PROJECT_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_local_up_real_api_without_yes_is_refused_in_one_line(tmp_path: Path) -> None:
    env = {**_env_with_a_key(), "CUTOUT_LOCAL_STACK_FILE": str(tmp_path / "endpoints.json")}
    proc = _cutout(["local", "up", "--real-magic-hour"], env)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert err.strip().count("\n") == 0, err
    assert "5 credits for every image you upload" in err
    assert not (tmp_path / "endpoints.json").exists()


def test_local_up_with_a_key_exported_uses_the_emulator_and_names_its_page(tmp_path: Path) -> None:
    # given an exported key and no reachable API, when `cutout local up` starts (no flag)
    state = tmp_path / "endpoints.json"
    env = {**_env_with_a_key(), "CUTOUT_LOCAL_STACK_FILE": str(state)}
    proc = _cutout(["local", "up", "--schedule-interval", "0"], env)
    try:
        wait_until(lambda: state.exists() or proc.poll() is not None, "local up comes up", timeout=90)
        assert state.exists(), "local up did not come up"
        # the page is written right after the endpoints are printed
        wait_until((tmp_path / "page" / "index.html").exists, "the before/after page is written", timeout=30)
    finally:
        proc.terminate()  # SIGTERM stops it cleanly
        out, err = proc.communicate(timeout=60)
    # then Magic Hour was the emulator on loopback, and the page's path was printed once and written
    assert proc.returncode == 0, err[-2000:]
    (magic_hour_line,) = [line for line in out.splitlines() if line.strip().startswith("Magic Hour")]
    assert "http://127.0.0.1:" in magic_hour_line
    assert env["MAGIC_HOUR_BASE_URL"] not in out
    page_lines = [line for line in out.splitlines() if "Before/after page" in line]
    assert len(page_lines) == 1
    page = tmp_path / "page" / "index.html"
    assert page.as_uri() in page_lines[0]
    assert "Nothing uploaded yet" in page.read_text(encoding="utf-8")
