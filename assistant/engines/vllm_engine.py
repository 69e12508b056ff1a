"""The vLLM engine: a managed vLLM process (restarted when it dies) or an external vLLM URL."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path

from assistant.config import VLLMSettings
from assistant.engines.base import ChatMessage, Delta, EngineUnavailableError, GenerationParams
from assistant.engines.context import folder_window
from assistant.engines.openai_http import OpenAIHTTPEngine
from assistant.engines.vllm_process import VLLMProcess

log = logging.getLogger(__name__)


class ManagedVLLMEngine:
    """Owns a `VLLMProcess`; a watchdog brings it back when it dies, up to `max_restarts` times."""

    name = "vllm"

    def __init__(self, model_path: str, served_name: str, settings: VLLMSettings, log_dir: Path):
        self.process = VLLMProcess(model_path, served_name, settings, log_dir)
        self.client = OpenAIHTTPEngine(self.process.base_url, model=served_name, vllm_extensions=True,
                                       stream_interval=settings.stream_interval)
        self._watchdog: asyncio.Task | None = None
        self._ready = asyncio.Event()
        self._stopping = False

    async def start(self) -> None:
        if not self.process.is_running():
            await asyncio.to_thread(self.process.start)
        self._ready.set()
        self._watchdog = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        while not self._stopping:
            await asyncio.sleep(1.0)
            if self._stopping or self.process.is_running():
                continue
            self._ready.clear()
            if self.process.restarts >= self.process.settings.max_restarts:
                log.error("vLLM died and reached max_restarts=%d; see %s",
                          self.process.settings.max_restarts, self.process.log_path)
                return
            self.process.restarts += 1
            log.warning("vLLM process died; restarting (%d/%d)", self.process.restarts,
                        self.process.settings.max_restarts)
            await asyncio.to_thread(self.process.terminate, 2.0)
            try:
                await asyncio.to_thread(self.process.start, False)
                self._ready.set()
                log.warning("vLLM is back after restart %d", self.process.restarts)
            except Exception:
                log.exception("vLLM restart failed")

    async def stop(self) -> None:
        self._stopping = True
        if self._watchdog:
            self._watchdog.cancel()
        await asyncio.to_thread(self.process.terminate)
        await self.client.stop()

    async def health(self) -> bool:
        return self.process.is_running() and await self.client.health()

    def model_names(self) -> list[str]:
        return self.client.model_names()

    def context_window(self):
        return folder_window(self.process.model_path, self.process.settings.max_model_len)

    async def stream_chat(self, messages: list[ChatMessage], params: GenerationParams) -> AsyncIterator[Delta]:
        if not self._ready.is_set():
            try:
                await asyncio.wait_for(self._ready.wait(), timeout=self.process.settings.startup_timeout_s)
            except TimeoutError as exc:
                raise EngineUnavailableError("vLLM is restarting and not ready yet; try again shortly") from exc
        async with aclosing(self.client.stream_chat(messages, params)) as deltas:
            async for delta in deltas:
                yield delta
