"""The one interface every LLM engine offers: stream a chat answer, list models, report health."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


class EngineError(RuntimeError):
    """Generation failed inside the engine (the message says why)."""


class EngineUnavailableError(EngineError):
    """The engine cannot take requests now (starting, restarting or stopped)."""


@dataclass(frozen=True)
class ChatMessage:
    role: str
    content: str


@dataclass(frozen=True)
class GenerationParams:
    """How one answer is sampled; the deployment's defaults are its `generation:` settings (`from_settings`)."""

    max_new_tokens: int
    temperature: float
    top_p: float
    repetition_penalty: float
    stop: list[str] = field(default_factory=list)
    # the answer must be JSON valid under this schema: decoding is constrained (vLLM structured outputs; xgrammar in
    # the transformers engine), so even a small model writes a valid action call
    json_schema: dict | None = None

    @classmethod
    def from_settings(cls, generation) -> GenerationParams:
        """The defaults of `generation` (assistant's `GenerationSettings`)."""
        return cls(max_new_tokens=generation.max_new_tokens, temperature=generation.temperature,
                   top_p=generation.top_p, repetition_penalty=generation.repetition_penalty)


@dataclass(frozen=True)
class Delta:
    """A piece of an answer; the last one carries `finish_reason` and token counts."""

    text: str = ""
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


TEMPLATE_TOKENS_PER_MESSAGE = 8  # role markers and separators a chat template adds around each message


@dataclass(frozen=True)
class ContextWindow:
    """What a model can read. `tokens`: its whole context (prompt and answer); `count_text`: tokens of a text;
    `count_messages`: tokens of a rendered prompt (None: the sum of its texts plus a per-message allowance)."""

    tokens: int
    count_text: Callable[[str], int]
    count_messages: Callable[[Sequence[ChatMessage]], int] | None = None

    def count(self, messages: Sequence[ChatMessage]) -> int:
        if self.count_messages is not None and messages:
            return self.count_messages(messages)
        return sum(self.count_text(m.content) + TEMPLATE_TOKENS_PER_MESSAGE for m in messages) + 4


@runtime_checkable
class LLMEngine(Protocol):
    """A chat model behind one small interface."""

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def health(self) -> bool: ...

    def model_names(self) -> list[str]: ...

    def context_window(self) -> ContextWindow:
        """The served model's context length and token counter (prompts are fitted into it)."""
        ...

    def stream_chat(self, messages: list[ChatMessage], params: GenerationParams) -> AsyncIterator[Delta]: ...
