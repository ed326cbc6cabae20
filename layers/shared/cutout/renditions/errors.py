"""What goes wrong with presets and renditions, as values a caller can record (no imaging import here)."""

from __future__ import annotations


class PresetError(ValueError):
    """A presets document that must not be used: every problem found, one clear line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems) if self.problems else "invalid presets document")


class RenditionError(Exception):
    """A cutout that cannot be rendered (too large, unreadable) or a rendering that failed: ``code`` is stable
    (recorded on the job), ``message`` says what for a person."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")
