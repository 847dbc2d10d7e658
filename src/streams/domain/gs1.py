"""GS1 keys: the mod-10 check digit and the SSCC-18 (Serial Shipping Container Code).

Every GS1 key (GTIN-8/12/13/14, GLN, SSCC) ends in the same check digit: weight the digits
3, 1, 3, 1, ... starting from the rightmost digit of the body, and the check digit tops the
weighted sum up to a multiple of ten (GS1 General Specifications, section 7.9).
"""

from __future__ import annotations

import re

SSCC_LENGTH = 18
# The GS1-128 Application Identifier that precedes an SSCC in a barcode: "(00)".
SSCC_AI = "00"

_DIGITS = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() also accepts e.g. "²" and "٣"


def check_digit(body: str) -> int:
    """The GS1 mod-10 check digit for ``body`` (the key without its check digit)."""
    if not _DIGITS.fullmatch(body):
        raise ValueError(f"a GS1 key body must be ASCII digits, got {body!r}")
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return -total % 10


def with_check_digit(body: str) -> str:
    """``body`` followed by its check digit, e.g. a 17-digit SSCC body -> an SSCC."""
    return body + str(check_digit(body))


def has_valid_check_digit(key: str) -> bool:
    """True when ``key`` is at least two ASCII digits and its last digit is the check digit."""
    return (
        len(key) >= 2
        and _DIGITS.fullmatch(key) is not None
        and check_digit(key[:-1]) == int(key[-1])
    )


def sscc_problem(value: str) -> str | None:
    """Why ``value`` is not an SSCC-18, as a short phrase for a violation message; None if it is."""
    if len(value) != SSCC_LENGTH:
        return f"has {len(value)} characters, an SSCC has exactly {SSCC_LENGTH} digits"
    bad = next((c for c in value if not ("0" <= c <= "9")), None)
    if bad is not None:
        return f"contains {bad!r}, an SSCC is digits only"
    expected = check_digit(value[:-1])
    if expected != int(value[-1]):
        return f"check digit is {value[-1]}, expected {expected}"
    return None


def is_valid_sscc(value: str) -> bool:
    """Exactly 18 ASCII digits whose last digit is the GS1 check digit."""
    return sscc_problem(value) is None


def strip_sscc_ai(value: str) -> str:
    """The bare SSCC of a barcode element string: drops "(00)" or a leading "00" of 20 digits.

    Only a 20-character value loses its "00": an 18-digit SSCC may itself start with "00"
    (extension digit 0, GS1 company prefix 0614141 gives 006141411234567890).
    """
    if value.startswith(f"({SSCC_AI})"):
        return value[len(SSCC_AI) + 2 :]
    if len(value) == SSCC_LENGTH + len(SSCC_AI) and value.startswith(SSCC_AI):
        return value[len(SSCC_AI) :]
    return value
