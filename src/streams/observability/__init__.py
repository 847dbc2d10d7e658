"""Metrics and web views."""
