"""Field types for the models that parse input topics, so they accept what JSON Schema accepts.

The topic schemas in ``schemas/`` are generated from these models (``streams.schemas_gen``),
so a model must refuse exactly what its schema refuses: no ``"12"`` for an integer, no
``"yes"`` for a boolean, no number for a date-time. pydantic's lax mode would coerce those;
these types do not. JSON Schema counts ``1.0`` as an integer, so these integers take it too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import (
    AwareDatetime,
    BeforeValidator,
    StrictBool,
    StrictInt,
    StrictStr,
    StringConstraints,
    WithJsonSchema,
)


def integral(v: object) -> object:
    # JSON Schema: "integer" is any number with a zero fractional part, 1.0 included
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


JsonInt = Annotated[StrictInt, BeforeValidator(integral)]
# (with constraints in a union, put them before the validator, or the schema loses them:
#  Annotated[StrictInt, Field(ge=1), BeforeValidator(integral)] | None)
JsonBool = StrictBool
JsonStr = StrictStr
# A non-blank string (the schemas' "text").
Text = Annotated[StrictStr, StringConstraints(min_length=1, pattern=r"\S")]


def iso_text(pattern: str) -> Callable[[object], object]:
    """A before-validator: RFC 3339 text matching ``pattern``, for an ``AwareDatetime``."""
    rx = re.compile(pattern)

    def check(v: object) -> object:
        # pydantic would also take a number as a Unix time, or a space for the "T"
        if isinstance(v, datetime):
            return v
        if not isinstance(v, str) or not rx.search(v):
            raise ValueError("a date-time must be an RFC 3339 string with a UTC offset")
        return v

    return check


def date_time_schema(pattern: str) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "format": "date-time", "pattern": pattern})


def decimal_text(pattern: str) -> Callable[[object], object]:
    """A before-validator: a decimal amount as a JSON string matching ``pattern`` (no float)."""
    rx = re.compile(pattern)

    def check(v: object) -> object:
        if isinstance(v, Decimal):  # our own stored, already validated values
            return v
        if not isinstance(v, str) or not rx.search(v):
            raise ValueError(f"an amount must be a decimal string matching {pattern}")
        return Decimal(v)

    return check


def decimal_schema(pattern: str) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "pattern": pattern})


# Usage (a type alias mypy can read):
#   Stamp = Annotated[AwareDatetime, BeforeValidator(iso_text(P)), date_time_schema(P)]
__all__ = [
    "AwareDatetime",
    "BeforeValidator",
    "JsonBool",
    "JsonInt",
    "JsonStr",
    "StrictInt",
    "Text",
    "date_time_schema",
    "decimal_schema",
    "decimal_text",
    "integral",
    "iso_text",
]
