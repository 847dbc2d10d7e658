"""Outside-system clients made on first use (a worker that never sends makes none)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class LazyClient:
    """``client()`` returns the same client every time, made on the first call by ``factory``
    (the app's shared SP-API client, or a test's fake) or else by ``default``."""

    def __init__(self, factory: Callable[[], Any] | None, default: Callable[[], Any]) -> None:
        self._make = factory if factory is not None else default
        self._client: Any = None

    def __call__(self) -> Any:
        if self._client is None:
            self._client = self._make()
        return self._client


def spapi_client(settings: Any, **kwargs: Any) -> Callable[[], Any]:
    """A maker of this flow's own SP-API client (imported only when one is made)."""

    def make() -> Any:
        from streams.adapters.spapi import SpApiClient

        return SpApiClient(settings, **kwargs)

    return make
