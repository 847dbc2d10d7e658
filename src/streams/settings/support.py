"""What the settings groups share: list parsing, secret files, error messages by variable."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator
from pydantic_settings import NoDecode


def _comma_list(value: Any) -> Any:
    if isinstance(value, str) and value.strip().startswith("["):
        import json

        return tuple(json.loads(value))
    if isinstance(value, str):
        return tuple(p.strip() for p in value.split(",") if p.strip())
    return value


# a tuple of strings given as a comma list (``A,B``) or a JSON list in the environment
CommaList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_comma_list)]

# Secret fields that may instead be given as a path in STREAMS_<NAME>_FILE.
SECRET_FIELDS = (
    "kafka_sasl_password",
    "ct_client_secret",
    "spapi_client_secret",
    "spapi_refresh_token",
    "web_token",
    "df_pii_key",
)


def secrets_from_files(data: Any) -> Any:
    """``STREAMS_X_FILE=/path`` supplies secret ``x`` from a file when ``x`` is unset."""
    if not isinstance(data, dict):
        return data
    for name in SECRET_FIELDS:
        path = os.environ.get(f"STREAMS_{name.upper()}_FILE")
        if path and name not in data and f"STREAMS_{name.upper()}" not in os.environ:
            try:
                data[name] = Path(path).read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                raise ValueError(
                    f"STREAMS_{name.upper()}_FILE={path}: cannot read it ({why})"
                ) from None
    return data


def env_name(field: str) -> str:
    return f"STREAMS_{field.upper()}"


class ConfigError(ValueError):
    """A setting that cannot work; the message names its ``STREAMS_*`` variable, in one line.

    Commands raise it for problems found after the settings loaded (e.g. a replication factor
    the cluster cannot give); ``streams`` prints it without a traceback and exits 2."""


def config_error(exc: Exception) -> str:
    """One line per problem of a settings ``ValidationError``, named by environment variable."""
    import re

    errors = getattr(exc, "errors", None)
    if not callable(errors):
        found = re.search(r'error parsing value for field "(\w+)"', str(exc))
        if found:  # pydantic-settings: a list setting whose value is not JSON
            return f'{env_name(found[1])}: not a JSON list (e.g. ["a","b"]; [] for none)'
        return " ".join(str(exc).split())
    lines = []
    for e in errors():
        where = ".".join(str(p) for p in e.get("loc", ()))
        message = str(e.get("msg", "")).removeprefix("Value error, ")
        lines.append(f"{env_name(where)}: {message}" if where else message)
    return " ".join("; ".join(lines).split())  # one line, whatever a message holds
