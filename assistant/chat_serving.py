"""The one chat serving layer: every answer goes through it (OpenAI-compatible API, conversation API, chat page,
widget, and the LangChain chain that calls our API).

    prepare  validate the turns, neutralise control tokens, ground the question, choose how to answer (composed
             from the sources, or written by the model), build the prompt with the one prompt builder, fitted into
             the served model's context window
    stream   engine -> instruction-leak guard -> support check (sentence by sentence) -> citations -> typed events

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

from assistant.answer_queue import AnswerQueue
from assistant.config import Settings
from assistant.engines.base import ChatMessage, Delta, EngineError, GenerationParams, LLMEngine
from assistant.errors import AssistantError
from assistant.grounded_answer import compose_answer
from assistant.grounding import Grounder, Grounding, Source
from assistant.guard import InstructionLeak, refusal, without_instructions
from assistant.insights.curated import CuratedAnswers
from assistant.prompt import (
    CJK,
    GROUNDING_RULES,
    PromptRoom,
    busy_answer,
    citation_footer,
    dont_know_answer,
    fit_prompt,
    last_question,
    quick_fit,
    sentence_pieces,
)
from assistant.registry import ModelRegistry, RegistryError
from assistant.small_talk import small_talk, small_talk_reply
from assistant.support_check import AnswerVerdict, SentenceVerdict, SupportChecker


class InvalidMessageError(AssistantError, ValueError):
    """A message cannot be accepted (empty, too long)."""

    def __init__(self, message: str, status_code: int = 400):
        super().__init__(message)
        self.status_code = status_code


def unstorable(text: str) -> str | None:
    """Why a text cannot be stored as it is (PostgreSQL refuses NUL; a lone UTF-16 surrogate encodes nowhere), or
    None."""
    if "\x00" in text or any("\ud800" <= c <= "\udfff" for c in text):
        return "it contains a NUL character or a lone UTF-16 surrogate: send plain text"
    return None


def validate_text(text: str, max_chars: int, field: str = "content") -> str:
    if not isinstance(text, str) or not text.strip():
        raise InvalidMessageError(f"'{field}' is empty: send the customer's question as text")
    if problem := unstorable(text):
        raise InvalidMessageError(f"'{field}': {problem}")
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
    style: str = "generative"  # "grounded": the answer is `composed` from the sources, the model is not asked
    composed: str | None = None  # the answer composed from the sources (also the fallback of a written one)
    relevance: float | None = None  # of the best passage found (None: retrieval did not run)
    curated: dict | None = None  # the curated answer served (`canned`), its id, version and similarity
    busy: bool = False  # composed from the sources because the model's queue was too long
    admitted: bool = False  # counted in the model's queue since it was prepared (answer_queue.py)

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


class AnswerReplaced(Exception):
    """Too little of a written answer was supported: it is replaced by `text` (`end`: the model's last delta, with
    its finish reason and token counts)."""

    def __init__(self, text: str, end: Delta):
        super().__init__(text)
        self.text = text
        self.end = end


class SupportGate:
    """Releases a written answer sentence by sentence, each only once the sources support it; records every
    verdict. When the supported share ends below `min_kept_share` (or nothing is left), the answer gives way to
    `fallback` (the answer composed from the sources): as the whole answer if nothing was shown yet, else through
    `AnswerReplaced`."""

    def __init__(self, checker: SupportChecker, fallback: str, min_kept_share: float):
        self.checker = checker
        self.fallback = fallback
        self.min_kept_share = min_kept_share
        self.verdicts: list[SentenceVerdict] = []
        self.fell_back = False

    @property
    def verdict(self) -> AnswerVerdict:
        said = self.fallback if self.fell_back else "".join(v.text for v in self.verdicts if v.supported)
        return AnswerVerdict(tuple(self.verdicts), self.checker.check(said).language,
                             self.checker.expected_language)

    def _judge(self, sentence: str) -> str:
        if not sentence.strip():
            return sentence
        verdict = self.checker.check_sentence(sentence)
        self.verdicts.append(verdict)
        return sentence if verdict.supported else ""

    async def run(self, deltas: AsyncIterator[Delta]) -> AsyncIterator[Delta]:
        pending, shown = "", False
        async with aclosing(deltas):
            async for delta in deltas:
                if delta.text:
                    pieces = sentence_pieces(pending + delta.text)
                    pending = pieces.pop()
                    released = "".join(self._judge(p) for p in pieces)
                    if released.strip():
                        shown = True
                        yield Delta(text=released)
                if not delta.finish_reason:
                    continue
                released = self._judge(pending)
                pending = ""
                kept = [v for v in self.verdicts if v.supported and v.text.strip()]
                share = len(kept) / len(self.verdicts) if self.verdicts else 0.0
                if (not kept or share < self.min_kept_share) and self.fallback:
                    self.fell_back = True
                    if shown:
                        raise AnswerReplaced(self.fallback, delta)
                    released = self.fallback
                if released:
                    yield Delta(text=released)
                yield Delta(finish_reason=delta.finish_reason, prompt_tokens=delta.prompt_tokens,
                            completion_tokens=delta.completion_tokens)


@dataclass
class AnswerCounts:
    """What the support check did since the server started (shown by `/healthz`)."""

    composed: int = 0  # answers composed from the sources (style grounded)
    written: int = 0  # answers the model wrote, checked sentence by sentence
    dont_know: int = 0  # no relevant source: "I don't know" and the offer of a human
    sentences_checked: int = 0
    sentences_cut: int = 0
    fell_back: int = 0  # written answers replaced by the composed one (too little supported)
    wrong_language: int = 0  # answers not in the customer's language
    answered: int = 0  # every answer (those above, those made without a knowledge base, refusals)
    prompt_tokens: int = 0  # read by the engine for answers
    completion_tokens: int = 0  # written by it
    engine_errors: int = 0  # answers the engine failed
    busy: int = 0  # answers given at once because the model's queue was too long (composed, or the busy reply)

    def count(self, prepared: PreparedChat, done: dict) -> None:
        self.answered += 1
        self.busy += prepared.busy or prepared.canned_reason == "busy"
        self.prompt_tokens += done.get("prompt_tokens") or 0
        self.completion_tokens += done.get("completion_tokens") or 0
        check = done.get("check")
        if prepared.canned_reason == "no_relevant_source":
            self.dont_know += 1
        elif check is not None:
            if prepared.style == "grounded":
                self.composed += 1
            else:
                self.written += 1
                self.sentences_checked += check.get("checked", 0)
                self.sentences_cut += len(check["cut"])
                self.fell_back += bool(check.get("fell_back"))
            self.wrong_language += check["language"] not in (check["expected_language"], "und") \
                and check["expected_language"] != "und"


class ChatServing:
    """Prepares and streams answers for one deployment (settings, engine, knowledge base)."""

    def __init__(self, settings: Settings, engine: LLMEngine, grounder: Grounder | None = None,
                 curated: CuratedAnswers | None = None):
        self.settings = settings
        self.engine = engine
        self.grounder = grounder
        self.curated = curated
        self.counts = AnswerCounts()
        self.answering = 0  # answers being made now (the engine's queue and batch, from our side)
        self.queue = AnswerQueue()  # those the model writes, and the wait a new one would have
        self._supported_rates: dict[str, float | None] = {}  # a registered version's measure never changes

    def answer_style(self) -> str:
        """`grounded` or `generative`: the setting, or for `auto` what the serving model's measured
        faithfulness allows (a model the promotion gate never measured composes from the sources)."""
        style = self.settings.answers.style
        if style != "auto":
            return style
        name = self.model_name
        if name not in self._supported_rates:  # read once per served model, not per answer (it may be a query)
            try:
                self._supported_rates[name] = ModelRegistry(self.settings.home_dir / "registry") \
                    .supported_sentence_rate(name)
            except RegistryError:
                return "grounded"  # unreadable now: compose, and read it again next time
        measured = self._supported_rates[name]
        enough = measured is not None and measured >= self.settings.answers.generative_min_supported
        return "generative" if enough else "grounded"

    def checker(self, prepared: PreparedChat) -> SupportChecker:
        return SupportChecker(prepared.sources, prepared.question, self.settings.answers.min_overlap)

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

    def too_busy(self) -> bool:
        """Whether a new answer would wait longer than `answers.max_wait_s` for the model's first word."""
        limit = self.settings.answers.max_wait_s
        return limit > 0 and self.queue.estimated_wait_s() > limit

    async def prepare(self, turns: Sequence[ChatMessage], system_prompt: str | None = None,
                      params: GenerationParams | None = None, grounding: bool = True,
                      busy_fallback: bool = False) -> PreparedChat:
        """The prompt for `turns` (oldest first, ending with the customer's message; untrusted text already
        neutralised), grounded unless `grounding` is off or retrieval is, fitted into the model's context. With
        `busy_fallback` (a customer's chat), a model too busy to answer in time is not asked: the answer is composed
        from the sources, or with none it is the busy reply."""
        system_prompt = self.settings.rendered_system_prompt() if system_prompt is None else system_prompt
        params = params or self.default_params()
        question = last_question(turns)
        if self.curated is not None and self.curated.may_match():  # an answer the support team approved comes first
            found = await asyncio.to_thread(self.curated.match, question)
            if found is not None:
                return PreparedChat([], params, question, canned=found.answer.answer, canned_reason="curated",
                                    curated=found.as_dict())
        grounded = grounding and self.grounder is not None
        kind = small_talk(question) if grounded else None
        if kind is not None:  # a greeting, thanks or goodbye: nothing to look up, no "I don't know"
            return PreparedChat([], params, question, canned=small_talk_reply(kind, question,
                                                                            self.settings.company_name),
                                canned_reason="small_talk")
        sources: list[Source] = []
        composed, relevance = None, None
        if grounded:
            found = await self.ground(question)
            relevance = found.best_relevance
            if not found.relevant:
                return PreparedChat([], params, question, grounded=True,
                                    canned=dont_know_answer(question, self.settings.company_name),
                                    canned_reason="no_relevant_source", relevance=relevance)
            sources = found.sources
            composed = compose_answer(question, sources)
            if self.answer_style() == "grounded":  # the model is not asked
                return PreparedChat([], params, question, sources, grounded=True, style="grounded",
                                    composed=composed, relevance=relevance)
        if busy_fallback and self.too_busy():  # no silence while the model's queue drains
            if composed:
                return PreparedChat([], params, question, sources, grounded=True, style="grounded",
                                    composed=composed, relevance=relevance, busy=True)
            return PreparedChat([], params, question, grounded=grounded, canned=busy_answer(question),
                                canned_reason="busy", relevance=relevance)
        if busy_fallback:
            self.queue.admit()
        room = PromptRoom(self.engine.context_window(), params.max_new_tokens, self.settings.retrieval.source_tokens)
        fitted = (quick_fit(system_prompt, turns, sources, room)  # nothing to count: no thread hop either
                  or await asyncio.to_thread(fit_prompt, system_prompt, turns, sources, room))
        own_system = [t.content for t in turns[:1] if t.role == "system"]
        instructions = (system_prompt, *own_system, *([GROUNDING_RULES] if fitted.sources else []))
        return PreparedChat(fitted.messages, replace(params, max_new_tokens=fitted.answer_tokens), question,
                            fitted.sources, grounded, instructions=instructions, dropped_turns=fitted.dropped_turns,
                            composed=composed, relevance=relevance, admitted=busy_fallback)

    async def stream(self, prepared: PreparedChat) -> AsyncIterator[ChatEvent]:
        """The answer as events: `sources` first when grounded, then `delta`s, then `done` (or `replace` + `done`
        when it began to quote the instructions or too little of it was supported, or `error` when the engine
        failed). A grounded answer's `done` carries `check`: what the support check cut and why."""
        if prepared.canned is not None or prepared.style == "grounded":
            events = self._events(prepared, None)
        else:  # the model writes: its queue counts it until the customer has seen all of it
            events = self.queue.timed(self._events(prepared, self.engine.stream_chat(prepared.messages,
                                                                                   prepared.params)),
                                      lambda event: event.type in ("delta", "replace", "done"), prepared.admitted)
        async with aclosing(events):
            async for event in events:
                yield event

    async def sent_answer(self, prepared: PreparedChat, written: str | None = None) -> tuple[str, dict]:
        """What `stream` sends for `prepared` when the model wrote `written` (None: the model is not asked),
        and the `done` event's data: how evaluation sees exactly what a customer would."""
        async def once() -> AsyncIterator[Delta]:
            yield Delta(text=written or "")
            yield Delta(finish_reason="stop")

        text, done = "", {}
        async for event in self._events(prepared, once() if written is not None else None):
            if event.type == "delta":
                text += event.data["text"]
            elif event.type == "replace":
                text = event.data["text"]
            elif event.type == "done":
                done = event.data
        return text, done

    async def _events(self, prepared: PreparedChat, written: AsyncIterator[Delta] | None) -> AsyncIterator[ChatEvent]:
        self.answering += 1
        try:
            async with aclosing(self._answer_events(prepared, written)) as events:
                async for event in events:
                    if event.type == "done":
                        self.counts.count(prepared, event.data)
                    elif event.type == "error":
                        self.counts.engine_errors += 1
                    yield event
        finally:
            self.answering -= 1

    async def _answer_events(self, prepared: PreparedChat,
                             written: AsyncIterator[Delta] | None) -> AsyncIterator[ChatEvent]:
        if prepared.grounded:
            yield ChatEvent("sources", {"sources": prepared.source_dicts})
        if prepared.canned is not None:
            yield ChatEvent("delta", {"text": prepared.canned})
            yield ChatEvent("done", {"finish_reason": "stop", "reason": prepared.canned_reason,
                                     "prompt_tokens": 0, "completion_tokens": 0})
            return
        if prepared.style == "grounded":
            verdict = self.checker(prepared).check(prepared.composed)
            yield ChatEvent("delta", {"text": prepared.composed})
            busy = {"reason": "busy"} if prepared.busy else {}
            yield ChatEvent("done", {"finish_reason": "stop", "style": "grounded", "check": verdict.as_dict(),
                                     "prompt_tokens": 0, "completion_tokens": 0} | busy)
            return
        answer = without_instructions(written, prepared.instructions)
        gate = None
        if prepared.sources:
            gate = SupportGate(self.checker(prepared), prepared.composed or "", self.settings.answers.min_kept_share)
            answer = gate.run(answer)
        try:
            async with aclosing(with_citations(answer, prepared.sources)) as deltas:
                async for delta in deltas:
                    if delta.text:
                        yield ChatEvent("delta", {"text": delta.text})
                    if delta.finish_reason:
                        checked = {"check": gate.verdict.as_dict() | {"fell_back": gate.fell_back}} if gate else {}
                        yield ChatEvent("done", {"finish_reason": delta.finish_reason, "style": "generative",
                                                 "prompt_tokens": delta.prompt_tokens,
                                                 "completion_tokens": delta.completion_tokens} | checked)
        except AnswerReplaced as replaced:  # too little was supported: the answer composed from the sources
            yield ChatEvent("replace", {"text": replaced.text, "reason": "unsupported"})
            yield ChatEvent("done", {"finish_reason": "stop", "style": "generative", "reason": "unsupported",
                                     "prompt_tokens": replaced.end.prompt_tokens,
                                     "completion_tokens": replaced.end.completion_tokens,
                                     "check": gate.verdict.as_dict() | {"fell_back": True}})
        except InstructionLeak:  # nothing of the instructions was shown; the answer becomes a refusal
            yield ChatEvent("replace", {"text": refusal(bool(CJK.search(prepared.question))),
                                        "reason": "instructions"})
            yield ChatEvent("done", {"finish_reason": "stop", "reason": "instructions"})
        except EngineError as exc:
            yield ChatEvent("error", {"message": str(exc)}, exc)
