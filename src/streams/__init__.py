"""Amazon Vendor Central <-> commercetools stream processor."""

__version__ = "0.1.0"
