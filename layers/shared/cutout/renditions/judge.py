"""The cutout judged as a shop would before publishing it, from the decoded image the renditions use.

Three findings, each with its figure (a fraction) so a person can tell a borderline case from a clear one:
``no_subject`` (almost all transparent: hosted removers answer "foreground not found"), ``background_not_removed``
(almost all opaque), ``subject_cut_off`` (the subject runs into the frame, so the product is not whole). A flag never
stops the renditions: it is recorded on the job and carried in the event.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from cutout.renditions.preset import SUBJECT_ALPHA_THRESHOLD

NO_SUBJECT_BELOW = 0.005  # subject pixels (alpha above the threshold) under 0.5% of the frame
BACKGROUND_KEPT_ABOVE = 0.97  # opaque pixels over 97% of the frame: nothing (or a sliver) was removed
CUT_OFF_ABOVE = 0.02  # one side of the frame more than 2% covered by the solid subject
OPAQUE = 250  # "opaque": alpha at or above this
SOLID = 128  # the subject's body, not its soft edge: a halo touching the frame is no cut


@dataclass(frozen=True)
class Flag:
    code: str
    figure: float
    message: str


def _share(alpha: Image.Image, at_least: int) -> float:
    """The fraction of pixels of ``alpha`` (an "L" image) at or above ``at_least``."""
    histogram = alpha.histogram()
    total = sum(histogram)
    return sum(histogram[at_least:]) / total if total else 0.0


def _sides(alpha: Image.Image) -> dict[str, Image.Image]:
    width, height = alpha.size
    return {
        "top": alpha.crop((0, 0, width, 1)),
        "bottom": alpha.crop((0, height - 1, width, height)),
        "left": alpha.crop((0, 0, 1, height)),
        "right": alpha.crop((width - 1, 0, width, height)),
    }


def judge(image: Image.Image) -> tuple[Flag, ...]:
    """The flags of a decoded cutout (RGBA, as ``open_cutout`` gives it); () when a shop would publish it."""
    if image.mode != "RGBA" or image.width == 0 or image.height == 0:
        return (Flag("background_not_removed", 1.0, "the cutout has no transparency at all"),)
    alpha = image.getchannel("A")
    subject = _share(alpha, SUBJECT_ALPHA_THRESHOLD + 1)
    if subject < NO_SUBJECT_BELOW:
        return (Flag("no_subject", round(subject, 4), f"no subject found: {subject:.1%} of the frame is the subject"),)
    opaque = _share(alpha, OPAQUE)
    if opaque > BACKGROUND_KEPT_ABOVE:
        return (
            Flag(
                "background_not_removed",
                round(opaque, 4),
                f"background not removed: {opaque:.1%} of the frame is opaque",
            ),
        )
    touching = {side: _share(strip, SOLID) for side, strip in _sides(alpha).items()}
    figure = max(touching.values())
    if figure > CUT_OFF_ABOVE:
        cut = ", ".join(f"{name} {share:.0%}" for name, share in touching.items() if share > CUT_OFF_ABOVE)
        return (Flag("subject_cut_off", round(figure, 4), f"subject cut off at the frame ({cut})"),)
    return ()
