"""The conversation engine: store the customer's message, answer it from the model, store the answer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from assistant.config import Settings
from assistant.engines.base import Delta, EngineError, GenerationParams, LLMEngine
from assistant.grounding import Grounder, Grounding
from assistant.guard import InstructionLeak, refusal, without_instructions
from assistant.prompt import CJK, build_chat_messages, citation_footer, dont_know_answer
from assistant.store import Store
from assistant.store.repository import writer_id


class InvalidMessageError(ValueError):
    """The customer's message cannot be accepted (empty, too long)."""

    def __init__(self, message: str, status_code: int = 400):
        super().__init__(message)
        self.status_code = status_code


class ConversationClosedError(ValueError):
    pass


@dataclass
class AnswerEvent:
    """One step of an answer: `accepted` (customer message stored), `sources`, `delta`, `replace` (the text so far is
    replaced: the answer began to quote the instructions), `done` or `error`."""

    type: str
    data: dict[str, Any]


async def with_citations(deltas: AsyncIterator[Delta], sources) -> AsyncIterator[Delta]:
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


async def canned_answer(text: str) -> AsyncIterator[Delta]:
    """A fixed answer shaped like a model's stream (the "don't know" reply)."""
    yield Delta(text=text)
    yield Delta(finish_reason="stop", prompt_tokens=0, completion_tokens=0)


def asks_for_human(text: str, phrases: list[str]) -> bool:
    lowered = text.lower()
    return any(phrase.lower() in lowered for phrase in phrases if phrase.strip())


def waiting_for_human_answer(company: str, chinese: bool = False) -> str:
    if chinese:
        return f"我已请{company}团队的同事加入对话，他们会在这里回复您。在此期间您可以继续留言。"
    return (f"I've asked a colleague from the {company} team to join this conversation; they will reply here. "
            "You can keep writing in the meantime.")


async def replay(message_id: int, answer: dict | None) -> AsyncIterator[AnswerEvent]:
    """The events of a message already answered (or being answered), for a client that sent it again."""
    yield AnswerEvent("accepted", {"message_id": message_id, "answer_id": answer and answer["id"], "duplicate": True})
    if answer is not None and answer["content"]:
        yield AnswerEvent("delta", {"text": answer["content"]})
    status = answer["status"] if answer is not None else "no_answer"
    yield AnswerEvent("done", {"message_id": answer and answer["id"], "status": status, "duplicate": True})


def validate_text(text: str, max_chars: int, field: str = "content") -> str:
    if not isinstance(text, str) or not text.strip():
        raise InvalidMessageError(f"'{field}' is empty: send the customer's question as text")
    if len(text) > max_chars:
        raise InvalidMessageError(
            f"'{field}' has {len(text)} characters; the limit is {max_chars} (setting max_message_chars)", 413,
        )
    return text


class ConversationService:
    """Ties settings, store and engine together for one deployment."""

    def __init__(self, settings: Settings, store: Store, engine: LLMEngine, grounder: Grounder | None = None):
        self.settings = settings
        self.store = store
        self.engine = engine
        self.grounder = grounder

    async def ground(self, question: str) -> Grounding | None:
        """Passages for the question (None when retrieval is off); CPU work runs off the event loop."""
        if self.grounder is None:
            return None
        return await asyncio.to_thread(self.grounder.ground, question)

    @property
    def model_name(self) -> str:
        names = self.engine.model_names()
        return names[0] if names else "unknown"

    def default_params(self) -> GenerationParams:
        g = self.settings.generation
        return GenerationParams(max_new_tokens=g.max_new_tokens, temperature=g.temperature, top_p=g.top_p,
                                repetition_penalty=g.repetition_penalty)

    async def create_conversation(self, customer_id: str | None = None, channel: str = "api",
                                  metadata: dict | None = None) -> dict[str, Any]:
        return await asyncio.to_thread(self.store.create_conversation, customer_id, channel, metadata)

    async def answer(self, conversation_id: str, text: str,
                     client_message_id: str | None = None) -> AsyncIterator[AnswerEvent]:
        """Commit the customer message, then stream the answer; the answer is committed when it ends.

        A stream that breaks (engine failure, client gone) leaves the partial answer stored as `partial`. A message
        sent again with the same `client_message_id` (a retry, a double submit) is not stored or answered twice:
        the stored answer is replayed.
        """
        validate_text(text, self.settings.max_message_chars)
        conversation = await asyncio.to_thread(self.store.get_conversation, conversation_id)
        if client_message_id:
            resent = await asyncio.to_thread(self.store.resent_message, conversation_id, client_message_id)
            if resent is not None:
                async for event in replay(*resent):
                    yield event
                return
        if conversation["status"] == "closed":
            raise ConversationClosedError(f"conversation '{conversation_id}' is closed")
        user_id = await asyncio.to_thread(self.store.add_message, conversation_id, "user", text, "complete", None,
                                          {"client_message_id": client_message_id} if client_message_id else None)
        if conversation["status"] != "bot":  # a human has it or is about to: the bot stays silent
            yield AnswerEvent("accepted", {"message_id": user_id, "conversation_status": conversation["status"]})
            yield AnswerEvent("done", {"message_id": None, "status": "waiting_for_human"})
            return
        handoff = self.settings.handoff
        if handoff.on_customer_request and asks_for_human(text, handoff.request_phrases):
            async for event in self.hand_to_human(conversation_id, user_id, "customer_asked", text):
                yield event
            return
        grounding = await self.ground(text)
        if grounding is not None and not grounding.relevant:
            async for event in self._dont_know(conversation_id, user_id, text):
                yield event
            if handoff.on_no_source:
                await asyncio.to_thread(self.store.request_human, conversation_id, "no_relevant_source", text)
            else:
                await self._after_failed_answers(conversation_id)
            return
        sources = grounding.sources if grounding else []
        history = await asyncio.to_thread(
            self.store.messages, conversation_id, self.settings.max_history_messages,
        )
        messages = build_chat_messages(self.settings.rendered_system_prompt(), history, sources)
        source_list = [s.as_dict() for s in sources]
        answer_id = await asyncio.to_thread(
            self.store.add_message, conversation_id, "assistant", "", "streaming", self.model_name,
            {"sources": source_list, "grounded": bool(sources), "writer": writer_id()},
        )
        yield AnswerEvent("accepted", {"message_id": user_id, "answer_id": answer_id})
        if grounding is not None:
            yield AnswerEvent("sources", {"sources": source_list})
        async with aclosing(self._stream_and_store(answer_id, messages, sources)) as events:
            async for event in events:
                yield event
                if event.type == "error":
                    await self._after_failed_answers(conversation_id)

    async def hand_to_human(self, conversation_id: str, user_id: int | None, reason: str,
                            detail: str | None = None, lang: str | None = None) -> AsyncIterator[AnswerEvent]:
        """Ask for a human (recorded with its reason) and tell the customer (in Chinese when they write it or their
        page is in it), once per open request."""
        request = await asyncio.to_thread(self.store.request_human, conversation_id, reason, detail)
        chinese = lang == "zh" if lang else bool(detail and CJK.search(detail))
        text = waiting_for_human_answer(self.settings.company_name, chinese)
        answer_id = None
        if request["created"]:
            answer_id = await asyncio.to_thread(
                self.store.add_message, conversation_id, "assistant", text, "complete", None,
                {"sources": [], "grounded": False, "reason": "handoff", "handoff_reason": reason})
        yield AnswerEvent("accepted", {"message_id": user_id, "answer_id": answer_id,
                                       "conversation_status": "waiting_human"})
        if request["created"]:
            yield AnswerEvent("delta", {"text": text})
        yield AnswerEvent("done", {"message_id": answer_id, "status": "waiting_for_human", "handoff_reason": reason})

    async def _after_failed_answers(self, conversation_id: str) -> None:
        """Hand off when the last `handoff.after_failed_answers` bot answers all failed (no source, or broken)."""
        needed = self.settings.handoff.after_failed_answers
        if not needed:
            return
        recent = await asyncio.to_thread(self.store.messages, conversation_id, 4 * needed)
        answers = [m for m in recent if m["role"] == "assistant"][-needed:]
        failed = [m for m in answers
                  if m["status"] in ("error", "partial") or m["metadata"].get("reason") == "no_relevant_source"]
        if len(answers) == needed and len(failed) == needed:
            await asyncio.to_thread(self.store.request_human, conversation_id, "bot_failed_twice" if needed == 2
                                    else f"bot_failed_{needed}_times", None)

    async def _dont_know(self, conversation_id: str, user_id: int, question: str) -> AsyncIterator[AnswerEvent]:
        """No relevant passage: say so and offer a human, without asking the model to guess."""
        text = dont_know_answer(question, self.settings.company_name)
        answer_id = await asyncio.to_thread(
            self.store.add_message, conversation_id, "assistant", text, "complete", None,
            {"sources": [], "grounded": False, "reason": "no_relevant_source", "handoff_offered": True},
        )
        yield AnswerEvent("accepted", {"message_id": user_id, "answer_id": answer_id})
        yield AnswerEvent("sources", {"sources": []})
        yield AnswerEvent("delta", {"text": text})
        yield AnswerEvent("done", {"message_id": answer_id, "status": "complete", "finish_reason": "no_source",
                                   "handoff_offered": True})

    async def _stream_and_store(self, answer_id: int, messages, sources=()) -> AsyncIterator[AnswerEvent]:
        started = time.perf_counter()
        parts: list[str] = []
        final = None
        outcome = ("partial", "the stream was interrupted before the answer ended")
        try:
            answer = without_instructions(self.engine.stream_chat(messages, self.default_params()),
                                          self.settings.rendered_system_prompt())
            stream = with_citations(answer, sources)
            async with aclosing(stream) as deltas:
                async for delta in deltas:
                    if delta.text:
                        parts.append(delta.text)
                        yield AnswerEvent("delta", {"text": delta.text})
                    if delta.finish_reason:
                        final = delta
            outcome = ("complete", None)
        except InstructionLeak:  # what was said is replaced; the stored answer is the refusal
            question = next((m.content for m in reversed(messages) if m.role == "user"), "")
            parts = [refusal(bool(CJK.search(question)))]
            yield AnswerEvent("replace", {"text": parts[0], "reason": "instructions"})
            outcome = ("complete", None)
        except EngineError as exc:
            outcome = ("partial" if parts else "error", str(exc))
        finally:
            # synchronous on purpose: this must run even when the task is being cancelled
            self.store.finish_message(
                answer_id, "".join(parts), outcome[0], outcome[1],
                prompt_tokens=final.prompt_tokens if final else None,
                completion_tokens=final.completion_tokens if final else None,
                latency_ms=(time.perf_counter() - started) * 1000,
            )
        if outcome[0] == "complete":
            yield AnswerEvent("done", {"message_id": answer_id, "status": "complete",
                                       "finish_reason": final.finish_reason if final else "stop"})
        else:
            yield AnswerEvent("error", {"message": f"the assistant could not finish its answer: {outcome[1]}",
                                        "message_id": answer_id, "status": outcome[0]})
