"""The operator's side of renditions on the local stack (template.yaml in moto, the real handlers, the emulator):
``cutout presets set/show``, ``cutout renditions rebuild`` (its bill read from the emulator's ledger of creates),
``cutout job`` with its renditions and flags, ``cutout jobs --flagged``.

The renditions function reads the stored presets on every message here (``configure(presets_max_age=0)``): the
tests change them and look at the next rendering, where a deployed function's one-minute cache would be waited
out (the rebuild does that itself; a test of it controls the clock it sleeps by).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from cutout_dev import cli, local_cli
from cutout_dev.local_stack import LocalStack, LocalStackConfig
from cutout_dev.local_stack.aws import REGION
from cutout_dev.local_stack.stack import job_id_for
from cutout_dev.ops.backfill import Pipeline
from cutout_dev.ops.presets.stored import PresetsParameter
from cutout_dev.ops.renditions import Options, RebuildTarget, run_rebuild

PRESETS: dict[str, Any] = {
    "presets": {
        "marketplace": {"format": "jpeg", "background": "#FFFFFF", "canvas": [600, 600], "fill": 0.85},
        "thumb": {"format": "webp", "max_side": 120},
        "mask": {"format": "png", "output": "alpha"},
    },
    "rules": [{"prefix": "shop/", "presets": ["marketplace", "thumb"]}],
}


def _presets(shop: str, **thumb: Any) -> dict[str, Any]:
    """PRESETS with its shop rule on ``shop`` (each test uploads under a prefix of its own), the thumbnail changed."""
    document = json.loads(json.dumps(PRESETS))
    document["presets"]["thumb"].update(thumb)
    document["rules"] = [{"prefix": shop, "presets": ["marketplace", "thumb"]}]
    return document


SHOP = 12  # more than one SendMessageBatch (10), so an interruption can fall between two


def _image(i: int, *, subject: str = "centre") -> bytes:
    """A white photo with a red subject: centred (a clean cutout), running out of the frame, or none at all."""
    img = Image.new("RGB", (240, 180), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    if subject == "centre":
        draw.ellipse((70, 40, 170, 140), fill=(200, 30 + i % 200, 40))
    elif subject == "edge":
        # A handle running out of the frame: thin enough that the emulator still sees a plain border and keys it
        # by colour, wide enough that the judge sees the subject at the frame.
        draw.ellipse((70, 40, 170, 140), fill=(200, 30, 40 + i % 200))
        draw.rectangle((150, 87, 239, 92), fill=(200, 30, 40 + i % 200))
    else:  # "none": one colour, nothing to keep
        img = Image.new("RGB", (240, 180), (255, 255, 255 - i % 50))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    config = LocalStackConfig(
        function_log=tmp_path_factory.mktemp("renditions") / "functions.log",  # stdout is the CLI's
        real_magic_hour=False,
        emulator={"queue_seconds": 0.05, "render_seconds": 0.1},
        schedule_interval_seconds=0,
        parameters={"MaximumConcurrency": "10", "MaxJobsInFlight": "10"},
        visibility_timeout_seconds={"CompletionQueue": 3, "RenditionsQueue": 5},
    )
    with LocalStack(config) as running:
        running.functions["RenditionsFunction"].configure(presets_max_age=0)
        yield running


@pytest.fixture
def at_the_terminal(stack: LocalStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An operator's shell: a scratch directory (the checkpoint's .cutout/) and the local stack's state file."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CUTOUT_LOCAL_STACK_FILE", str(tmp_path / "endpoints.json"))
    local_cli.write_state(stack)
    return tmp_path


def _lines(out: str) -> str:
    """Stdout without the functions' one-line EMF/log JSON (they share this process's stdout)."""
    return "\n".join(line for line in out.splitlines() if not line.startswith('{"'))


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code = cli.main([*argv, "--json"])
    captured = capsys.readouterr()
    out = _lines(captured.out)
    return code, json.loads(out) if out.strip() else None, captured.err


def _text(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, _lines(captured.out), captured.err


def _parameter(stack: LocalStack) -> PresetsParameter:
    return PresetsParameter(stack.client("ssm"), stack.endpoints.stack_outputs["PresetsParameterName"])


def _store(stack: LocalStack, document: dict[str, Any]) -> None:
    _parameter(stack).write(document)


def _put(stack: LocalStack, key: str, body: bytes, **metadata: str) -> str:
    """An upload as a shop's own code makes it (PutObject, with its metadata); returns the job id."""
    bucket = stack.endpoints.bucket
    etag = stack.client("s3").put_object(
        Bucket=bucket, Key=stack.endpoints.input_prefix + key, Body=body, Metadata=metadata
    )["ETag"]
    return str(job_id_for(bucket, stack.endpoints.input_prefix + key, etag))


def _rendered_after(stack: LocalStack, ids: list[str], before: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Wait until each job has a renditions run newer than ``before`` (job id -> renditions_at)."""

    def newer_for(job_id: str) -> bool:
        return str((stack.job(job_id) or {}).get("renditions_at") or "") > before.get(job_id, "")

    def newer() -> bool:
        return all(newer_for(i) for i in ids)

    try:
        stack.emulator.wait_until(newer, timeout=120)
    except TimeoutError:
        late = {i: (stack.job(i) or {}).get("status") for i in ids if not newer_for(i)}
        raise AssertionError(
            f"no new renditions for {late}; queues {stack.queue_depths()}; IAM {stack.iam_report()['refusals']}"
        ) from None
    return {i: stack.job(i) or {} for i in ids}


def _rebuild_target(stack: LocalStack) -> RebuildTarget:
    ep = stack.endpoints
    pipeline = Pipeline(
        s3=stack.client("s3"),
        dynamodb=stack.client("dynamodb"),
        sqs=stack.client("sqs"),
        table=ep.table,
        ingest_queue_url=ep.queues["IngestQueue"],
        bucket=ep.bucket,
        input_prefix=ep.input_prefix,
        output_prefix=ep.output_prefix,
        output_bucket=ep.output_bucket,
        region=REGION,
    )
    return RebuildTarget(pipeline, ep.queues["RenditionsQueue"], _parameter(stack))


def _never(question: str) -> bool:
    raise AssertionError(f"asked {question!r} although --yes was given")


def _max_side(stack: LocalStack, key: str) -> int:
    body = stack.client("s3").get_object(Bucket=stack.endpoints.output_bucket, Key=key)["Body"].read()
    return max(Image.open(io.BytesIO(body)).size)


# -- presets set / show ------------------------------------------------------------------------------------------
def test_presets_set_validates_then_stores_and_show_gives_back_the_document(
    stack: LocalStack, at_the_terminal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _store(stack, {})
    version = _parameter(stack).read().version
    # given a document with two problems
    bad = at_the_terminal / "bad.json"
    bad.write_text(json.dumps({"presets": {"shop": {"format": "jpeg", "canvas": [600, 600], "fill": 1.5}}}))
    # when it is set, then nothing is stored: one line per problem naming the file, exit 1
    code, out, err = _text(capsys, "presets", "set", str(bad))
    assert code == 1
    problems = [line for line in err.splitlines() if line.startswith(f"{bad}: ")]
    assert len(problems) == 2, err
    assert any("fill" in p for p in problems) and any("background" in p for p in problems)
    assert "nothing stored" in err
    assert _parameter(stack).read().version == version

    # when a good document is set
    good = at_the_terminal / "presets.json"
    good.write_text(json.dumps(PRESETS, indent=2), encoding="utf-8")
    code, result, _ = _json(capsys, "presets", "set", str(good))
    # then it is stored (a new version) and reported by name
    assert code == 0
    assert result["stored"] is True
    assert result["version"] == version + 1
    assert result["presets"] == ["marketplace", "thumb", "mask"]
    assert result["changes"]["added"] == ["marketplace", "mask", "thumb"]
    # and `show --json` gives back the document itself: a file `set` takes again
    code, shown, _ = _json(capsys, "presets", "show")
    assert code == 0
    assert shown == PRESETS
    code, table, _ = _text(capsys, "presets", "show")
    assert code == 0
    assert "marketplace" in table and '"shop/"' in table

    # when the same file is set again, nothing is stored; a changed preset is named
    code, again, _ = _json(capsys, "presets", "set", str(good))
    assert (code, again["stored"], again["version"]) == (0, False, version + 1)
    changed = json.loads(json.dumps(PRESETS))
    changed["presets"]["thumb"]["max_side"] = 80
    good.write_text(json.dumps(changed), encoding="utf-8")
    code, out, _ = _text(capsys, "presets", "set", str(good))
    assert code == 0
    assert "changed: thumb" in out
    assert "cutout renditions rebuild" in out  # what to run so the renditions made before follow

    # and a document stored behind its back that does not parse is shown as such: exit 2, a person is needed
    stack.client("ssm").put_parameter(
        Name=_parameter(stack).name, Value='{"presets": {"x": {"format": "gif"}}}', Type="String", Overwrite=True
    )
    code, table, err = _text(capsys, "presets", "show")
    assert code == 2
    assert "DOES NOT PARSE" in table
    assert "cannot use them" in err


# -- rebuild -----------------------------------------------------------------------------------------------------
def test_rebuild_rerenders_for_zero_credits_resumes_after_an_interrupt_and_a_dry_run_changes_nothing(
    stack: LocalStack, at_the_terminal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given presets (shop/ gets marketplace and thumb) and uploads that went through the pipeline: twelve under
    # shop/, one elsewhere that names the thumbnail in its metadata, one elsewhere that nothing picks
    _store(stack, _presets("rebuild/shop/"))
    shop = [_put(stack, f"rebuild/shop/{i:02d}.png", _image(i)) for i in range(SHOP)]
    named = _put(stack, "rebuild/other/named.png", _image(90), **{"cutout-presets": "thumb"})
    plain = _put(stack, "rebuild/other/plain.png", _image(91))
    stack.wait_for_terminal([*shop, named, plain], timeout=120)
    first = _rendered_after(stack, [*shop, named], {})
    assert all(_max_side(stack, first[i]["renditions"]["thumb"]["key"]) == 120 for i in shop)
    stack.emulator.wait_until(stack.quiescent, timeout=60)
    creates = len(stack.emulator.state.creates)
    assert creates == SHOP + 2

    # when the thumbnail shrinks and the operator previews the rebuild (`--dry-run`)
    _store(stack, _presets("rebuild/shop/", max_side=64))
    location = f"s3://{stack.endpoints.bucket}/rebuild/"
    code, preview, _ = _json(capsys, "renditions", "rebuild", location, "--dry-run")
    # then the estimate counts the cutouts and their renditions, prices them at 0, and sends nothing
    assert code == 0
    assert preview["status"] == "dry_run"
    assert preview["prefix"] == stack.endpoints.input_prefix + "rebuild/"  # relative to the input prefix
    assert preview["cutouts"] == SHOP + 1
    assert preview["by_preset"] == {"marketplace": SHOP, "thumb": SHOP + 1}
    assert preview["renditions"] == 2 * SHOP + 1
    assert preview["skipped"] == {"no_preset_applies": 1}
    assert preview["credits"] == 0
    assert preview["checkpoint"] is None
    assert stack.queue_depths()["RenditionsQueue"] == 0
    assert not (at_the_terminal / ".cutout").exists()
    # and a person reads the same in a table
    code, table, _ = _text(capsys, "renditions", "rebuild", location, "--dry-run")
    assert code == 0
    assert f"{2 * SHOP + 1}  (marketplace {SHOP}, thumb {SHOP + 1})" in table
    assert "0  (rendered from the stored cutouts: no Magic Hour call)" in table
    assert {i: (stack.job(i) or {}).get("renditions_at") for i in first} == {
        i: j["renditions_at"] for i, j in first.items()
    }

    # when the rebuild is interrupted (Ctrl-C) after its first batch, then run again
    rebuild = _rebuild_target(stack)
    options = Options(uri=location, yes=True, settle_seconds=0, checkpoint_dir=at_the_terminal / ".cutout")
    notes: list[str] = []

    def interrupt(sent: int, total: int) -> None:
        raise KeyboardInterrupt

    stopped = run_rebuild(rebuild, options, confirm=_never, note=notes.append, on_batch=interrupt)
    assert (stopped["status"], stopped["sent"]) == ("interrupted", 10)
    resumed = run_rebuild(rebuild, options, confirm=_never, note=notes.append)
    # then it goes on after the last key sent, and sends only the rest
    assert resumed["status"] == "sent"
    assert resumed["resumed_after"] is not None
    assert resumed["sent"] == SHOP + 1 - 10
    assert any("resuming after" in n for n in notes)

    # and every cutout is rendered again with the new thumbnail, with not one Magic Hour create
    again = _rendered_after(stack, [*shop, named], {i: j["renditions_at"] for i, j in first.items()})
    assert all(_max_side(stack, again[i]["renditions"]["thumb"]["key"]) == 64 for i in [*shop, named])
    assert set(again[named]["renditions"]) == {"thumb"}
    assert "renditions" not in (stack.job(plain) or {})
    stack.emulator.wait_until(stack.quiescent, timeout=60)
    assert len(stack.emulator.state.creates) == creates

    # when only the marketplace image is rebuilt (`--preset marketplace`)
    only = Options(**{**options.__dict__, "presets": ["marketplace"], "restart": True})
    narrowed = run_rebuild(rebuild, only, confirm=_never, note=notes.append)
    # then only the jobs the document gives it are sent, and only it is rendered again
    assert (narrowed["cutouts"], narrowed["by_preset"]) == (SHOP, {"marketplace": SHOP})
    third = _rendered_after(stack, shop, {i: again[i]["renditions_at"] for i in shop})
    for i in shop:
        assert third[i]["renditions"]["thumb"] == again[i]["renditions"]["thumb"]
        assert (
            third[i]["renditions"]["marketplace"]["rendered_at"] > again[i]["renditions"]["marketplace"]["rendered_at"]
        )
    stack.emulator.wait_until(stack.quiescent, timeout=60)
    assert len(stack.emulator.state.creates) == creates


def test_rebuild_right_after_a_change_waits_out_the_functions_presets_cache(stack: LocalStack, tmp_path: Path) -> None:
    _store(stack, _presets("settle/"))
    up = _put(stack, "settle/shop/one.png", _image(7))
    stack.wait_for_terminal([up], timeout=60)
    slept: list[float] = []
    # when the rebuild runs at once after the presets were stored, with the deployed function's 60 s cache
    result = run_rebuild(
        _rebuild_target(stack),
        Options(uri=f"s3://{stack.endpoints.bucket}/settle/", yes=True, checkpoint_dir=tmp_path),
        confirm=_never,
        note=print,
        sleep=slept.append,
    )
    # then it waited what was left of that minute before sending
    assert result["status"] == "sent"
    assert len(slept) == 1
    assert 0 < slept[0] <= 60


def test_rebuild_refusals_are_one_line_and_send_nothing(
    stack: LocalStack, at_the_terminal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = stack.endpoints.bucket
    _store(stack, _presets("refusals/"))
    up = _put(stack, "refusals/shop/a.png", _image(3))
    stack.wait_for_terminal([up], timeout=60)
    # the completion's own renditions message comes and goes: count only once the stack has settled
    stack.emulator.wait_until(stack.quiescent, timeout=60)
    depth = stack.queue_depths()["RenditionsQueue"]
    cases = {
        # no terminal to ask at (stdin is not one here) and no --yes
        ("renditions", "rebuild", f"s3://{bucket}/refusals/"): "--yes",
        ("renditions", "rebuild", f"s3://{bucket}/refusals/", "--preset", "poster"): "poster",
        ("renditions", "rebuild", "s3://another-bucket/refusals/"): f"s3://{bucket}/",
    }
    for argv, says in cases.items():
        code, _, err = _text(capsys, *argv)
        assert code == 1, argv
        assert err.strip().count("\n") == 0, err
        assert says in err, err
    _store(stack, {})
    code, _, err = _text(capsys, "renditions", "rebuild", f"s3://{bucket}/", "--yes")
    assert code == 1
    assert "no presets are stored" in err
    assert stack.queue_depths()["RenditionsQueue"] == depth


# -- job / jobs --flagged ----------------------------------------------------------------------------------------
def test_job_shows_each_rendition_and_jobs_flagged_lists_the_cutouts_a_shop_would_not_publish(
    stack: LocalStack, at_the_terminal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _store(stack, {**PRESETS, "rules": [{"prefix": "judged/", "presets": ["thumb", "mask"]}]})
    clean = _put(stack, "judged/clean.png", _image(1))
    empty = _put(stack, "judged/empty.png", _image(2, subject="none"))
    cut = _put(stack, "judged/cut.png", _image(3, subject="edge"))
    asked = _put(stack, "judged/asked.png", _image(4), **{"cutout-presets": "thumb, poster"})
    stack.wait_for_terminal([clean, empty, cut, asked], timeout=60)
    _rendered_after(stack, [clean, empty, cut, asked], {})

    # `cutout job ID`: each rendition with its key, bytes and size; the flags; the unknown preset named
    code, job, _ = _json(capsys, "job", clean)
    assert code == 0
    rows = {r["name"]: r for r in job["renditions"]}
    assert set(rows) == {"thumb", "mask"}
    assert rows["thumb"]["status"] == "ok"
    assert rows["thumb"]["key"] == "renditions/thumb/judged/clean.webp"
    assert rows["thumb"]["bytes"] > 0 and rows["thumb"]["content_type"] == "image/webp"
    assert job["flags"] == []
    code, out, _ = _text(capsys, "job", clean)
    assert "Renditions" in out and "renditions/mask/judged/clean.png" in out
    code, shown, _ = _json(capsys, "job", asked)
    assert shown["unknown_presets"] == ["poster"]
    code, out, _ = _text(capsys, "job", asked)
    assert "Unknown presets" in out and "poster" in out
    code, out, _ = _text(capsys, "job", cut)
    assert "Flags" in out and "subject_cut_off" in out

    # `cutout jobs --flagged`: the empty cutout and the cut one, with their figures; never the clean one
    code, flagged, _ = _json(capsys, "jobs", "--flagged", "--prefix", "judged/")
    assert code == 0
    codes = {r["job_id"]: [f["code"] for f in r["rendition_flags"]] for r in flagged["jobs"]}
    assert codes == {empty: ["no_subject"], cut: ["subject_cut_off"]}
    assert all(isinstance(f["figure"], (int, float)) for r in flagged["jobs"] for f in r["rendition_flags"])
    code, only, _ = _json(capsys, "jobs", "--flagged", "no_subject", "--prefix", "judged/")
    assert [r["job_id"] for r in only["jobs"]] == [empty]
    code, out, _ = _text(capsys, "jobs", "--flagged")
    assert "subject_cut_off" in out and cut in out and clean not in out
