"""Every body the DF clients send is checked against Amazon's model first."""

from __future__ import annotations

from typing import Any

from streams.adapters import amazon_models


class InvalidBody(ValueError):
    """A body that breaks Amazon's model: not sent."""

    def __init__(self, api: str, definition: str, problems: list[str]) -> None:
        super().__init__(f"{api} {definition}: " + "; ".join(problems[:10]))
        self.problems = problems


def checked(api: str, definition: str, body: Any) -> Any:
    """``body`` if it validates against Amazon's model (or the model is not available,
    which :mod:`~streams.adapters.amazon_models` counts and reports); else InvalidBody."""
    problems = amazon_models.validate(api, definition, body)
    if problems:
        raise InvalidBody(api, definition, problems)
    return body
