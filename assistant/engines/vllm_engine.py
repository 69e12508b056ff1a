"""The vLLM engine: a managed vLLM process (restarted when it dies) or an external vLLM URL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path

from assistant.config import VLLMSettings
from assistant.engines.base import ChatMessage, Delta, GenerationParams
from assistant.engines.context import folder_window
from assistant.engines.openai_http import OpenAIHTTPEngine
from assistant.engines.restarts import Restarts
from assistant.engines.vllm_process import VLLMProcess


class ManagedVLLMEngine:
    """Owns a `VLLMProcess`; a watchdog brings it back when it dies, up to `max_restarts` times."""

    name = "vllm"

    def __init__(self, model_path: str, served_name: str, settings: VLLMSettings, log_dir: Path):
        self.process = VLLMProcess(model_path, served_name, settings, log_dir)
        self.client = OpenAIHTTPEngine(self.process.base_url, model=served_name, vllm_extensions=True,
                                       stream_interval=settings.stream_interval)
        self.restarts = Restarts("the vLLM process", settings.max_restarts, settings.startup_timeout_s,
                                 self.process.log_path)

    async def start(self) -> None:
        if not self.process.is_running():
            await asyncio.to_thread(self.process.start)
        self.restarts.watch(lambda: not self.process.is_running(), self._restart)

    async def _restart(self) -> None:
        await asyncio.to_thread(self.process.terminate, 2.0)
        await asyncio.to_thread(self.process.start, False)

    async def stop(self) -> None:
        self.restarts.stop()
        await asyncio.to_thread(self.process.terminate)
        await self.client.stop()

    async def health(self) -> bool:
        return self.process.is_running() and await self.client.health()

    def model_names(self) -> list[str]:
        return self.client.model_names()

    def context_window(self):
        return folder_window(self.process.model_path, self.process.settings.max_model_len)

    async def stream_chat(self, messages: list[ChatMessage], params: GenerationParams) -> AsyncIterator[Delta]:
        await self.restarts.wait()
        async with aclosing(self.client.stream_chat(messages, params)) as deltas:
            async for delta in deltas:
                yield delta
