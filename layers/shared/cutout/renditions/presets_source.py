"""The stack's presets document, from its SSM parameter (template output `PresetsParameterName`), cached briefly.

Powertools' parameters utility caches the value for `max_age` seconds (60 on the stack), so an operator's
`cutout presets set` reaches every function within a minute without a redeploy, and a burst of completions costs
one GetParameter a minute. A parameter that does not exist is no presets (the contract: absent or `{}`); a stored
document that does not validate is a configuration error and raises, so the message is retried and ends in the DLQ,
redrivable once the document is fixed, rather than dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cutout.renditions.presets import PresetDocument

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters.ssm import SSMProvider

PRESETS_MAX_AGE_SECONDS = 60


class PresetsSource:
    def __init__(self, parameter_name: str, *, max_age: int = PRESETS_MAX_AGE_SECONDS) -> None:
        self.parameter_name = parameter_name
        self.max_age = max_age
        self._provider: SSMProvider | None = None
        self._parsed: tuple[str, PresetDocument] | None = None

    def _ssm(self) -> SSMProvider:
        if self._provider is None:
            from aws_lambda_powertools.utilities.parameters.ssm import SSMProvider
            from botocore.config import Config

            # Bounded, as every client of the functions (aws_clients): a hung call fails inside the timeout.
            config = Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 4, "mode": "standard"})
            self._provider = SSMProvider(boto_config=config)
        return self._provider

    def current(self) -> PresetDocument:
        """The document as stored now (at most `max_age` seconds old); empty without a parameter name."""
        if not self.parameter_name:
            return PresetDocument()
        provider = self._ssm()
        try:
            raw: Any = provider.get(self.parameter_name, max_age=self.max_age)
        except Exception as exc:
            if _not_found(exc):
                return PresetDocument()
            raise
        text = raw.decode() if isinstance(raw, bytes) else str(raw or "")
        # Parsed once per stored value, not once per message.
        if self._parsed is None or self._parsed[0] != text:
            self._parsed = (text, PresetDocument.parse(text))
        return self._parsed[1]


def _not_found(exc: BaseException) -> bool:
    cause: BaseException | None = exc
    while cause is not None:
        if "ParameterNotFound" in f"{type(cause).__name__} {cause}":
            return True
        cause = cause.__cause__ or cause.__context__
    return False
