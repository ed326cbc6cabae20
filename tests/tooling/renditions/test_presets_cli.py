"""`cutout presets check` and `cutout presets preview`: no stack at all (run where no local stack is recorded),
one line per problem with exit 1, every preset written as a file a person can open."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.support.cutouts import cutout

ROOT = Path(__file__).resolve().parents[3]

GOOD = {
    "presets": {
        "marketplace": {"format": "jpeg", "background": "#FFFFFF", "canvas": [600, 600], "fill": 0.85},
        "thumb": {"format": "webp", "max_side": 100},
        "mask": {"format": "png", "output": "alpha"},
        "tight": {"format": "png", "crop": True, "margin": "5%", "shadow": True},
    },
    "rules": [{"prefix": "shop/", "presets": ["marketplace", "thumb"]}],
}
BAD = {
    "presets": {
        "m": {"format": "jpeg", "canvas": [60000, 2000], "fill": 1.2, "colour": "#fff"},
        "t": {"format": "webp", "background": "white"},
    },
    "rules": [{"prefix": "shop/", "presets": ["m", "nope"]}],
}


def _cutout_cli(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """`cutout ...` in a folder with no local stack, pointed at a state file that does not exist."""
    env = {**os.environ, "CUTOUT_LOCAL_STACK_FILE": str(tmp_path / "no-stack.json"), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-c", "import sys; from cutout_dev.cli import main; sys.exit(main(sys.argv[1:]))", *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _write(tmp_path: Path, name: str, document: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_check_accepts_a_good_document(tmp_path: Path) -> None:
    path = _write(tmp_path, "presets.json", GOOD)
    proc = _cutout_cli(tmp_path, "presets", "check", str(path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"{path}: ok (4 presets: marketplace, thumb, mask, tight; 1 rules)"


def test_check_prints_one_line_per_problem_and_exits_1(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.json", BAD)

    proc = _cutout_cli(tmp_path, "presets", "check", str(path))

    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert [line.split(": ")[1] for line in lines] == [
        "presets.m",
        "presets.m.canvas",
        "presets.m.fill",
        "presets.m",
        "presets.t.background",
        "rules[0].presets",
    ]
    assert all(line.startswith(f"{path}: ") for line in lines)
    assert proc.stderr.strip() == f"6 problems in {path}"


def test_check_answers_json_for_scripts(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.json", BAD)
    proc = _cutout_cli(tmp_path, "presets", "check", str(path), "--json")
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert doc["valid"] is False and len(doc["problems"]) == 6


@pytest.mark.parametrize("content", [None, "{oops", ""])
def test_check_on_a_missing_or_broken_file_says_so_in_one_line(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "p.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    proc = _cutout_cli(tmp_path, "presets", "check", str(path))
    if content == "":
        assert proc.returncode == 0  # an empty document is valid: no presets, no renditions
        assert "0 presets" in proc.stdout
        return
    assert proc.returncode == 1
    output = (proc.stdout + proc.stderr).strip().splitlines()
    assert len(output) == (1 if content is None else 2), output  # the problem (+ the count on stderr)
    assert ("cannot read" in output[0]) if content is None else ("not JSON" in output[0])


def test_preview_writes_every_preset_of_the_document_with_no_stack(tmp_path: Path) -> None:
    # given: a cutout with an off-centre subject and the presets file
    source = tmp_path / "shoe.png"
    source.write_bytes(cutout(size=(800, 600), box=(100, 150, 500, 450)).png())
    presets = _write(tmp_path, "mine.json", GOOD)

    proc = _cutout_cli(tmp_path, "presets", "preview", str(source), "--presets", str(presets), "-o", "out", "--json")

    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    written = {r["preset"]: tmp_path / r["file"] for r in doc["renditions"]}
    assert set(written) == set(GOOD["presets"])
    expected = {
        "marketplace": ("JPEG", (600, 600)),
        "thumb": ("WEBP", (100, 75)),
        "mask": ("PNG", (800, 600)),
    }
    for name, (fmt, size) in expected.items():
        with Image.open(written[name]) as image:
            assert (image.format, image.size) == (fmt, size), name
    assert written["marketplace"] == tmp_path / "out" / "marketplace" / "shoe.jpg"
    with Image.open(written["tight"]) as tight:
        assert tight.width > 400 * 1.1  # the subject, its 5% margin and the shadow's room
    assert doc["flags"] == []


def test_preview_of_one_preset_and_of_an_unknown_one(tmp_path: Path) -> None:
    source = tmp_path / "shoe.png"
    source.write_bytes(cutout(size=(400, 300), box=(50, 50, 250, 250)).png())

    # with no presets file at all: the example set, of which only the thumbnail is asked for
    one = _cutout_cli(tmp_path, "presets", "preview", str(source), "--preset", "thumb", "-o", "out")
    unknown = _cutout_cli(tmp_path, "presets", "preview", str(source), "--preset", "nope", "-o", "out2")

    assert one.returncode == 0, one.stderr
    assert "example presets" in one.stdout
    assert [p.relative_to(tmp_path).as_posix() for p in (tmp_path / "out").rglob("*.*")] == ["out/thumb/shoe.webp"]
    assert unknown.returncode == 1
    assert (
        unknown.stderr.strip()
        == "cutout: no preset nope in the example presets (marketplace, thumb, mask) (defined: marketplace, thumb, mask)"
    )
    assert not (tmp_path / "out2").exists()


def test_preview_refuses_a_file_that_is_no_image_in_one_line(tmp_path: Path) -> None:
    source = tmp_path / "shoe.png"
    source.write_bytes(b"not a png")
    proc = _cutout_cli(tmp_path, "presets", "preview", str(source), "-o", "out")
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "not a readable image" in proc.stderr


def test_preview_applies_the_originals_orientation(tmp_path: Path) -> None:
    # given: the original stored landscape with orientation 6, and its cutout (landscape too: not turned yet)
    original = tmp_path / "photo.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (400, 300), (90, 90, 90)).save(original, format="JPEG", exif=exif)
    source = tmp_path / "photo.png"
    source.write_bytes(cutout(size=(400, 300), box=(50, 50, 250, 250)).png())

    proc = _cutout_cli(
        tmp_path, "presets", "preview", str(source), "--original", str(original), "--preset", "mask", "-o", "out"
    )

    assert proc.returncode == 0, proc.stderr
    with Image.open(tmp_path / "out" / "mask" / "photo.png") as mask:
        assert mask.size == (300, 400)
