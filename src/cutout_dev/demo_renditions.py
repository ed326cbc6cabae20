"""The demo's renditions: its presets file set on the local stack before the uploads, as an operator would
(``cutout presets set``), and each rendition checked as its preset says it must look: format, frame, size, mask.

Nothing here renders: the renditions function of the local stack does, from the stored cutouts, and the demo
reads the objects it wrote back from the bucket.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cutout.renditions.presets import Preset, PresetDocument
from PIL import Image

from cutout_dev.local_stack import LocalStack
from cutout_dev.local_stack.stack import PROJECT_ROOT
from cutout_dev.ops.presets.stored import PresetsParameter

PRESETS_FILE = PROJECT_ROOT / "samples" / "presets.json"
PIL_FORMATS = {"jpeg": "JPEG", "webp": "WEBP", "png": "PNG"}


def set_presets(stack: LocalStack, path: Path = PRESETS_FILE) -> PresetDocument:
    """Validate the file and store it in the stack's presets parameter (what ``cutout presets set`` does)."""
    text = path.read_text(encoding="utf-8")
    document = PresetDocument.parse(text)  # a bad file stops the demo here, each problem on its line
    parameter = PresetsParameter(stack.client("ssm"), stack.endpoints.stack_outputs["PresetsParameterName"])
    parameter.write(json.loads(text))
    return document


def expected(document: PresetDocument, job: Mapping[str, Any], input_prefix: str) -> tuple[Preset, ...]:
    """The presets the document picks for this job's upload (the samples ask for none by metadata)."""
    key = str(job.get("source_key", ""))
    return document.pick(key.removeprefix(input_prefix)).presets


def ready(job: Mapping[str, Any], presets: tuple[Preset, ...]) -> bool:
    """The renditions step recorded a run covering every preset picked for the job."""
    made = job.get("renditions")
    return bool(job.get("renditions_at")) and isinstance(made, Mapping) and all(p.name in made for p in presets)


def _looks_wrong(preset: Preset, data: bytes) -> str:
    """'' when the file is what the preset asks for; else what is wrong, in a few words."""
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except Exception as exc:
        return f"unreadable ({exc})"
    wrong = [
        (img.format != PIL_FORMATS[preset.format], f"{img.format}, not {preset.format}"),
        (bool(preset.canvas) and img.size != preset.canvas, f"{img.size[0]}x{img.size[1]}, not {preset.canvas}"),
        (
            bool(preset.max_side) and not preset.upscale and max(img.size) > (preset.max_side or 0),
            f"{max(img.size)} px on its longest side, over {preset.max_side}",
        ),
        (preset.output == "alpha" and img.mode != "L", f"mask in mode {img.mode}, not greyscale"),
    ]
    if preset.background and preset.output != "alpha":
        corner = img.convert("RGB").getpixel((0, 0))
        wrong.append((corner != preset.background, f"corner {corner}, not the background {preset.background}"))
    return next((what for failed, what in wrong if failed), "")


def check(s3: Any, job: Mapping[str, Any], presets: tuple[Preset, ...], bucket: str, save_to: Path, stem: str) -> str:
    """Read each rendition of the job back, check it against its preset and keep a copy under
    ``save_to/<preset>/``; '' when all are right, else the first problem."""
    made = job.get("renditions") if isinstance(job.get("renditions"), Mapping) else {}
    assert isinstance(made, Mapping)
    for preset in presets:
        entry = made.get(preset.name)
        if not isinstance(entry, Mapping) or entry.get("status") != "ok":
            reason = entry.get("reason") if isinstance(entry, Mapping) else "not made"
            return f"rendition {preset.name}: {reason}"
        data = s3.get_object(Bucket=bucket, Key=str(entry["key"]))["Body"].read()
        wrong = _looks_wrong(preset, data)
        if wrong:
            return f"rendition {preset.name}: {wrong}"
        folder = save_to / preset.name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{stem}.{preset.extension}").write_bytes(data)
    return ""
