"""The set-up of an end-to-end test: one worker with short intervals, the SP-API sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streams.config import Settings
from streams.sandbox.amazon import SandboxConfig
from tests.support.kafka import unique_settings
from tests.support.services import free_port


def e2e_settings(bootstrap: str, tmp: Path, **overrides: Any) -> Settings:
    """This test's own topics and group, free web and sandbox ports, a short debounce (0.3 s,
    at most 2 s, ticks of 0.1 s), POs polled every second, transactions every 0.5 s
    (``overrides`` replace any of these). SP-API stays where it was: :func:`at_sandbox`."""
    fields: dict[str, Any] = {
        "web_port": free_port(),
        "debounce_window_s": 0.3,
        "debounce_max_wait_s": 2.0,
        "debounce_tick_s": 0.1,
        "po_poll_interval_s": 1.0,
        "tx_poll_interval_s": 0.5,
        "sandbox_port": free_port(),
    }
    fields.update(overrides)
    return unique_settings(bootstrap, tmp, **fields)


def at_sandbox(s: Settings) -> Settings:
    """``s`` with SP-API (and its LWA token endpoint) at the sandbox of ``s.sandbox_port``."""
    base = f"http://127.0.0.1:{s.sandbox_port}"
    return s.model_copy(update={"spapi_endpoint": base, "spapi_lwa_url": f"{base}/auth/o2/token"})


def e2e_sandbox(s: Settings, **overrides: Any) -> SandboxConfig:
    """A sandbox for ``s`` without orders of its own or Amazon's examples (the test brings
    its POs), whose transactions settle after 0.5 s."""
    fields: dict[str, Any] = {
        "order_count": 0,
        "include_amazon_examples": False,
        "transaction_processing_s": 0.5,
    }
    fields.update(overrides)
    return SandboxConfig.from_settings(s, **fields)


def amounts(records: list[Any]) -> dict[str, list[int]]:
    """SKU -> every amount published to amazon.inventory-updates, in order."""
    out: dict[str, list[int]] = {}
    for r in records:
        v = r.json()
        out.setdefault(v["sku"], []).append(v["availableQuantity"]["amount"])
    return out
