"""An engine whose model can be replaced while it serves: the new engine starts next to the old one, new requests
go to it once it is healthy, and the old one stops after its in-flight answers have finished."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

from assistant.engines.base import ChatMessage, Delta, GenerationParams, LLMEngine

log = logging.getLogger(__name__)


class SwappableEngine:
    def __init__(self, engine: LLMEngine):
        self.current = engine
        self._in_flight: dict[int, int] = {}
        self._names: list[str] = list(engine.model_names())  # every name served so far stays accepted

    @property
    def name(self) -> str:
        return self.current.name

    async def start(self) -> None:
        await self.current.start()

    async def stop(self) -> None:
        await self.current.stop()

    async def health(self) -> bool:
        return await self.current.health()

    def model_names(self) -> list[str]:
        """The current model's name first; every name served so far, and the base name of a version
        ("SmolLM2-135M-Instruct" for "SmolLM2-135M-Instruct@v2"), stay accepted."""
        names = list(self.current.model_names())
        for name in [*names, *self._names]:
            for candidate in (name, name.split("@")[0]):
                if candidate not in names:
                    names.append(candidate)
        return names

    def context_window(self):
        return self.current.context_window()

    async def stream_chat(self, messages: list[ChatMessage], params: GenerationParams) -> AsyncIterator[Delta]:
        engine = self.current
        key = id(engine)
        self._in_flight[key] = self._in_flight.get(key, 0) + 1
        try:
            async for delta in engine.stream_chat(messages, params):
                yield delta
        finally:
            self._in_flight[key] -= 1

    async def swap(self, engine: LLMEngine, drain_timeout_s: float = 300.0) -> None:
        """Start `engine`, send new requests to it, then stop the old one when its answers are done.
        If the new engine fails to start, the old one keeps serving and the error is raised."""
        await engine.start()
        old, self.current = self.current, engine
        self._names += [n for n in engine.model_names() if n not in self._names]
        deadline = time.monotonic() + drain_timeout_s
        while self._in_flight.get(id(old), 0) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self._in_flight.get(id(old), 0):
            log.warning("old engine still had answers in flight after %.0f s; stopping it", drain_timeout_s)
        await old.stop()
        self._in_flight.pop(id(old), None)
