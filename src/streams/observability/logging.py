"""Log redaction: known secret values and address-like personal data never reach a log line.

The adapters already keep secrets out of what they log; this is the net under them. A
:class:`RedactingFilter` rewrites a record's message, exception text and stack text:

* every secret of the settings (and its URL-encoded and HTTP Basic forms), registered at
  startup, plus any value registered later (:func:`register_secret`), becomes ``****``;
* the values of address fields (Amazon's ``Address``: name, addressLine1-3, city, county,
  district, stateOrRegion, postalCode, phone; e-mail, tax registration numbers) in JSON or
  Python-repr text become ``****``, as do e-mail addresses anywhere. Purchase orders carry
  ship-to and bill-to addresses; an exception that quotes its input must not copy them.

:func:`setup_logging` installs it for the whole process: as a filter on the root logger and
its handlers, and in the log-record factory, so records of every logger are redacted even
when a library (Faust's worker) replaces the handlers after start-up.

``STREAMS_LOG_FORMAT=json``: :class:`JsonFormatter` writes one JSON object per line with
``ts``, ``level``, ``logger``, ``msg`` and, where the code knows them, ``sku``, ``po``,
``topic``, ``partition``, ``offset`` (from ``extra=`` or :func:`log_fields`). It formats
records the filter has already redacted, and redacts the extra fields as well.
"""

from __future__ import annotations

import base64
import contextvars
import logging
import re
import sys
import threading
import traceback
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus

import orjson

if TYPE_CHECKING:
    from streams.config import Settings

MASK = "****"
MIN_SECRET = 4  # shorter values would mask ordinary text

PII_KEYS = (
    "name",
    "addressLine1",
    "addressLine2",
    "addressLine3",
    "city",
    "county",
    "district",
    "stateOrRegion",
    "postalCode",
    "phone",
    "email",
    "taxRegistrationNumber",
)
# "key": "value" / 'key': 'value' / key=value; a value cut off by truncation counts too
_PII = re.compile(
    r"""(?P<k>(?P<kq>["']?)\b(?:"""
    + "|".join(PII_KEYS)
    + r""")(?P=kq)\s*[:=]\s*)(?P<q>["'])(?:\\.|(?!(?P=q)).)*(?:(?P=q)|$)""",
    re.DOTALL,
)
_EMAIL = re.compile(r"[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


def secret_forms(value: str) -> set[str]:
    """``value`` as it may appear in text: raw, URL-encoded, form-encoded."""
    return {v for v in (value, quote(value, safe=""), quote_plus(value)) if len(v) >= MIN_SECRET}


class RedactingFilter(logging.Filter):
    """Masks registered secrets and address-like personal data in log records."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()
        for s in secrets:
            self.add_secret(s)

    def add_secret(self, value: str | None) -> None:
        if not value or len(value) < MIN_SECRET:
            return
        with self._lock:
            # longest first: a secret that contains another is masked whole
            found = set(self._secrets) | secret_forms(value)
            self._secrets = tuple(sorted(found, key=len, reverse=True))

    def redact(self, text: str) -> str:
        for s in self._secrets:
            if s in text:
                text = text.replace(s, MASK)
        text = _PII.sub(lambda m: f"{m['k']}{m['q']}{MASK}{m['q']}", text)
        return _EMAIL.sub(MASK, text)

    def filter(self, record: logging.LogRecord) -> bool:
        self.scrub(record)
        return True

    def scrub(self, record: logging.LogRecord) -> None:
        if getattr(record, "_redacted", False):
            return
        try:
            message = record.getMessage()
        except Exception:  # a broken %-format: keep what can be said
            message = f"{record.msg!s} {record.args!r}"
        record.msg, record.args = self.redact(message), ()
        if record.exc_info and not record.exc_text:
            # formatted now, so the formatter uses this text and never the raw exception
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        record._redacted = True


_FILTER = RedactingFilter()
_installed = False


def redacting_filter() -> RedactingFilter:
    """The process-wide filter (what :func:`setup_logging` installs)."""
    return _FILTER


def register_secret(value: str | None) -> None:
    """Mask ``value`` from now on (e.g. an access token obtained at run time)."""
    _FILTER.add_secret(value)


def settings_secrets(s: Settings) -> list[str]:
    """Every secret value in ``s``, with the HTTP Basic header form of the commercetools
    client credentials (``base64(client_id:secret)``)."""
    from pydantic import SecretStr

    out: list[str] = []
    for name in type(s).model_fields:
        value = getattr(s, name)
        if isinstance(value, SecretStr) and value.get_secret_value():
            out.append(value.get_secret_value())
    basic = f"{s.ct_client_id}:{s.ct_client_secret.get_secret_value()}"
    out.append(base64.b64encode(basic.encode()).decode("ascii"))
    return out


# what a JSON line may carry besides the four fixed keys (the names operators filter on)
CONTEXT_FIELDS = ("sku", "po", "topic", "partition", "offset")
_CONTEXT: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "streams_log_context", default=None
)


@contextmanager
def log_fields(**fields: Any) -> Iterator[None]:
    """Records logged inside carry ``fields`` (e.g. ``sku=...``) in JSON output."""
    token = _CONTEXT.set({**(_CONTEXT.get() or {}), **fields})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC, ISO 8601), level, logger, msg, known context fields,
    exc (the traceback text) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        _FILTER.scrub(record)  # a no-op when the record factory did it already
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        ctx = _CONTEXT.get() or {}
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, ctx.get(name))
            if value is None:
                continue
            if not isinstance(value, int | float | bool):
                value = _FILTER.redact(str(value))
            out[name] = value
        if record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = record.stack_info
        return orjson.dumps(out).decode()


def json_logging_config(level: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for JSON lines on stderr (given to Faust's worker,
    which replaces the root handlers at start)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level, "handlers": ["default"]},
    }


def setup_logging(settings: Settings, *, fmt: str | None = None) -> RedactingFilter:
    """Configure the root logger (level, format) and install redaction for the process."""
    global _installed
    if settings.log_format == "json":
        lines = logging.StreamHandler(sys.stderr)
        lines.setFormatter(JsonFormatter())
        logging.basicConfig(level=settings.log_level, handlers=[lines], force=True)
    else:
        logging.basicConfig(
            level=settings.log_level,
            format=fmt or "%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    for secret in settings_secrets(settings):
        _FILTER.add_secret(secret)
    root = logging.getLogger()
    if _FILTER not in root.filters:
        root.addFilter(_FILTER)
    for handler in root.handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
    if not _installed:  # every logger's records, whatever handlers are installed later
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            _FILTER.scrub(record)
            return record

        logging.setLogRecordFactory(factory)
        _installed = True
    return _FILTER
