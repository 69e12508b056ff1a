"""An engine for API and UI tests that are not about the model: it starts and stops at once and answers every
prompt with the same few words about the last message, streamed word by word with token counts.

Everything around generation is the real engine's: the served name is the model folder's, and the context window
is the one the transformers engine reports for that folder (its tokenizer and chat template, its length), so
prompts are fitted exactly as on the real engine. Tests about the engine or the model (generation, swapping,
align/eval, engine failures, model names in responses) keep the real tiny model (`make_client(real_engine=True)`).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

from assistant.engines.base import ChatMessage, ContextWindow, Delta, EngineUnavailableError, GenerationParams


def fake_answer(messages: list[ChatMessage]) -> str:
    """What the fake model says: the same for the same last message."""
    last = messages[-1].content.strip() if messages else ""
    return f"Thank you for your message about {' '.join(last.split()[:6])}. We will help you with that."


class FakeEngine:
    """`LLMEngine` without a model: a word is a token; `max_new_tokens` and stop strings are honoured."""

    name = "fake"

    def __init__(self, served_name: str, window: ContextWindow):
        self.served_name = served_name
        self.window = window
        self.running = False
        self.prompts: list[list[ChatMessage]] = []  # every prompt it was sent

    @classmethod
    def build(cls, settings, model) -> FakeEngine:
        """In place of `assistant.engines.build_engine`: the model's name, and its window on the transformers
        engine with these settings (`build_service(..., make_engine=FakeEngine.build)`)."""
        from assistant.engines import served_window

        return cls(model.name, served_window(settings.model_copy(update={"engine": "transformers"}), model))

    async def start(self) -> None:
        self.running = True

    async def stop(self) -> None:
        self.running = False

    async def health(self) -> bool:
        return self.running

    def model_names(self) -> list[str]:
        return [self.served_name]

    def context_window(self) -> ContextWindow:
        if not self.running:
            raise EngineUnavailableError("the fake engine is not running")
        return self.window

    async def stream_chat(self, messages: list[ChatMessage], params: GenerationParams) -> AsyncIterator[Delta]:
        if not self.running:
            raise EngineUnavailableError("the fake engine is not running")
        self.prompts.append(list(messages))
        words = fake_answer(messages).split()
        text = " ".join(words[:params.max_new_tokens])
        stops = [text.find(s) for s in params.stop if s and s in text]
        if stops:
            text = text[:min(stops)]
        pieces = re.findall(r"\s*\S+", text)  # a word (with the space before it) is a token
        for piece in pieces:
            yield Delta(text=piece)
            await asyncio.sleep(0)  # a stream, not one piece: other requests run in between
        reason = "stop" if stops or len(words) <= params.max_new_tokens else "length"
        yield Delta(finish_reason=reason, prompt_tokens=self.window.count(messages), completion_tokens=len(pieces))
