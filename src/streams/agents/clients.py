"""Outside-system clients made on first use (a worker that never sends makes none)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar


class Closable(Protocol):
    async def close(self) -> None: ...


T = TypeVar("T", bound=Closable)


class LazyClient(Generic[T]):
    """``client()`` returns the same client every time, made on the first call by ``factory``
    (the app's shared SP-API client, or a test's fake) or else by ``default``: lazily, because
    an aiohttp session wants the running event loop. :meth:`close` closes it at shutdown."""

    def __init__(self, factory: Callable[[], T] | None, default: Callable[[], T]) -> None:
        self._make = factory if factory is not None else default
        self._client: T | None = None

    def __call__(self) -> T:
        if self._client is None:
            self._client = self._make()
        return self._client

    async def close(self) -> None:
        """Close the client if one was made; the next call makes a new one."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()


def spapi_client(settings: Any, **kwargs: Any) -> Callable[[], Any]:
    """A maker of this flow's own SP-API client (imported only when one is made)."""

    def make() -> Any:
        from streams.adapters.spapi import SpApiClient

        return SpApiClient(settings, **kwargs)

    return make
