"""Adapters to the outside systems: Kafka admin, commercetools, SP-API, codecs."""
