"""Settings: every knob comes from a ``STREAMS_*`` environment variable (or a ``.env`` file).

No I/O happens at import. Secrets are ``SecretStr`` so they never print by accident; a
``*_FILE`` variant of each secret reads it from a file (Docker/Kubernetes secrets).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.settings.amazon import (
    HOST,
    LOCAL_SPAPI_CLIENT_ID,
    LOCAL_SPAPI_REFRESH_TOKEN,
    AsnSettings,
    DfFlowSettings,
    DfPollSettings,
    PurchaseOrderSettings,
    SpapiSettings,
)
from streams.settings.commercetools import (
    CtCommandSettings,
    CtSettings,
    SalesOrderSettings,
    StorefrontOrderSettings,
)
from streams.settings.invoices import InvoiceSettings
from streams.settings.kafka import KafkaSettings, SaslMechanism, SecurityProtocol, TopicSettings
from streams.settings.support import (
    SECRET_FIELDS,
    CommaList,
    ConfigError,
    config_error,
    env_name,
    secrets_from_files,
)
from streams.settings.worker import InventoryRuleSettings, OpsSettings, WorkerSettings

__all__ = [
    "HOST",
    "LOCAL_SPAPI_CLIENT_ID",
    "LOCAL_SPAPI_REFRESH_TOKEN",
    "SECRET_FIELDS",
    "CommaList",
    "ConfigError",
    "SaslMechanism",
    "SecurityProtocol",
    "Settings",
    "config_error",
    "env_name",
    "load_settings",
]


# Each group's fields, validators and properties live in streams.settings.<area>. Pydantic
# orders fields from the last base to the first, so the groups are listed in reverse: the
# fields (and `streams config`) read Kafka first and invoices last, as in the README.
class Settings(
    InvoiceSettings,
    SalesOrderSettings,
    OpsSettings,
    AsnSettings,
    StorefrontOrderSettings,
    CtCommandSettings,
    DfFlowSettings,
    PurchaseOrderSettings,
    DfPollSettings,
    SpapiSettings,
    CtSettings,
    InventoryRuleSettings,
    WorkerSettings,
    TopicSettings,
    KafkaSettings,
    BaseSettings,
):
    model_config = SettingsConfigDict(
        env_prefix="STREAMS_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _secrets_from_files(cls, data: Any) -> Any:
        return secrets_from_files(data)

    @property
    def df_warehouses(self) -> tuple[str, ...]:
        return self.df_ship_from_party_ids or (self.spapi_df_warehouse,)

    # ---------------------------------------------------------------------------------
    def dlq_topic(self, topic: str) -> str:
        return f"{topic}{self.dlq_suffix}"

    def masked(self) -> dict[str, Any]:
        """Effective settings as plain values, secrets replaced by ``****``."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                out[name] = "****" if value.get_secret_value() else ""
            elif value is None:
                out[name] = ""
            elif isinstance(value, Path):
                out[name] = str(value)
            elif isinstance(value, tuple):
                out[name] = ",".join(value)
            elif isinstance(value, dict):  # JSON, as the variable is read
                out[name] = json.dumps(value, default=str)
            else:
                out[name] = value
        return out


def load_settings(**values: Any) -> Settings:
    """``Settings(**values)``, every way of failing turned into one :class:`ConfigError`."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    try:
        return Settings(**values)
    except ValidationError as exc:
        raise ConfigError(config_error(exc)) from None
    except SettingsError as exc:  # a list setting whose value is not JSON
        raise ConfigError(config_error(exc)) from None
