"""Headless Chromium for the before/after page: read its rendered DOM, or take its picture.

    python -m cutout_dev.browser check demo-output/index.html        # exit 0 when every image loaded
    python -m cutout_dev.browser screenshot demo-output/index.html docs/demo.png

Chromium is the Debian package ``chromium`` (the Makefile installs it when missing). Each run gets a throwaway
profile (two runs at once would otherwise fight over the default profile's lock) and a hard timeout; the page's
own script sets the marker read here (``cutout_dev.gallery``). ``--virtual-time-budget`` lets the page's timers
and image loads finish before the DOM is dumped or the picture taken, without sleeping for real.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT_SECONDS = 45.0
VIRTUAL_TIME_MS = 10_000


class BrowserMissing(RuntimeError):
    pass


class Rendered(NamedTuple):
    images: str  # the page's marker: "loaded", "broken: ...", or "" when the script never ran
    image_count: int
    dom: str


def find_chromium() -> str:
    explicit = os.environ.get("CHROMIUM")
    for name in (explicit,) if explicit else CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    raise BrowserMissing("headless Chromium not found (Debian: apt-get install -y chromium; or set CHROMIUM)")


def _run(page: Path, *extra: str, timeout: float = TIMEOUT_SECONDS) -> str:
    with tempfile.TemporaryDirectory(prefix="cutout-chromium-") as profile:
        cmd = [
            find_chromium(),
            "--headless",
            "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--virtual-time-budget={VIRTUAL_TIME_MS}",
            *extra,
            page.resolve().as_uri() + "#still",  # a live page does not reload itself (cutout_dev.gallery)
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"chromium exited {proc.returncode}: {tail}")
    return proc.stdout


def render(page: Path, *, timeout: float = TIMEOUT_SECONDS) -> Rendered:
    """The page's DOM after scripts ran, and the image marker its script set."""
    dom = _run(page, "--dump-dom", timeout=timeout)
    body = re.search(r"<body([^>]*)>", dom)
    attrs = body.group(1) if body else ""
    marker = re.search(r'data-images="([^"]*)"', attrs)
    count = re.search(r'data-image-count="(\d+)"', attrs)
    return Rendered(marker.group(1) if marker else "", int(count.group(1)) if count else 0, dom)


def screenshot(page: Path, out: Path, *, width: int = 1280, height: int = 900) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    _run(page, f"--screenshot={out.resolve()}", f"--window-size={width},{height}")
    if not out.is_file():
        raise RuntimeError(f"chromium wrote no screenshot at {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cutout_dev.browser", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    check = sub.add_parser("check", help="exit 0 when the page rendered and every image loaded")
    check.add_argument("page", type=Path)
    shot = sub.add_parser("screenshot", help="a PNG of the page")
    shot.add_argument("page", type=Path)
    shot.add_argument("out", type=Path)
    shot.add_argument("--width", type=int, default=1280)
    shot.add_argument("--height", type=int, default=900)
    args = parser.parse_args(argv)
    try:
        if args.action == "check":
            rendered = render(args.page)
            print(f"{args.page}: {rendered.image_count} images, {rendered.images or 'marker not set'}")
            return 0 if rendered.images == "loaded" else 1
        print(screenshot(args.page, args.out, width=args.width, height=args.height))
        return 0
    except (BrowserMissing, RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"cutout_dev.browser: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
