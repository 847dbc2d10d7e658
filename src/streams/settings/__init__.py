"""The groups of settings that ``streams.config.Settings`` is composed of, one module per
area (Kafka and topics, the worker, commercetools, Amazon, invoices), plus the helpers they
share. Import ``Settings`` and the helpers from ``streams.config``."""
