"""The log redaction filter: secrets (raw, URL-encoded, HTTP Basic) and address-like personal
data are masked in messages, arguments, exception and stack text, for every logger."""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Iterator
from urllib.parse import quote

import orjson
import pytest

from streams.config import Settings
from streams.observability import logging as redaction
from streams.observability.logging import MASK, RedactingFilter, setup_logging

SECRET = "Atzr|planted-refresh/token+1"
ADDRESS = {
    "name": "Jane Q. Doe",
    "addressLine1": "742 Evergreen Terrace",
    "city": "Springfield",
    "stateOrRegion": "OR",
    "postalCode": "97403",
    "countryCode": "US",
    "phone": "+1 555 0100",
}


def format_record(f: RedactingFilter, msg: str, *args: object, exc: bool = False) -> str:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, msg, args, None)
    if exc:
        try:
            raise RuntimeError(f"token {SECRET} refused")
        except RuntimeError:
            import sys

            record.exc_info = sys.exc_info()
    f.filter(record)
    return logging.Formatter("%(message)s").format(record)


def test_secrets_in_message_args_and_exceptions() -> None:
    f = RedactingFilter([SECRET])
    assert SECRET not in format_record(f, f"plain {SECRET}")
    assert SECRET not in format_record(f, "arg %s and %r", SECRET, {"t": SECRET})
    out = format_record(f, "failed", exc=True)
    assert "RuntimeError" in out and SECRET not in out and MASK in out
    # as a form body or a query string would carry it
    assert quote(SECRET, safe="") not in format_record(f, f"body refresh_token={quote(SECRET)}")
    assert quote(SECRET, safe="") not in format_record(f, quote(SECRET, safe=""))


def test_short_values_are_not_secrets() -> None:
    f = RedactingFilter(["abc", ""])
    assert format_record(f, "abcdef") == "abcdef"


@pytest.mark.parametrize(
    "text",
    [
        orjson.dumps({"shipToParty": {"partyId": "ABE2", "address": ADDRESS}}).decode(),
        repr({"shipToParty": {"partyId": "ABE2", "address": ADDRESS}}),
        repr(orjson.dumps({"address": ADDRESS}))[:120],  # cut off mid-value, as %r[:300] does
        "input_value={'name': 'Jane Q. Doe', 'addressLine1': '742 Evergreen Terrace'}",
    ],
)
def test_addresses_are_masked(text: str) -> None:
    out = format_record(RedactingFilter(), "PO: %s", text)
    for value in ("Jane Q. Doe", "742 Evergreen", "Springfield", "97403", "555 0100"):
        assert value not in out, out
    assert "ABE2" in out or "ABE2" not in text  # party ids are business data, kept


def test_email_addresses_are_masked() -> None:
    assert "jane@example.com" not in format_record(RedactingFilter(), "mail jane@example.com")


def test_ordinary_lines_are_untouched() -> None:
    f = RedactingFilter([SECRET])
    line = "dead-lettered ct.messages[0]@12: unknown notificationType 'Teleported'"
    assert format_record(f, line) == line


@pytest.fixture
def restore_logging() -> Iterator[None]:
    factory = logging.getLogRecordFactory()
    root = logging.getLogger()
    handlers, filters, level = list(root.handlers), list(root.filters), root.level
    installed = redaction._installed
    yield
    logging.setLogRecordFactory(factory)
    root.handlers, root.filters, root.level = handlers, filters, level
    redaction._installed = installed


@pytest.mark.usefixtures("restore_logging")
def test_setup_logging_covers_every_logger_and_later_handlers() -> None:
    s = Settings(
        spapi_client_secret=SECRET,
        ct_client_id="cid",
        ct_client_secret="ct-planted-secret",
        _env_file=None,  # type: ignore[call-arg]
    )
    setup_logging(s)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)  # added after setup, as Faust's worker does
    log = logging.getLogger("some.library.deep")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        basic = base64.b64encode(b"cid:ct-planted-secret").decode()
        log.warning("secret %s; header Basic %s", SECRET, basic)
        try:
            raise ValueError("ct-planted-secret rejected")
        except ValueError:
            log.exception("call failed for %s", ADDRESS)
    finally:
        log.removeHandler(handler)
    out = stream.getvalue()
    for leaked in (SECRET, "ct-planted-secret", basic, "Jane Q. Doe", "742 Evergreen"):
        assert leaked not in out, out
    assert "ValueError" in out  # the traceback itself is kept
