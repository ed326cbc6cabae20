"""The cutout judged as a shop would: no subject, background not removed, subject cut off; a clean one passes."""

from __future__ import annotations

from cutout.renditions.judge import judge
from PIL import Image, ImageDraw

from tests.support.cutouts import cutout


def _codes(image: Image.Image) -> list[tuple[str, float]]:
    return [(flag.code, flag.figure) for flag in judge(image)]


def test_a_clean_cutout_with_a_faint_halo_is_not_flagged() -> None:
    assert judge(cutout(size=(800, 600), box=(100, 100, 500, 400)).image) == ()


def test_an_almost_all_transparent_cutout_has_no_subject() -> None:
    image = Image.new("RGBA", (1000, 1000), (0, 255, 0, 0))
    image.paste((9, 9, 9, 255), (0, 0, 40, 40))  # 0.16% of the frame
    flags = judge(image)
    assert [(f.code, f.figure) for f in flags] == [("no_subject", 0.0016)]
    assert "0.2%" in flags[0].message


def test_an_almost_all_opaque_cutout_kept_its_background() -> None:
    image = Image.new("RGBA", (1000, 1000), (50, 60, 70, 255))
    ImageDraw.Draw(image).rectangle((0, 0, 99, 99), fill=(0, 0, 0, 0))  # 1% removed
    assert _codes(image) == [("background_not_removed", 0.99)]
    assert _codes(Image.new("RGBA", (10, 10), (1, 2, 3, 255))) == [("background_not_removed", 1.0)]


def test_a_subject_running_into_the_frame_is_cut_off_with_the_share_of_the_side() -> None:
    # a subject whose solid body reaches the bottom edge over 300 of 1000 pixels
    image = cutout(size=(1000, 800), box=(300, 200, 600, 820), soft=0, halo=False).image  # past the frame
    flags = judge(image)
    assert [(f.code, f.figure) for f in flags] == [("subject_cut_off", 0.3)]
    assert "bottom 30%" in flags[0].message


def test_a_soft_edge_touching_the_frame_is_no_cut() -> None:
    image = cutout(size=(1000, 800), box=(300, 200, 600, 600), halo=False).image
    ImageDraw.Draw(image).rectangle((300, 600, 599, 799), fill=(10, 10, 10, 60))  # a semi-transparent shadow
    assert judge(image) == ()
