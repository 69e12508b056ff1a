"""The one interface every LLM engine offers: stream a chat answer, list models, report health."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from assistant.engines.context import ContextWindow


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
    max_new_tokens: int = 256
    temperature: float = 0.3
    top_p: float = 0.9
    stop: list[str] = field(default_factory=list)
    repetition_penalty: float = 1.0


@dataclass(frozen=True)
class Delta:
    """A piece of an answer; the last one carries `finish_reason` and token counts."""

    text: str = ""
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


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
