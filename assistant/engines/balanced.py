"""Several OpenAI-compatible servers (vLLM replicas, say) behind one engine: each answer goes to the healthy upstream
with the fewest answers in flight from this replica; an upstream that fails is taken out, checked every few seconds,
and put back once its model list answers again. An answer that fails before its first word is retried on another
upstream; one that fails mid-way is reported (its words so far were already sent)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from assistant.engines.base import ChatMessage, ContextWindow, Delta, EngineUnavailableError, GenerationParams
from assistant.engines.openai_http import OpenAIHTTPEngine

log = logging.getLogger(__name__)


@dataclass(eq=False)  # compared and hashed by identity: one server, one record
class Upstream:
    engine: OpenAIHTTPEngine
    healthy: bool = False
    in_flight: int = 0

    @property
    def url(self) -> str:
        return self.engine.base_url


class BalancedEngine:
    """`upstreams`: engines of the same model on different servers."""

    name = "openai-http"

    def __init__(self, upstreams: list[OpenAIHTTPEngine], recheck_s: float = 2.0):
        if not upstreams:
            raise ValueError("no upstream LLM server")
        self.upstreams = [Upstream(engine) for engine in upstreams]
        self.recheck_s = recheck_s
        self._turn = 0  # ties in load go round the upstreams
        self._recheck: asyncio.Task | None = None

    async def start(self) -> None:
        """Start on the upstreams that answer; refused (naming each) only when none does."""
        failures = []
        for upstream in self.upstreams:
            try:
                await upstream.engine.start()
                upstream.healthy = True
            except EngineUnavailableError as exc:
                failures.append(f"{upstream.url}: {exc}")
        if not any(u.healthy for u in self.upstreams):
            raise EngineUnavailableError("no LLM server answers: " + "; ".join(failures))
        for failure in failures:
            log.warning("LLM server left out until it answers: %s", failure)
        self._recheck = asyncio.create_task(self._recheck_forever())

    async def stop(self) -> None:
        if self._recheck is not None:
            self._recheck.cancel()
        for upstream in self.upstreams:
            await upstream.engine.stop()

    async def _recheck_forever(self) -> None:
        while True:
            await asyncio.sleep(self.recheck_s)
            for upstream in self.upstreams:
                if upstream.healthy:
                    continue
                if not await upstream.engine.health():
                    continue
                try:
                    await upstream.engine.start()  # learns the model's name and window if it never had them
                except EngineUnavailableError:
                    continue
                upstream.healthy = True
                log.warning("LLM server %s answers again: back in rotation", upstream.url)

    def _take_out(self, upstream: Upstream, why: Exception) -> None:
        if upstream.healthy:
            upstream.healthy = False
            log.warning("LLM server %s taken out of rotation: %s", upstream.url, why)

    async def health(self) -> bool:
        return any(u.healthy for u in self.upstreams)

    def _first_healthy(self) -> Upstream:
        return next((u for u in self.upstreams if u.healthy), self.upstreams[0])

    def model_names(self) -> list[str]:
        return self._first_healthy().engine.model_names()

    def context_window(self) -> ContextWindow:
        return self._first_healthy().engine.context_window()

    def pick(self, tried: set[Upstream]) -> Upstream | None:
        """The healthy upstream with the fewest answers in flight, not yet tried for this answer (ties in turn)."""
        self._turn = (self._turn + 1) % len(self.upstreams)
        order = self.upstreams[self._turn:] + self.upstreams[:self._turn]
        candidates = [u for u in order if u.healthy and u not in tried]
        return min(candidates, key=lambda u: u.in_flight, default=None)

    async def stream_chat(self, messages: list[ChatMessage], params: GenerationParams) -> AsyncIterator[Delta]:
        tried: set[Upstream] = set()
        last_error: Exception | None = None
        while (upstream := self.pick(tried)) is not None:
            tried.add(upstream)
            upstream.in_flight += 1
            started = False
            try:
                async for delta in upstream.engine.stream_chat(messages, params):
                    started = True
                    yield delta
                return
            except EngineUnavailableError as exc:
                self._take_out(upstream, exc)
                if started:
                    raise
                last_error = exc
            finally:
                upstream.in_flight -= 1
        raise EngineUnavailableError("no LLM server can take the answer now"
                                     + (f" (last: {last_error})" if last_error else ""))
