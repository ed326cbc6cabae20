"""The photo-like sample generator: deterministic, its truth lines up with its pixels, the portrait is upright when
its EXIF orientation is applied, and the committed files are the generator's."""

from __future__ import annotations

import functools
import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from cutout_dev.make_samples import SAMPLES, SAMPLES_DIR
from cutout_dev.samples import PHOTO_LIKE, Sample, filename, photo_like
from cutout_dev.samples.measure import background_left, subject_lost


@functools.cache
def sample(name: str, seed: int = 27) -> Sample:
    return photo_like(name, seed=seed)


@pytest.mark.parametrize("name", PHOTO_LIKE)
def test_a_name_and_seed_always_draw_the_same_picture(name: str) -> None:
    again = photo_like(name)
    assert again.data == sample(name).data
    assert again.truth_alpha.tobytes() == sample(name).truth_alpha.tobytes()
    assert photo_like(name, seed=1).data != again.data  # the seed does change the picture


@pytest.mark.parametrize("name", PHOTO_LIKE)
def test_the_truth_is_where_the_subject_is(name: str) -> None:
    # given the same scene drawn over two differently seeded backgrounds
    one, other = np.asarray(sample(name).image), np.asarray(sample(name, seed=5).image)
    truth = np.asarray(sample(name).truth_alpha)
    # (more than one level: truth 255 is an alpha of at least 254.5/255, through which the background may round)
    changed = np.abs(one.astype(int) - other.astype(int)).max(axis=2) > 1
    # then where the truth says "subject" the pixels did not change, and where it says "background" they did
    assert not changed[truth == 255].any()
    assert changed[truth == 0].mean() > 0.25  # the studio's sweep is plain but for a faint grain


@pytest.mark.parametrize("name", PHOTO_LIKE)
def test_the_perfect_cutout_holds_the_subject_alone(name: str) -> None:
    # given the sample's perfect cutout (what an ideal background remover returns)
    cutout = sample(name).cutout
    assert cutout.mode == "RGBA"
    assert cutout.getchannel("A").tobytes() == sample(name).truth_alpha.tobytes()
    # then no background is in it, not even in the soft edges: over another background it is the same cutout
    assert cutout.tobytes() == sample(name, seed=5).cutout.tobytes()
    # and where the subject is opaque it is the picture's own pixels
    rgba, picture = np.asarray(cutout).astype(int), np.asarray(sample(name).image).astype(int)
    opaque = rgba[..., 3] == 255
    assert np.abs(rgba[..., :3][opaque] - picture[opaque]).max() <= 1


@pytest.mark.parametrize("name", PHOTO_LIKE)
def test_every_subject_has_soft_edges_a_translucent_part_and_sits_off_centre(name: str) -> None:
    truth = np.asarray(sample(name).upright_truth_alpha).astype(float) / 255
    h, w = truth.shape
    assert ((truth > 0) & (truth < 1)).mean() > 0.02  # anti-aliased and feathered edges, translucent glass
    assert ((truth > 0.25) & (truth < 0.6)).sum() > 0.01 * h * w  # a translucent part, not only thin edges
    _, xs = np.nonzero(truth > 0.5)
    assert abs(xs.mean() / w - 0.5) > 0.08  # off-centre
    assert 0.05 < (truth > 0.5).mean() < 0.5


def test_the_portrait_is_stored_sideways_and_shows_upright_with_its_exif_orientation() -> None:
    portrait = sample("portrait")
    stored = portrait.decoded()
    assert stored.width > stored.height  # a landscape JPEG ...
    assert stored.getexif()[0x0112] == 6  # ... tagged to be turned a quarter clockwise
    upright = portrait.decoded(exif_transpose=True)
    assert upright.height > upright.width
    assert upright.size == portrait.upright_truth_alpha.size
    assert ImageOps.exif_transpose(stored).tobytes() == portrait.upright(stored).tobytes()
    # and upright means the bottle stands: its wide body in the lower half, its narrow neck and flower above
    truth = np.asarray(portrait.upright_truth_alpha) > 127
    rows = truth.sum(axis=1)
    assert rows[len(rows) // 2 :].mean() > 2 * rows[: len(rows) // 2].mean()


@pytest.mark.parametrize("name", ["table", "portrait"])
def test_the_committed_photo_samples_are_the_generators(name: str) -> None:
    path = SAMPLES_DIR / filename(name)
    assert path.name in SAMPLES
    data = path.read_bytes()
    assert len(data) < 300_000
    committed = Image.open(io.BytesIO(data))
    fresh = sample(name).decoded()
    assert (committed.size, committed.getexif().get(0x0112)) == (fresh.size, sample(name).exif_orientation)
    diff = np.abs(np.asarray(committed.convert("RGB"), dtype=int) - np.asarray(fresh.convert("RGB"), dtype=int))
    assert diff.max() <= 3  # the same picture (a float may round differently on another CPU)


def test_the_measures_count_background_left_and_subject_lost() -> None:
    truth = Image.new("L", (10, 10), 0)
    truth.paste(255, (0, 0, 5, 10))  # left half subject
    everything = Image.new("L", (10, 10), 255)
    assert (background_left(everything, truth), subject_lost(everything, truth)) == (1.0, 0.0)
    nothing = Image.new("L", (10, 10), 0)
    assert (background_left(nothing, truth), subject_lost(nothing, truth)) == (0.0, 1.0)
    assert (background_left(truth, truth), subject_lost(truth, truth)) == (0.0, 0.0)
