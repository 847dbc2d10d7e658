"""GS1 mod-10 check digits and SSCC-18 validation, against published examples."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.domain.gs1 import (
    check_digit,
    has_valid_check_digit,
    is_valid_sscc,
    sscc_problem,
    strip_sscc_ai,
    with_check_digit,
)

# Published SSCCs, all with GS1's example company prefix 0614141:
# - 106141411234567897: the SSCC-18 sample value of the barcode writers (BWIPP / bwip-js
#   symbology "sscc18"), prefix 0614141.
# - 006141411234567890: GS1 General Specifications, figure 6.6.5-1 (logistic label; Zint's
#   test suite cites that figure), and the GS1 Digital Link example
#   https://id.gs1.org/00/006141411234567890.
# - 340123451234567895: an SSCC on 4012345, the example GS1 Company Prefix of GS1 Germany,
#   widely used as a sample (its check digit recomputed below: 34012345123456789 -> 5).
# - 504787440638918554: carried as "00504787440638918554" (AI + SSCC) in a real
#   SubmitShipmentConfirmations payload, amzn/selling-partner-api-docs issue #1792.
PUBLISHED_SSCCS = [
    "106141411234567897",
    "006141411234567890",
    "340123451234567895",
    "504787440638918554",
]


@pytest.mark.parametrize("sscc", PUBLISHED_SSCCS)
def test_published_ssccs_are_valid(sscc: str) -> None:
    assert is_valid_sscc(sscc)
    assert sscc_problem(sscc) is None
    assert check_digit(sscc[:-1]) == int(sscc[-1])


@pytest.mark.parametrize(
    ("body", "digit"),
    [
        # Bodies of the published SSCCs above.
        ("10614141123456789", 7),
        ("00614141123456789", 0),
        ("34012345123456789", 5),
        # UPC-A 036000291452, the example symbol of Wikipedia's "Universal Product Code".
        ("03600029145", 2),
        # UPC-A 036000241457 (a box of tissues), the check digit worked example there.
        ("03600024145", 7),
        # EAN-13 4006381333931 (Wikipedia "International Article Number" example).
        ("400638133393", 1),
        # GTIN-14 09506000134352, the example GTIN of the GS1 Digital Link standard.
        ("0950600013435", 2),
        # A weighted sum that is already a multiple of ten gives 0, not 10.
        ("0", 0),
    ],
)
def test_check_digit_of_published_keys(body: str, digit: int) -> None:
    assert check_digit(body) == digit
    assert has_valid_check_digit(body + str(digit))


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("106141411234567890", "check digit is 0, expected 7"),
        ("006141411234567891", "check digit is 1, expected 0"),
        ("10614141123456789", "has 17 characters, an SSCC has exactly 18 digits"),
        ("1061414112345678970", "has 19 characters, an SSCC has exactly 18 digits"),
        ("00106141411234567897", "has 20 characters, an SSCC has exactly 18 digits"),
        ("", "has 0 characters, an SSCC has exactly 18 digits"),
        ("10614141123456789A", "contains 'A', an SSCC is digits only"),
        ("1061414 1234567897", "contains ' ', an SSCC is digits only"),
        # Non-ASCII digits pass str.isdigit() but are not GS1 digits.
        ("10614141123456789\u0667", "contains '\u0667', an SSCC is digits only"),
    ],
)
def test_invalid_ssccs_say_why(value: str, problem: str) -> None:
    assert not is_valid_sscc(value)
    assert sscc_problem(value) == problem


def test_check_digit_rejects_non_digits() -> None:
    with pytest.raises(ValueError):
        check_digit("12A")
    with pytest.raises(ValueError):
        check_digit("")
    assert not has_valid_check_digit("7")  # a lone digit has no body


@pytest.mark.parametrize(
    ("raw", "bare"),
    [
        ("(00)106141411234567897", "106141411234567897"),
        ("00106141411234567897", "106141411234567897"),
        # 18 digits starting with 00 are already an SSCC: never shortened.
        ("006141411234567890", "006141411234567890"),
        ("106141411234567897", "106141411234567897"),
    ],
)
def test_strip_sscc_ai(raw: str, bare: str) -> None:
    assert strip_sscc_ai(raw) == bare


@given(st.from_regex(r"[0-9]{17}", fullmatch=True))
def test_with_check_digit_makes_a_valid_sscc(body: str) -> None:
    assert is_valid_sscc(with_check_digit(body))


@given(
    st.from_regex(r"[0-9]{17}", fullmatch=True),
    st.integers(0, 17),
    st.integers(1, 9),
)
def test_any_single_digit_error_is_detected(body: str, position: int, shift: int) -> None:
    # Weights 3 and 1 are coprime to 10, so mod 10 catches every single-digit substitution.
    sscc = with_check_digit(body)
    wrong = str((int(sscc[position]) + shift) % 10)
    corrupted = sscc[:position] + wrong + sscc[position + 1 :]
    assert not is_valid_sscc(corrupted)
