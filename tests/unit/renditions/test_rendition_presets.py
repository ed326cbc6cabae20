"""The presets document: what it accepts, every problem one line, which presets an upload gets, where they go."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cutout.renditions.presets import (
    MAX_CANVAS_SIDE,
    MAX_DOCUMENT_BYTES,
    MAX_PRESETS,
    Preset,
    PresetDocument,
    PresetError,
    parse_requested,
    rendition_key,
    validate,
)

EXAMPLE: dict[str, Any] = {
    "presets": {
        "marketplace": {"format": "jpeg", "background": "#FFFFFF", "canvas": [2000, 2000], "fill": 0.85, "quality": 90},
        "thumb": {"format": "webp", "max_side": 400},
        "mask": {"format": "png", "output": "alpha"},
    },
    "rules": [{"prefix": "shop/", "presets": ["marketplace", "thumb"]}],
}


def _with(**presets: Any) -> dict[str, Any]:
    return {"presets": presets}


def test_the_issue_example_parses_into_presets_with_their_settings() -> None:
    doc = PresetDocument.parse(json.dumps(EXAMPLE))

    market = doc.presets["marketplace"]
    assert (market.format, market.background, market.canvas, market.fill, market.quality) == (
        "jpeg",
        (255, 255, 255),
        (2000, 2000),
        0.85,
        90,
    )
    assert (market.extension, market.content_type) == ("jpg", "image/jpeg")
    assert (doc.presets["thumb"].max_side, doc.presets["thumb"].content_type, doc.presets["thumb"].background) == (
        400,
        "image/webp",
        None,
    )
    assert doc.presets["mask"].output == "alpha"
    assert doc.rules == (("shop/", ("marketplace", "thumb")),)


@pytest.mark.parametrize("empty", [None, "", "  \n", b"", {}, "{}", {"presets": {}, "rules": []}])
def test_no_document_is_no_presets(empty: Any) -> None:
    doc = PresetDocument.parse(empty)
    assert doc.empty
    assert doc.pick("shop/a.jpg", ["marketplace"]).presets == ()
    assert doc.pick("shop/a.jpg", ["marketplace"]).unknown == ("marketplace",)


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"preset": {}}, "document: unknown field 'preset' (did you mean 'presets'?)"),
        (_with(a={"format": "png", "qualty": 3}), "presets.a: unknown field 'qualty' (did you mean 'quality'?)"),
        (_with(a={"format": "jpeg"}), "presets.a: a JPEG has no transparency: set a background colour"),
        (_with(a={"format": "jpeg", "background": None}), "presets.a.background: a JPEG has no transparency"),
        (_with(a={"format": "gif"}), "presets.a.format: 'gif' is not a format: png, jpeg or webp"),
        (_with(a={"background": "white"}), "presets.a.background: 'white' is not a colour"),
        (_with(a={"background": "#12345"}), "presets.a.background: '#12345' is not a colour"),
        (
            _with(a={"canvas": [60000, 2000]}),
            f"presets.a.canvas: [60000, 2000] is beyond the largest canvas ({MAX_CANVAS_SIDE}",
        ),
        (_with(a={"canvas": [0, 10]}), "presets.a.canvas: [0, 10] is beyond the largest canvas"),
        (_with(a={"canvas": [100]}), "presets.a.canvas: [100] is not [width, height] in whole pixels"),
        (_with(a={"canvas": [100.5, 100]}), "presets.a.canvas: [100.5, 100] is not [width, height]"),
        (_with(a={"canvas": [10, 10], "fill": 0}), "presets.a.fill: 0 is outside (0, 1]"),
        (_with(a={"canvas": [10, 10], "fill": 1.01}), "presets.a.fill: 1.01 is outside (0, 1]"),
        (_with(a={"canvas": [10, 10], "fill": True}), "presets.a.fill: True is outside (0, 1]"),
        (_with(a={"fill": 0.8}), "presets.a.fill: fill is the share of a canvas: set canvas too"),
        (_with(a={"margin": 10}), "presets.a.margin: margin applies around a crop: set crop: true"),
        (_with(a={"crop": True, "margin": "ten"}), "presets.a.margin: 'ten' is not a margin"),
        (_with(a={"crop": True, "margin": "150%"}), "presets.a.margin: '150%' is over the most a margin may be (100%)"),
        (_with(a={"crop": True, "margin": -1}), "presets.a.margin: -1 is not a whole number from 0 to 2000"),
        (
            _with(a={"canvas": [9, 9], "crop": True, "margin": 4}),
            "presets.a.margin: a canvas places the subject by fill",
        ),
        (_with(a={"canvas": [9, 9], "max_side": 4}), "presets.a.max_side: a canvas fixes the size"),
        (_with(a={"max_side": 0}), "presets.a.max_side: 0 is not a whole number from 1 to 5000"),
        (_with(a={"upscale": True}), "presets.a.upscale: upscale applies to max_side: set max_side too"),
        (_with(a={"max_side": 9, "upscale": "yes"}), "presets.a.upscale: 'yes' is not true or false"),
        (_with(a={"quality": 80}), "presets.a.quality: PNG is lossless: quality applies to jpeg and webp"),
        (_with(a={"format": "webp", "quality": 101}), "presets.a.quality: 101 is not a whole number from 1 to 100"),
        (_with(a={"output": "mask"}), "presets.a.output: 'mask' is not an output: image or alpha"),
        (_with(a={"output": "alpha", "background": "#FFFFFF"}), "presets.a.background: output alpha is the mask"),
        (_with(a={"output": "alpha", "shadow": True}), "presets.a.shadow: output alpha is the mask"),
        (_with(a={"shadow": {"blur": 500}}), "presets.a.shadow.blur: 500 is not a whole number from 0 to 100"),
        (_with(a={"shadow": {"opacity": 0}}), "presets.a.shadow.opacity: 0 is outside (0, 1]"),
        (_with(a={"shadow": {"offset": [0, 9000]}}), "presets.a.shadow.offset: [0, 9000] is not [right, down]"),
        (
            _with(a={"shadow": {"colour": "#000000"}}),
            "presets.a.shadow: unknown field 'colour' (did you mean 'color'?)",
        ),
        (_with(a={"shadow": "soft"}), "presets.a.shadow: 'soft' is not a shadow"),
        (_with(A={}), "presets.A: a preset name is 1-40 of a-z, 0-9, '-' and '_'"),
        (_with(a=[]), "presets.a: [] is not an object of settings"),
        ({"presets": []}, "presets: [] is not an object of name: settings"),
        (
            {"presets": {"a": {}}, "rules": [{"prefix": "x/", "presets": ["b"]}]},
            "rules[0].presets: unknown preset 'b' (defined: a)",
        ),
        (
            {"presets": {"a": {}}, "rules": [{"prefix": "x/", "presets": []}]},
            "rules[0].presets: [] is not a non-empty list",
        ),
        ({"presets": {"a": {}}, "rules": [{"presets": ["a"]}]}, "rules[0].prefix: None is not a key prefix"),
        ({"presets": {"a": {}}, "rules": [{"prefix": "", "presets": ["a"], "x": 1}]}, "rules[0]: unknown field 'x'"),
        ({"presets": {"a": {}}, "rules": {"prefix": ""}}, "rules: {'prefix': ''} is not a list"),
        (
            {"presets": {f"p{i}": {} for i in range(MAX_PRESETS + 1)}},
            f"presets: {MAX_PRESETS + 1} presets is more than the {MAX_PRESETS}",
        ),
        ("{not json", "document: not JSON:"),
        ("[1, 2]", "the document is list, not an object"),
    ],
)
def test_each_problem_is_one_clear_line(document: Any, problem: str) -> None:
    # when
    problems = validate(document)

    # then: exactly one line, naming where and what
    assert len(problems) == 1, problems
    assert problems[0].startswith(problem), problems[0]
    assert "\n" not in problems[0]
    with pytest.raises(PresetError) as raised:
        PresetDocument.parse(document)
    assert raised.value.problems == problems


def test_every_problem_of_a_document_is_listed_not_just_the_first() -> None:
    bad = {
        "presets": {
            "m": {"format": "jpeg", "canvas": [60000, 2000], "fill": 1.2},
            "t": {"format": "webp", "background": "white"},
        },
        "rules": [{"prefix": "shop/", "presets": ["m", "nope"]}],
        "version": 2,
    }
    problems = validate(bad)
    assert [p.split(":")[0] for p in problems] == [
        "document",
        "presets.m.canvas",
        "presets.m.fill",
        "presets.m",
        "presets.t.background",
        "rules[0].presets",
    ]


def test_a_document_too_large_to_store_is_refused() -> None:
    big = {"presets": {"a": {}}, "rules": [{"prefix": "p" * 900 + str(i), "presets": ["a"]} for i in range(5)]}
    assert validate(big) == [
        f"document: {len(json.dumps(big, separators=(',', ':')))} bytes as compact JSON is more than the {MAX_DOCUMENT_BYTES} it may hold"
    ]


def test_settings_are_read_with_their_units_and_defaults() -> None:
    doc = PresetDocument.parse(
        _with(
            px={"crop": True, "margin": "40px"},
            pct={"crop": True, "margin": "5%", "format": "jpg", "background": "#abc"},
            shadowed={"shadow": True, "format": "webp"},
            custom={"shadow": {"offset": [3, -4], "blur": 0, "opacity": 1, "color": "#102030"}},
        )
    )
    assert doc.presets["px"].margin.around(100, 50) == (40, 40)
    assert doc.presets["pct"].margin.around(200, 100) == (10, 5)
    assert (doc.presets["pct"].format, doc.presets["pct"].background) == ("jpeg", (0xAA, 0xBB, 0xCC))
    assert doc.presets["pct"].encode_quality == 90
    assert doc.presets["shadowed"].shadow is not None and doc.presets["shadowed"].encode_quality == 85
    custom = doc.presets["custom"].shadow
    assert custom is not None and (custom.offset, custom.blur, custom.opacity, custom.color) == (
        (3, -4),
        0,
        1.0,
        (16, 32, 48),
    )


def _doc() -> PresetDocument:
    return PresetDocument.parse(
        {
            "presets": {
                "marketplace": {"format": "jpeg", "background": "#FFFFFF"},
                "thumb": {"max_side": 9},
                "mask": {"output": "alpha"},
            },
            "rules": [
                {"prefix": "shop/", "presets": ["marketplace", "thumb"]},
                {"prefix": "shop/shoes/", "presets": ["mask", "thumb"]},
                {"prefix": "", "presets": ["thumb"]},
            ],
        }
    )


def test_matching_rules_combine_as_a_union_in_document_order() -> None:
    doc = _doc()
    assert doc.pick("shop/shoes/red.jpg", ()).names == ("marketplace", "thumb", "mask")
    assert doc.pick("shop/hats/red.jpg", ()).names == ("marketplace", "thumb")
    assert doc.pick("blog/x.jpg", ()).names == ("thumb",)
    assert doc.pick("Shop/x.jpg", ()).names == ("thumb",)  # a prefix is matched as written (S3 keys are case-sensitive)


def test_metadata_names_add_to_the_rules_and_unknown_names_are_reported_not_raised() -> None:
    doc = _doc()
    picked = doc.pick("blog/x.jpg", parse_requested("mask, thumb,nope , Marketplace"))
    assert picked.names == ("thumb", "mask", "marketplace")
    assert picked.unknown == ("nope",)
    assert doc.pick("blog/x.jpg", ["nope", "nope"]).unknown == ("nope",)


def test_metadata_carries_names_only() -> None:
    # A setting written into the metadata is just a name no document defines: nothing of it is applied.
    raw = '{"canvas": [50000, 50000]}'
    requested = parse_requested(raw)
    picked = _doc().pick("blog/x.jpg", requested)
    assert picked.names == ("thumb",)
    assert picked.unknown == requested
    assert parse_requested(None) == () == parse_requested(" , ,")
    assert len(parse_requested(",".join(f"n{i}" for i in range(500)))) == MAX_PRESETS


def test_named_selects_exactly_the_names_given() -> None:
    picked = _doc().named(["mask", "mask", "gone"])
    assert (picked.names, picked.unknown) == (("mask",), ("gone",))


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("shop/shoe.jpg", "renditions/marketplace/shop/shoe.jpg"),
        ("shop/shoe.PNG", "renditions/marketplace/shop/shoe.jpg"),
        ("shoe", "renditions/marketplace/shoe.jpg"),
        ("a.b/shoe.tar.png", "renditions/marketplace/a.b/shoe.tar.jpg"),
        ("shop/ünï cödé.png", "renditions/marketplace/shop/ünï cödé.jpg"),
    ],
)
def test_a_rendition_key_mirrors_the_upload_under_its_preset(relative: str, expected: str) -> None:
    preset = Preset(name="marketplace", format="jpeg", background=(255, 255, 255))
    assert rendition_key("renditions/", preset, relative) == expected
