"""Faust's table manager, starting without its one-second wait.

``faust.tables.TableManager.on_start`` sleeps a second before it registers the tables'
changelog channels, so that tables declared after the app starts are still included. Every
table of this product is declared by ``create_app``, before the worker starts: that second
was paid at every start for nothing (the consumer subscribes only after it).
"""

from __future__ import annotations

from faust.tables import TableManager


class PromptTableManager(TableManager):
    async def on_start(self) -> None:
        # Faust's on_start without its first line, ``await self.sleep(1.0)``
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()
