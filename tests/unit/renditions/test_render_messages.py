"""The renditions queue's two message shapes, the rendition record and the job's rendition fields."""

from __future__ import annotations

import json

import pytest
from cutout.domain.job import Job, plain_item
from cutout.domain.render_request import RenderRequest
from cutout.domain.rendition import Rendition

JOB = "0123456789abcdef0123456789abcdef"


def test_a_completion_event_as_the_rule_delivers_it_is_a_render_request() -> None:
    envelope = {
        "version": "0",
        "source": "cutout",
        "detail-type": "Cutout Completed",
        "detail": {"job_id": JOB, "status": "complete", "output_key": "cutouts/a.png"},
    }
    assert RenderRequest.from_json(json.dumps(envelope)) == RenderRequest(JOB, None, rebuild=False)


def test_a_rebuild_request_names_its_presets_or_none() -> None:
    assert RenderRequest.from_json(RenderRequest(JOB, ("thumb",), rebuild=True).to_json()) == RenderRequest(
        JOB, ("thumb",), rebuild=True
    )
    assert RenderRequest.from_json(json.dumps({"cutout": "render", "job_id": JOB, "presets": None})).presets is None


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        json.dumps({"source": "cutout", "detail-type": "Cutout Failed", "detail": {"job_id": JOB}}),
        json.dumps({"cutout": "render", "job_id": "../etc"}),
        json.dumps({"cutout": "render", "job_id": JOB, "presets": "thumb"}),
        json.dumps({"source": "cutout", "detail-type": "Cutout Completed", "detail": {}}),
    ],
)
def test_anything_else_is_refused_as_malformed(body: str) -> None:
    with pytest.raises((ValueError, KeyError, TypeError)):
        RenderRequest.from_json(body)


def test_a_rendition_round_trips_through_the_record_and_the_job_reads_its_fields() -> None:
    ok = Rendition("ok", "2026-12-07T10:00:00.000Z", key="renditions/t/a.webp", bytes=10, width=4, height=3)
    assert Rendition.from_record(ok.to_record()) == ok and "reason" not in ok.to_record()
    item = {
        "job_id": {"S": JOB},
        "status": {"S": "complete"},
        "source_bucket": {"S": "b"},
        "source_key": {"S": "incoming/a.png"},
        "created_at": {"S": "t"},
        "updated_at": {"S": "t"},
        "renditions": {"M": {"t": {"M": {"status": {"S": "ok"}, "bytes": {"N": "10"}}}}},
        "rendition_flags": {"L": [{"M": {"code": {"S": "subject_cut_off"}, "figure": {"N": "0.0625"}}}]},
    }
    job = Job.from_item(item)
    assert job.renditions == {"t": {"status": "ok", "bytes": 10}}
    # a flag's figure is a fraction: it stays one (the record's other numbers are integers)
    assert job.rendition_flags == [{"code": "subject_cut_off", "figure": 0.0625}]
    assert plain_item({"n": {"N": "3"}}) == {"n": 3}
