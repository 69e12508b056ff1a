"""An engine that talks to any OpenAI-compatible server (vLLM's, or an external one) over HTTP.

aiohttp rather than httpx here: this client sits on the hot path of every streamed token, and aiohttp's
line reader costs markedly less CPU per chunk (the API shares the CPU with vLLM on small machines).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import orjson

from assistant.engines.base import (
    ChatMessage,
    ContextWindow,
    Delta,
    EngineError,
    EngineUnavailableError,
    GenerationParams,
)
from assistant.engines.constraints import json_schema_grammar
from assistant.engines.context import estimated_window, folder_window

IDLE_CONNECTION_S = 30  # an idle connection is closed after this; a managed vLLM keeps its side longer (75 s)
UNKNOWN_CONTEXT_TOKENS = 4096  # assumed when the server does not say (vLLM does: `max_model_len` in /v1/models)


class OpenAIHTTPEngine:
    """Streams chat completions from `base_url` (ending in /v1)."""

    name = "openai-http"

    def __init__(self, base_url: str, model: str | None = None, api_key: str | None = None, timeout_s: float = 600,
                 vllm_extensions: bool = False, tokenizer: str | None = None, stream_interval: int = 1):
        self.base_url = base_url.rstrip("/")
        self.tokenizer = tokenizer  # a local folder with the served model's tokenizer: exact prompt counts
        self.vllm_extensions = vllm_extensions  # send vLLM's extra fields (repetition_penalty, stream_interval)
        self.stream_interval = stream_interval  # tokens per streamed piece after the first (vLLM only)
        self._model = model
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, connect=5)
        self._session: aiohttp.ClientSession | None = None
        self._window = estimated_window(UNKNOWN_CONTEXT_TOKENS)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=512, keepalive_timeout=IDLE_CONNECTION_S)
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout, connector=connector)
        return self._session

    async def start(self) -> None:
        """Learn the model's name (unless given) and context length from the server's model list."""
        try:
            async with self._client().get(f"{self.base_url}/models") as response:
                response.raise_for_status()
                listed = (await response.json())["data"]
            card = next((m for m in listed if m.get("id") == self._model), None) if self._model else listed[0]
        except (aiohttp.ClientError, TimeoutError, KeyError, IndexError, ValueError, TypeError) as exc:
            if self._model is not None:  # a named model on a server still starting: keep the assumed window
                return
            await self.stop()
            raise EngineUnavailableError(f"no model list from {self.base_url}/models: {exc!r}") from exc
        if card is not None:
            self._model = self._model or card["id"]
            if isinstance(card.get("max_model_len"), int):
                tokens = card["max_model_len"]
                self._window = folder_window(self.tokenizer, tokens) if self.tokenizer else estimated_window(tokens)

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def health(self) -> bool:
        try:
            async with self._client().get(f"{self.base_url}/models", timeout=aiohttp.ClientTimeout(total=5)) as r:
                return r.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    def model_names(self) -> list[str]:
        return [self._model] if self._model else []

    def context_window(self) -> ContextWindow:
        return self._window

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
        if params.json_schema is not None and self.vllm_extensions:  # vLLM: the very grammar the other engine uses
            body["structured_outputs"] = {"grammar": json_schema_grammar(params.json_schema)}
        elif params.json_schema is not None:
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "answer", "schema": params.json_schema, "strict": True}}
        if self.vllm_extensions and self.stream_interval > 1:
            body["stream_interval"] = self.stream_interval
        if self.vllm_extensions and params.repetition_penalty != 1.0:
            body["repetition_penalty"] = params.repetition_penalty
        finish_reason, usage = None, None
        try:
            async with self._client().post(f"{self.base_url}/chat/completions", data=orjson.dumps(body),
                                           headers={"Content-Type": "application/json"}) as response:
                if response.status != 200:
                    detail = (await response.text(errors="replace"))[:500]
                    raise EngineError(f"LLM server answered {response.status}: {detail}")
                # read to the end (past the usage and [DONE]): a response left unread closes its connection, and
                # a new connection for every answer costs both servers more than the answer's first token does
                async for events in _sse_data(response.content):
                    for data in events:
                        chunk = orjson.loads(data)
                        choices = chunk.get("choices")
                        if choices:
                            choice = choices[0]
                            finish_reason = choice.get("finish_reason") or finish_reason
                            text = (choice.get("delta") or {}).get("content")
                            if text:
                                yield Delta(text=text)
                        usage = chunk.get("usage") or usage
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise EngineUnavailableError(f"lost the LLM server at {self.base_url}: {exc!r}") from exc
        if finish_reason is None:
            raise EngineUnavailableError(f"the LLM server at {self.base_url} ended the stream before the answer ended")
        usage = usage or {}
        yield Delta(finish_reason=finish_reason, prompt_tokens=usage.get("prompt_tokens"),
                    completion_tokens=usage.get("completion_tokens"))


async def _sse_data(stream: aiohttp.StreamReader) -> AsyncIterator[list[bytes]]:
    """The `data:` payloads of a server-sent-event stream (but `[DONE]`), a list per read from the socket: one
    await per read, not two per event (line by line, the reading cost our API more than the rest of an answer)."""
    rest = b""
    async for received in stream.iter_any():
        *lines, rest = (rest + received).split(b"\n")
        yield [line[6:] for line in lines if line.startswith(b"data: ") and not line.startswith(b"data: [DONE]")]
