"""An engine that talks to any OpenAI-compatible server (vLLM's, or an external one) over HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx

from assistant.engines.base import ChatMessage, Delta, EngineError, EngineUnavailableError, GenerationParams


class OpenAIHTTPEngine:
    """Streams chat completions from `base_url` (ending in /v1)."""

    name = "openai-http"

    def __init__(self, base_url: str, model: str | None = None, api_key: str | None = None, timeout_s: float = 600):
        self.base_url = base_url.rstrip("/")
        self._model = model
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
        self._client = httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(timeout_s, connect=5), limits=limits)

    async def start(self) -> None:
        if self._model is None:
            try:
                response = await self._client.get(f"{self.base_url}/models")
                response.raise_for_status()
                self._model = response.json()["data"][0]["id"]
            except (httpx.HTTPError, KeyError, IndexError, ValueError) as exc:
                raise EngineUnavailableError(f"no model list from {self.base_url}/models: {exc}") from exc

    async def stop(self) -> None:
        await self._client.aclose()

    async def health(self) -> bool:
        try:
            response = await self._client.get(f"{self.base_url}/models", timeout=5)
            return response.status_code == 200
        except httpx.HTTPError:
            return False

    def model_names(self) -> list[str]:
        return [self._model] if self._model else []

    async def stream_chat(self, messages: list[ChatMessage], params: GenerationParams) -> AsyncIterator[Delta]:
        body = {
            "model": self._model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if params.stop:
            body["stop"] = params.stop
        finish_reason = None
        try:
            async with self._client.stream("POST", f"{self.base_url}/chat/completions", json=body) as response:
                if response.status_code != 200:
                    detail = (await response.aread()).decode(errors="replace")[:500]
                    raise EngineError(f"LLM server answered {response.status_code}: {detail}")
                async for line in response.aiter_lines():
                    if not line.startswith("data: "):
                        continue
                    payload = line[6:]
                    if payload == "[DONE]":
                        break
                    chunk = json.loads(payload)
                    if chunk.get("choices"):
                        choice = chunk["choices"][0]
                        finish_reason = choice.get("finish_reason") or finish_reason
                        text = (choice.get("delta") or {}).get("content") or ""
                        if text:
                            yield Delta(text=text)
                    usage = chunk.get("usage")
                    if usage:
                        yield Delta(
                            finish_reason=finish_reason or "stop",
                            prompt_tokens=usage.get("prompt_tokens"),
                            completion_tokens=usage.get("completion_tokens"),
                        )
                        return
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError) as exc:
            raise EngineUnavailableError(f"lost the LLM server at {self.base_url}: {exc!r}") from exc
        if finish_reason is None:
            raise EngineUnavailableError(f"the LLM server at {self.base_url} ended the stream before the answer ended")
        yield Delta(finish_reason=finish_reason)
