"""Kafka settings: the cluster, its security, the local broker, and the topic names."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, Field, SecretStr, model_validator

from streams.settings.support import env_name

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class KafkaSettings(BaseModel):
    # --- Kafka -----------------------------------------------------------------------
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers")
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    # 3: what managed Kafka requires (Confluent Cloud refuses fewer); a single local broker
    # (streams kafka up, scripts/, the tests) sets 1
    kafka_replication_factor: int = Field(3, ge=1)
    # Partitions of every SKU- or PO-keyed topic; co-partitioning needs them equal.
    partitions: int = Field(6, ge=1, le=1024)
    # ct.messages: commercetools' Kafka destination writes one fixed key, so one
    # partition is all it will ever fill; more only helps other producers.
    ct_messages_partitions: int = Field(1, ge=1, le=1024)

    # local broker (`streams kafka up`)
    kafka_local_port: int = 9092
    kafka_local_controller_port: int = 9093
    kafka_local_dir: Path = Path(".run/kafka")
    kafka_local_heap: str = "768m"

    @model_validator(mode="after")
    def _kafka_security(self) -> Self:
        """TLS files that exist and SASL credentials, before any client tries to use them."""
        if self.kafka_security_protocol in ("SSL", "SASL_SSL"):
            for name in ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile"):
                path = getattr(self, name)
                if path is not None and not Path(path).is_file():
                    raise ValueError(f"{env_name(name)}={path}: no such file")
            if self.kafka_ssl_keyfile and not self.kafka_ssl_certfile:
                raise ValueError(
                    "STREAMS_KAFKA_SSL_KEYFILE is set without STREAMS_KAFKA_SSL_CERTFILE"
                )
        if self.kafka_security_protocol.startswith("SASL"):
            for name in ("kafka_sasl_username", "kafka_sasl_password"):
                if not getattr(self, name):
                    raise ValueError(
                        f"{env_name(name)} is not set but STREAMS_KAFKA_SECURITY_PROTOCOL="
                        f"{self.kafka_security_protocol} needs it"
                    )
        return self


class TopicSettings(BaseModel):
    # --- topics (defaults are the public contract, see README) ------------------------
    topic_ct_messages: str = "ct.messages"
    topic_purchase_orders: str = "amazon.purchase-orders"
    topic_dispatches: str = "wms.dispatches"
    topic_sku_mappings: str = "master.sku-mappings"
    topic_inventory_updates: str = "amazon.inventory-updates"
    topic_po_acknowledgements: str = "amazon.po-acknowledgements"
    topic_shipment_confirmations: str = "amazon.shipment-confirmations"
    topic_inventory_commands: str = "ct.inventory-commands"
    topic_exceptions: str = "ops.exceptions"
    dlq_suffix: str = ".dlq"
