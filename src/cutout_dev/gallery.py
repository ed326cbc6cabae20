"""The before/after page: every upload beside its cutout, on a checkerboard, with status, credits and latency, and
the renditions made from the cutout below them (each file as the bucket holds it).

A cutout is a PNG whose background is transparent, and most image viewers draw transparency as white: a cutout of
an image on a white background looks unchanged there. The page puts each cutout on a CSS checkerboard, so what
was removed is visible, next to the upload it came from. Rejected and failed uploads show their reason instead.

The page is static (one ``index.html`` and its images in ``images/``), built from job records and the objects they
name, so the demo (``make demo``) and the long-running local stack (``cutout local up``, refreshed as jobs change)
write the same page. Dev tooling only: Pillow makes the previews, nothing here runs in Lambda.

An inline script marks ``<body data-images="...">`` once every image has settled (``loaded`` when each one decoded
with a width, else ``broken: <src>, ...``): a headless browser reads the marker from the rendered DOM
(``cutout_dev.browser``), as the browser test and ``make demo-image`` do.
"""

from __future__ import annotations

import html
import io
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from PIL import Image, ImageOps

PREVIEW_SIDE = 360  # pixels: large enough to judge an edge, small enough that a page of fifty loads at once
PAGE_NAME = "index.html"
IMAGES_DIR = "images"


class Rendition(NamedTuple):
    """One rendition of a cutout as the page shows it: the file itself (a JPEG, WebP or PNG as the bucket holds
    it, a mask as the greyscale image it is), or None with the reason it is missing."""

    name: str
    data: bytes | None
    extension: str = "png"
    transparent: bool = False  # drawn on the checkerboard, as the cutout is
    label: str = ""
    reason: str = ""


class Card(NamedTuple):
    """One upload as the page shows it. Images are PNG previews; None when there is nothing a browser can show."""

    key: str
    status: str
    before: bytes | None
    after: bytes | None
    credits: str = ""
    latency: str = ""
    reason: str = ""
    renditions: tuple[Rendition, ...] = ()


def preview(data: bytes | None, side: int = PREVIEW_SIDE) -> bytes | None:
    """A PNG no larger than ``side`` (alpha kept), or None when ``data`` is not an image Pillow can read."""
    if not data:
        return None
    try:
        img: Image.Image = Image.open(io.BytesIO(data))
        img.load()
    except Exception:  # any decoder failure means "not an image", which the page says
        return None
    img = ImageOps.exif_transpose(img)  # as a browser shows the upload (a phone's portrait upright); PNG has no tag
    if img.mode not in ("RGB", "RGBA", "L", "LA"):
        img = img.convert("RGBA")
    img.thumbnail((side, side))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def latency(job: Mapping[str, Any]) -> str:
    """Upload recorded -> cutout stored (or the last update of a job that did not complete), e.g. ``1.4 s``."""
    try:
        start = datetime.fromisoformat(str(job["created_at"]))
        end = datetime.fromisoformat(str(job.get("completed_at") or job["updated_at"]))
    except (KeyError, ValueError):
        return ""
    return f"{(end - start).total_seconds():.1f} s"


def credits(job: Mapping[str, Any]) -> str:
    charged = job.get("credits_charged")
    if charged is None:
        return ""
    return f"{charged} (refunded)" if job.get("credits_refunded") else str(charged)


def card_for_job(s3: Any, job: Mapping[str, Any], *, default_output_bucket: str = "") -> Card:
    """The card for one job record: the upload read back from S3 and, once complete, its cutout."""
    status = str(job.get("status", ""))
    before = after = None
    try:
        body = s3.get_object(Bucket=str(job["source_bucket"]), Key=str(job["source_key"]))["Body"].read()
        before = preview(body)
    except Exception:  # a deleted upload still gets its card, without the picture
        before = None
    if status == "complete" and job.get("output_key"):
        bucket = str(job.get("output_bucket") or default_output_bucket or job["source_bucket"])
        try:
            after = preview(s3.get_object(Bucket=bucket, Key=str(job["output_key"]))["Body"].read())
        except Exception:  # as above: the card says the cutout could not be read
            after = None
    reason = " — ".join(str(job[f]) for f in ("error_code", "error_message") if job.get(f))
    made = renditions_of(s3, job, default_output_bucket=default_output_bucket) if status == "complete" else ()
    return Card(str(job.get("source_key", "?")), status, before, after, credits(job), latency(job), reason, made)


EXTENSIONS = {"image/jpeg": "jpg", "image/webp": "webp", "image/png": "png"}


def _size(n: Any) -> str:
    if not isinstance(n, (int, float)):
        return ""
    return f"{n / 1024:,.0f} KB" if n >= 1024 else f"{n} B"


def rendition(name: str, made: Mapping[str, Any], data: bytes | None) -> Rendition:
    """One rendition from its entry in the job record (``status``, ``key``, ``bytes``, ``content_type``, ``width``,
    ``height``, ``reason``) and the object's bytes, as they are: a browser shows JPEG, WebP and PNG itself."""
    if made.get("status") != "ok":
        return Rendition(name, None, label=name, reason=str(made.get("reason") or made.get("status") or "not made"))
    if data is None:
        return Rendition(name, None, label=name, reason="could not be read")
    content_type = str(made.get("content_type") or "")
    extension = EXTENSIONS.get(content_type) or str(made.get("key", "")).rpartition(".")[2].lower() or "png"
    try:
        img = Image.open(io.BytesIO(data))
        transparent, size = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info, img.size
    except Exception:  # a browser cannot show it either: the page says so
        return Rendition(name, None, label=name, reason="not an image a browser can show")
    label = f"{name} · {extension.upper()} {size[0]}x{size[1]} · {_size(made.get('bytes', len(data)))}"
    return Rendition(name, data, extension, transparent, label)


def renditions_of(s3: Any, job: Mapping[str, Any], *, default_output_bucket: str = "") -> tuple[Rendition, ...]:
    """The renditions the job record lists (``renditions``: preset name -> entry), by name, read from the bucket."""
    made = job.get("renditions")
    if not isinstance(made, Mapping):
        return ()
    bucket = str(job.get("output_bucket") or default_output_bucket or job.get("source_bucket", ""))
    shown = []
    for name, entry in sorted(made.items()):
        if not isinstance(entry, Mapping):
            continue
        data = None
        if entry.get("status") == "ok" and entry.get("key"):
            try:
                data = s3.get_object(Bucket=str(entry.get("bucket") or bucket), Key=str(entry["key"]))["Body"].read()
            except Exception:  # as above: the pane says it could not be read
                data = None
        shown.append(rendition(str(name), entry, data))
    return tuple(shown)


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9]+", "-", ascii_text).strip("-").lower()[:40] or "upload"


def _write_atomic(path: Path, data: bytes) -> None:
    # The local stack rewrites the page while a browser may be reloading it: never let it read half a file.
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


CSS = """
body { font: 15px/1.4 system-ui, sans-serif; margin: 24px; color: #1d1d1f; background: #fafafa; }
h1 { font-size: 22px; margin: 0 0 4px; } p.sub { margin: 0 0 20px; color: #555; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(440px, 1fr)); gap: 16px; }
.card { background: #fff; border: 1px solid #ddd; border-radius: 8px; padding: 12px; }
.key { font-family: ui-monospace, monospace; font-size: 13px; word-break: break-all; margin-bottom: 8px; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 8px; }
.pane { height: 180px; display: flex; align-items: center; justify-content: center; border-radius: 4px;
        overflow: hidden; font-size: 13px; color: #666; text-align: center; padding: 4px; box-sizing: border-box; }
.pane img { max-width: 100%; max-height: 100%; }
.before { background: #f0f0f0; }
.checker { background-color: #fff;
  background-image: linear-gradient(45deg, #c8c8c8 25%, transparent 25%),
    linear-gradient(-45deg, #c8c8c8 25%, transparent 25%),
    linear-gradient(45deg, transparent 75%, #c8c8c8 75%), linear-gradient(-45deg, transparent 75%, #c8c8c8 75%);
  background-size: 16px 16px; background-position: 0 0, 0 8px, 8px -8px, -8px 0; }
.label { font-size: 12px; color: #777; margin-top: 2px; }
.facts { margin-top: 8px; font-size: 13px; display: flex; gap: 14px; flex-wrap: wrap; }
.status { font-weight: 600; } .status.complete { color: #137333; } .status.rejected, .status.error,
.status.canceled, .status.timed_out { color: #b3261e; }
.reason { margin-top: 6px; font-size: 13px; color: #b3261e; }
.renditions { display: grid; grid-template-columns: repeat(auto-fill, minmax(120px, 1fr)); gap: 8px; margin-top: 8px; }
.renditions .pane { height: 120px; }
.renditions .plain { background: #fff; border: 1px solid #eee; }
.renditions .label { overflow-wrap: anywhere; }
.note { margin: 0 0 16px; padding: 8px 12px; border-left: 4px solid #b06000; background: #fff4e5; color: #5f3700; }
"""

# Said on every page whose cutouts come from the emulator, so nobody judges Magic Hour by them.
EMULATOR_NOTE = (
    "These cutouts come from the local Magic Hour emulator: a colour key that stands in for Magic Hour's model. "
    "Their quality and timing are not Magic Hour's."
)

# Sets the marker a headless browser reads (see the module docstring). Polls: `load` may fire before a late
# image settles, and `complete` is true for a broken image too, hence the naturalWidth check.
MARKER_SCRIPT = """
(function () {
  function settle() {
    var imgs = Array.prototype.slice.call(document.images);
    if (!imgs.every(function (i) { return i.complete; })) { return setTimeout(settle, 50); }
    var broken = imgs.filter(function (i) { return !(i.naturalWidth > 0); })
      .map(function (i) { return i.getAttribute("src"); });
    document.body.setAttribute("data-image-count", String(imgs.length));
    document.body.setAttribute("data-images", broken.length ? "broken: " + broken.join(", ") : "loaded");
    // The live page reloads itself; "#still" (how cutout_dev.browser opens pages) holds it still to be read.
    var every = Number(document.body.getAttribute("data-refresh-seconds") || 0);
    if (every > 0 && location.hash !== "#still") { setTimeout(function () { location.reload(); }, every * 1000); }
  }
  window.addEventListener("load", settle);
})();
"""


def _pane(kind: str, src: str | None, alt: str, missing: str) -> str:
    css = "checker" if kind == "after" and src else "before"  # the checkerboard only behind a cutout
    inner = f'<img src="{html.escape(src)}" alt="{html.escape(alt)}">' if src else html.escape(missing)
    return f'<div><div class="pane {css}">{inner}</div><div class="label">{kind}</div></div>'


def _rendition_pane(item: Rendition, src: str | None, key: str) -> str:
    css = "checker" if item.transparent else "plain"
    if src:
        inner = f'<img class="rendition" src="{html.escape(src)}" alt="{html.escape(item.name)} of {html.escape(key)}">'
    else:
        css, inner = "before", html.escape(item.reason)
    label = html.escape(item.label or item.name)
    return f'<div><div class="pane {css}">{inner}</div><div class="label">{label}</div></div>'


def _after_missing(card: Card) -> str:
    if card.status == "complete":
        return "cutout could not be read"
    if card.status in ("rejected", "error", "canceled", "timed_out"):
        return "no cutout"
    return f"{card.status or 'uploaded'} …"


def write_page(
    directory: Path,
    cards: Sequence[Card],
    *,
    title: str = "Cutout: before and after",
    subtitle: str = "",
    note: str = "",
    refresh_seconds: int | None = None,
) -> Path:
    """Write ``directory/index.html`` and ``directory/images/*`` for ``cards`` (in order); return the page.

    ``note`` is shown boxed under the title (EMULATOR_NOTE when the cutouts are the emulator's)."""
    images = directory / IMAGES_DIR
    images.mkdir(parents=True, exist_ok=True)
    wanted: set[str] = set()
    blocks: list[str] = []
    for n, card in enumerate(cards, 1):
        srcs: dict[str, str | None] = {}
        for kind, data in (("before", card.before), ("after", card.after)):
            if data is None:
                srcs[kind] = None
                continue
            name = f"{n:03d}-{_slug(card.key)}-{kind}.png"
            path = images / name
            if not path.is_file() or path.read_bytes() != data:
                _write_atomic(path, data)
            wanted.add(name)
            srcs[kind] = f"{IMAGES_DIR}/{name}"
        panes = []
        for item in card.renditions:
            src = None
            if item.data is not None:
                name = f"{n:03d}-{_slug(card.key)}-r-{_slug(item.name)}.{item.extension}"
                path = images / name
                if not path.is_file() or path.read_bytes() != item.data:
                    _write_atomic(path, item.data)
                wanted.add(name)
                src = f"{IMAGES_DIR}/{name}"
            panes.append(_rendition_pane(item, src, card.key))
        shelf = f'<div class="renditions">{"".join(panes)}</div>' if panes else ""
        facts = [f'<span class="status {html.escape(card.status)}">{html.escape(card.status or "uploaded")}</span>']
        facts.append(f"<span>credits {html.escape(card.credits or '0')}</span>")
        if card.latency:
            facts.append(f"<span>latency {html.escape(card.latency)}</span>")
        reason = f'<div class="reason">{html.escape(card.reason)}</div>' if card.reason else ""
        blocks.append(
            '<div class="card">'
            f'<div class="key">{html.escape(card.key)}</div>'
            '<div class="pair">'
            + _pane("before", srcs["before"], f"upload {card.key}", "not an image")
            + _pane("after", srcs["after"], f"cutout of {card.key}", _after_missing(card))
            + "</div>"
            + shelf
            + f'<div class="facts">{"".join(facts)}</div>{reason}</div>'
        )
    for stale in images.iterdir():  # cards (and renditions) that moved or went away
        if stale.is_file() and not stale.name.startswith(".") and stale.name not in wanted:
            stale.unlink(missing_ok=True)
    empty = "" if cards else "<p>Nothing uploaded yet.</p>"
    page = (
        "<!doctype html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<style>{CSS}</style></head>\n<body data-refresh-seconds="{refresh_seconds or 0}">'
        f"<h1>{html.escape(title)}</h1>"
        + (f'<p class="sub">{html.escape(subtitle)}</p>' if subtitle else "")
        + (f'<p class="note" id="stand-in">{html.escape(note)}</p>' if note else "")
        + empty
        + f'<div class="grid">{"".join(blocks)}</div>'
        f"<script>{MARKER_SCRIPT}</script></body></html>\n"
    )
    path = directory / PAGE_NAME
    _write_atomic(path, page.encode("utf-8"))
    return path


def newest_first(jobs: Iterable[Mapping[str, Any]], limit: int) -> list[Mapping[str, Any]]:
    return sorted(jobs, key=lambda j: str(j.get("created_at", "")), reverse=True)[:limit]


class LivePage:
    """The page of a running local stack: rewritten when a job's status (or its renditions) changes, newest
    ``limit`` uploads first.

    Cards are cached per (job, status, renditions run), so a refresh reads from S3 only what changed. The page
    reloads itself every ``refresh_seconds`` in the browser, so leaving it open shows jobs finishing.
    """

    def __init__(
        self,
        directory: Path,
        s3: Any,
        *,
        default_output_bucket: str = "",
        limit: int = 60,
        refresh_seconds: int = 3,
        note: str = EMULATOR_NOTE,
    ) -> None:
        self.directory = directory
        self.page = directory / PAGE_NAME
        self._s3 = s3
        self._output_bucket = default_output_bucket
        self._limit = limit
        self._refresh_seconds = refresh_seconds
        self._note = note
        self._cards: dict[tuple[str, str, str], Card] = {}
        self._shown: tuple[tuple[str, str, str], ...] | None = None

    def refresh(self, jobs: Iterable[Mapping[str, Any]]) -> bool:
        """Rewrite the page if what it shows changed; True when it did."""
        newest = newest_first(jobs, self._limit)
        # Renditions arrive after the job completed: a new run of them (renditions_at) is a change of the card.
        shown = tuple((str(j["job_id"]), str(j.get("status", "")), str(j.get("renditions_at") or "")) for j in newest)
        if shown == self._shown:
            return False
        cards: dict[tuple[str, str, str], Card] = {}
        for ident, job in zip(shown, newest, strict=True):
            cards[ident] = self._cards.get(ident) or card_for_job(
                self._s3, job, default_output_bucket=self._output_bucket
            )
        self._cards = cards
        write_page(
            self.directory,
            list(cards.values()),
            title="Cutout local stack: before and after",
            subtitle=f"What has been uploaded to the running local stack (newest {self._limit} first); "
            f"reloads every {self._refresh_seconds} s.",
            note=self._note,
            refresh_seconds=self._refresh_seconds,
        )
        self._shown = shown
        return True
