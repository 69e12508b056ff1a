"""Keeping a local vLLM engine up (the managed server and the in-process engine alike): a watchdog that brings it
back when it dies, and the wait for it while it comes back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from assistant.engines.base import EngineUnavailableError

log = logging.getLogger(__name__)


class Restarts:
    """Whether the engine takes requests now (`ready`), and the watchdog that restarts it when it dies, up to
    `limit` times. `what` names the engine in the log ("vLLM's engine core"), `log_path` is where its own log is."""

    def __init__(self, what: str, limit: int, wait_s: float, log_path: Path):
        self.what, self.limit, self.wait_s, self.log_path = what, limit, wait_s, log_path
        self.count = 0
        self.ready = asyncio.Event()
        self._watchdog: asyncio.Task | None = None
        self._stopping = False

    def watch(self, dead: Callable[[], bool], restart: Callable[[], Awaitable[None]]) -> None:
        """The engine is ready now; from here on, every second, `dead()` is asked and `restart()` (clear away the
        dead engine, start a new one) called when it says so."""
        self.ready.set()
        self._watchdog = asyncio.create_task(self._watch(dead, restart))

    async def _watch(self, dead: Callable[[], bool], restart: Callable[[], Awaitable[None]]) -> None:
        while not self._stopping:
            await asyncio.sleep(1.0)
            if self._stopping or not dead():
                continue
            self.ready.clear()
            if self.count >= self.limit:
                log.error("%s died and reached max_restarts=%d; see %s", self.what, self.limit, self.log_path)
                return
            self.count += 1
            log.warning("%s died; restarting it (%d/%d)", self.what, self.count, self.limit)
            try:
                await restart()
                self.ready.set()
                log.warning("vLLM is back after restart %d", self.count)
            except Exception:
                log.exception("vLLM restart failed")

    def stop(self) -> None:
        """No more restarts (the engine is being stopped)."""
        self._stopping = True
        if self._watchdog:
            self._watchdog.cancel()

    async def wait(self) -> None:
        """Until the engine is ready; EngineUnavailableError if it is not within `wait_s` (restarting)."""
        if self.ready.is_set():
            return
        try:
            await asyncio.wait_for(self.ready.wait(), timeout=self.wait_s)
        except TimeoutError as exc:
            raise EngineUnavailableError("vLLM is restarting and not ready yet; try again shortly") from exc
