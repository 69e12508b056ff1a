"""The one chat serving layer: every answer goes through it (OpenAI-compatible API, conversation API, chat page,
widget, and the LangChain chain that calls our API).

    prepare  validate the turns, neutralise control tokens, ground the question, build the prompt with the one
             prompt builder, fitted into the served model's context window
    stream   engine -> instruction-leak guard -> citations -> typed events

What to store is the caller's business: `ConversationService` stores both sides of a conversation, `/v1` stores
nothing. Events are typed so the next features have their place: tool calls and their results, recommendation
cards, a per-request model.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from assistant.config import Settings
from assistant.engines.base import ChatMessage, Delta, EngineError, GenerationParams, LLMEngine
from assistant.errors import AssistantError
from assistant.grounding import Grounder, Grounding, Source
from assistant.guard import InstructionLeak, refusal, without_instructions
from assistant.prompt import (
    CJK,
    GROUNDING_RULES,
    PromptRoom,
    citation_footer,
    dont_know_answer,
    fit_prompt,
    last_question,
)


class InvalidMessageError(AssistantError, ValueError):
    """A message cannot be accepted (empty, too long)."""

    def __init__(self, message: str, status_code: int = 400):
        super().__init__(message)
        self.status_code = status_code


def validate_text(text: str, max_chars: int, field: str = "content") -> str:
    if not isinstance(text, str) or not text.strip():
        raise InvalidMessageError(f"'{field}' is empty: send the customer's question as text")
    if len(text) > max_chars:
        raise InvalidMessageError(
            f"'{field}' has {len(text)} characters; the limit is {max_chars} (setting max_message_chars)", 413,
        )
    return text


EventType = Literal["sources", "delta", "replace", "done", "error"]


@dataclass(frozen=True)
class ChatEvent:
    """One step of an answer: `sources` (what it is grounded in), `delta` (text), `replace` (the text so far is
    replaced: the answer began to quote the instructions), `done` (finish reason, token counts) or `error` (the
    engine failed; `exception` is what it raised)."""

    type: EventType
    data: dict[str, Any]
    exception: EngineError | None = None


@dataclass(frozen=True)
class PreparedChat:
    """Everything decided before generation starts."""

    messages: list[ChatMessage]
    params: GenerationParams
    question: str
    sources: list[Source] = field(default_factory=list)
    grounded: bool = False  # retrieval ran: the answer starts with a `sources` event
    canned: str | None = None  # answered without the model, for `canned_reason`
    canned_reason: str | None = None
    instructions: tuple[str, ...] = ()  # what the answer must never recite
    dropped_turns: int = 0  # history turns left out to fit the context

    @property
    def source_dicts(self) -> list[dict]:
        return [s.as_dict() for s in self.sources]


async def with_citations(deltas: AsyncIterator[Delta], sources: Sequence[Source]) -> AsyncIterator[Delta]:
    """Pass the answer through; if it ends without citing any source, add the numbered source list first."""
    parts: list[str] = []
    async with aclosing(deltas):
        async for delta in deltas:
            if delta.finish_reason and sources:
                footer = citation_footer("".join(parts), sources)
                if footer:
                    yield Delta(text=footer)
            parts.append(delta.text)
            yield delta


class ChatServing:
    """Prepares and streams answers for one deployment (settings, engine, knowledge base)."""

    def __init__(self, settings: Settings, engine: LLMEngine, grounder: Grounder | None = None):
        self.settings = settings
        self.engine = engine
        self.grounder = grounder

    @property
    def model_name(self) -> str:
        names = self.engine.model_names()
        return names[0] if names else "unknown"

    def default_params(self) -> GenerationParams:
        return GenerationParams.from_settings(self.settings.generation)

    async def ground(self, question: str) -> Grounding | None:
        """Passages for the question (None when retrieval is off); CPU work runs off the event loop."""
        if self.grounder is None:
            return None
        return await asyncio.to_thread(self.grounder.ground, question)

    async def prepare(self, turns: Sequence[ChatMessage], system_prompt: str | None = None,
                      params: GenerationParams | None = None, grounding: bool = True) -> PreparedChat:
        """The prompt for `turns` (oldest first, ending with the customer's message; untrusted text already
        neutralised), grounded unless `grounding` is off or retrieval is, fitted into the model's context."""
        system_prompt = self.settings.rendered_system_prompt() if system_prompt is None else system_prompt
        params = params or self.default_params()
        question = last_question(turns)
        sources: list[Source] = []
        grounded = grounding and self.grounder is not None
        if grounded:
            found = await self.ground(question)
            if not found.relevant:
                return PreparedChat([], params, question, grounded=True,
                                    canned=dont_know_answer(question, self.settings.company_name),
                                    canned_reason="no_relevant_source")
            sources = found.sources
        room = PromptRoom(self.engine.context_window(), params.max_new_tokens)
        fitted = await asyncio.to_thread(fit_prompt, system_prompt, turns, sources, room)
        own_system = [t.content for t in turns[:1] if t.role == "system"]
        instructions = (system_prompt, *own_system, *([GROUNDING_RULES] if fitted.sources else []))
        return PreparedChat(fitted.messages, replace(params, max_new_tokens=fitted.answer_tokens), question,
                            fitted.sources, grounded, instructions=instructions, dropped_turns=fitted.dropped_turns)

    async def stream(self, prepared: PreparedChat) -> AsyncIterator[ChatEvent]:
        """The answer as events: `sources` first when grounded, then `delta`s, then `done` (or `replace` + `done`
        when it began to quote the instructions, or `error` when the engine failed)."""
        if prepared.grounded:
            yield ChatEvent("sources", {"sources": prepared.source_dicts})
        if prepared.canned is not None:
            yield ChatEvent("delta", {"text": prepared.canned})
            yield ChatEvent("done", {"finish_reason": "stop", "reason": prepared.canned_reason,
                                     "prompt_tokens": 0, "completion_tokens": 0})
            return
        answer = without_instructions(self.engine.stream_chat(prepared.messages, prepared.params),
                                      prepared.instructions)
        try:
            async with aclosing(with_citations(answer, prepared.sources)) as deltas:
                async for delta in deltas:
                    if delta.text:
                        yield ChatEvent("delta", {"text": delta.text})
                    if delta.finish_reason:
                        yield ChatEvent("done", {"finish_reason": delta.finish_reason,
                                                 "prompt_tokens": delta.prompt_tokens,
                                                 "completion_tokens": delta.completion_tokens})
        except InstructionLeak:  # nothing of the instructions was shown; the answer becomes a refusal
            yield ChatEvent("replace", {"text": refusal(bool(CJK.search(prepared.question))),
                                        "reason": "instructions"})
            yield ChatEvent("done", {"finish_reason": "stop", "reason": "instructions"})
        except EngineError as exc:
            yield ChatEvent("error", {"message": str(exc)}, exc)
