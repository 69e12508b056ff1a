"""The conversation engine: store the customer's message, answer it from the model, store the answer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from assistant.actions.service import ActionReply, ActionService
from assistant.chat_serving import ChatServing, PreparedChat, validate_text
from assistant.config import Settings
from assistant.engines.base import LLMEngine
from assistant.errors import AssistantError
from assistant.grounding import Grounder
from assistant.insights.curated import curated_answers
from assistant.insights.service import InsightsService
from assistant.operators import OperatorService
from assistant.ownership import Caller
from assistant.prompt import CJK, history_turns
from assistant.recommend.service import RecommendationReply, RecommendationService, customer_key
from assistant.sentiment.service import SentimentService
from assistant.store import ActionStateError, ConversationNotFoundError, MessageNotFoundError, Store
from assistant.store.conversations import replica_name
from assistant.store.records import ActionRunRecord, ConversationRecord, HandoffState, KeyRecord, MessageRecord
from assistant.store.statuses import ConversationStatus, MessageStatus

VERIFIED_IDENTITY = "verified_identity"  # conversation metadata set only by a verified sign-in, never by the caller


class ConversationClosedError(AssistantError, ValueError):
    pass


class RecommendationFeedbackError(AssistantError, ValueError):
    """Feedback on an item that was not recommended there."""


@dataclass
class AnswerEvent:
    """One step of an answer in a conversation: `accepted` (customer message stored), then the serving layer's
    events (`sources`, `delta`, `replace`, `done` or `error`) with the stored message ids added."""

    type: str
    data: dict[str, Any]


def asks_for_human(text: str, phrases: list[str]) -> bool:
    lowered = text.lower()
    return any(phrase.lower() in lowered for phrase in phrases if phrase.strip())


def waiting_for_human_answer(company: str, chinese: bool = False) -> str:
    if chinese:
        return f"我已请{company}团队的同事加入对话，他们会在这里回复您。在此期间您可以继续留言。"
    return (f"I've asked a colleague from the {company} team to join this conversation; they will reply here. "
            "You can keep writing in the meantime.")


async def replay(message_id: int, answer: MessageRecord | None) -> AsyncIterator[AnswerEvent]:
    """The events of a message already answered (or being answered), for a client that sent it again."""
    answer_id = answer.id if answer is not None else None
    yield AnswerEvent("accepted", {"message_id": message_id, "answer_id": answer_id, "duplicate": True})
    if answer is not None and answer.content:
        yield AnswerEvent("delta", {"text": answer.content})
    status = answer.status if answer is not None else "no_answer"
    yield AnswerEvent("done", {"message_id": answer_id, "status": status, "duplicate": True})


class ConversationService:
    """A deployment's conversations: stores both sides, hands off to humans, answers through `ChatServing`."""

    def __init__(self, settings: Settings, store: Store, engine: LLMEngine, grounder: Grounder | None = None,
                 actions: ActionService | None = None, recommendations: RecommendationService | None = None):
        self.settings = settings
        self.store = store
        self.replica = replica_name()  # this server among replicas: its answers and presence lease carry it
        # the registered versions this server answers with (None: the configured model / retrieval), kept up to
        # date by assistant/model_swap.py and shown on /healthz
        self.versions: dict[str, str | None] = {"model": None, "retrieval": None}
        self.curated = curated_answers(store, settings)
        self.serving = ChatServing(settings, engine, grounder, self.curated)
        self.insights = InsightsService(settings, store, self.serving)
        self.actions = actions
        self.recommendations = recommendations
        self.operators = OperatorService(settings, store)
        self.sentiment = SentimentService(store)

    @property
    def engine(self) -> LLMEngine:
        return self.serving.engine

    @engine.setter
    def engine(self, engine: LLMEngine) -> None:
        self.serving.engine = engine

    @property
    def grounder(self) -> Grounder | None:
        return self.serving.grounder

    @property
    def model_name(self) -> str:
        return self.serving.model_name

    async def create_conversation(self, customer_id: str | None = None, channel: str = "api",
                                  metadata: dict | None = None, owner: str | None = None,
                                  verified_identity: dict[str, str] | None = None) -> ConversationRecord:
        """A new conversation belonging to `owner` (see assistant/ownership.py). `verified_identity`: claims of a
        verified sign-in (the only way actions learn who the customer is); a caller's metadata cannot set it."""
        metadata = {k: v for k, v in (metadata or {}).items() if k != VERIFIED_IDENTITY}
        if verified_identity:
            metadata[VERIFIED_IDENTITY] = dict(verified_identity)
        return await asyncio.to_thread(self.store.conversations.create_conversation, customer_id, channel, metadata,
                                       owner)

    async def check_access(self, conversation_id: str, caller: Caller) -> None:
        """Raise ConversationNotFoundError unless the conversation exists and `caller` may act on it."""
        if not caller.may_use(await asyncio.to_thread(self.store.conversations.owner, conversation_id)):
            raise ConversationNotFoundError(conversation_id)

    async def check_answer_access(self, message_id: int, caller: Caller) -> None:
        """Raise MessageNotFoundError unless the bot answer exists in a conversation `caller` may act on."""
        conversation_id = await asyncio.to_thread(self.store.conversations.conversation_of_answer, message_id)
        try:
            await self.check_access(conversation_id, caller)
        except ConversationNotFoundError:
            raise MessageNotFoundError(message_id, "no bot answer with this id") from None

    async def conversation(self, conversation_id: str) -> ConversationRecord:
        """The conversation's record (status, CSAT, ...)."""
        return await asyncio.to_thread(self.store.conversations.get_conversation, conversation_id)

    async def messages(self, conversation_id: str) -> list[MessageRecord]:
        """The conversation's messages, oldest first."""
        return await asyncio.to_thread(self.store.conversations.messages, conversation_id)

    async def messages_after(self, conversation_id: str, after_id: int) -> list[MessageRecord]:
        """Messages newer than `after_id` (what a waiting customer polls for: the agent's reply)."""
        return await asyncio.to_thread(self.store.conversations.messages_after, conversation_id, after_id)

    async def is_closed(self, conversation_id: str) -> bool:
        """Whether the conversation has ended (an unknown one has not: the caller starts a new one anyway)."""
        try:
            return (await self.conversation(conversation_id)).status == ConversationStatus.CLOSED
        except ConversationNotFoundError:
            return False

    async def handoff_state(self, conversation_id: str) -> HandoffState:
        """Status, and the agent who has the conversation (name shown to the customer)."""
        return await asyncio.to_thread(self.store.handoffs.handoff_state, conversation_id)

    async def close(self, conversation_id: str, csat: int | None = None) -> None:
        """End the conversation, with the customer's 1-5 rating if given (also accepted after closing)."""
        await asyncio.to_thread(self.store.conversations.close_conversation, conversation_id, csat)

    async def feedback(self, message_id: int, rating: int | None = None, comment: str | None = None,
                       corrected_text: str | None = None, author: str | None = None) -> int:
        """A rating, comment or correction of one bot answer; `assistant align --from-store` learns from it."""
        return await asyncio.to_thread(self.store.conversations.add_feedback, message_id, rating, comment,
                                       corrected_text, author)

    async def widget_key(self, key: str) -> KeyRecord | None:
        """The widget key's record (name, allowed origins), or None when it is unknown or revoked."""
        return await asyncio.to_thread(self.store.keys.widget_key, key)

    async def answer(self, conversation_id: str, text: str,
                     client_message_id: str | None = None) -> AsyncIterator[AnswerEvent]:
        """Commit the customer message, then stream the answer; the answer is committed when it ends.

        A stream that breaks (engine failure, client gone) leaves the partial answer stored as `partial`. A message
        sent again with the same `client_message_id` (a retry, a double submit) is not stored or answered twice:
        the stored answer is replayed.
        """
        validate_text(text, self.settings.max_message_chars)
        conversation = await asyncio.to_thread(self.store.conversations.get_conversation, conversation_id)
        if client_message_id:
            resent = await asyncio.to_thread(self.store.conversations.resent_message, conversation_id,
                                             client_message_id)
            if resent is not None:
                async for event in replay(*resent):
                    yield event
                return
        if conversation.status == ConversationStatus.CLOSED:
            raise ConversationClosedError(f"conversation '{conversation_id}' is closed")
        user_id = await asyncio.to_thread(
            self.store.conversations.add_message, conversation_id, "user", text, MessageStatus.COMPLETE, None,
            {"client_message_id": client_message_id} if client_message_id else None)
        if conversation.status != ConversationStatus.BOT:  # a human has it or is about to: the bot stays silent
            yield AnswerEvent("accepted", {"message_id": user_id, "conversation_status": conversation.status})
            yield AnswerEvent("done", {"message_id": None, "status": "waiting_for_human"})
            return
        handoff = self.settings.handoff
        if handoff.on_customer_request and asks_for_human(text, handoff.request_phrases):
            async for event in self.hand_to_human(conversation_id, user_id, "customer_asked", text):
                yield event
            return
        history = await asyncio.to_thread(
            self.store.conversations.messages, conversation_id, self.settings.max_history_messages,
        )
        turns = history_turns({"role": m.role, "content": m.content, "status": m.status}  # it reads chat dicts
                              for m in history)
        if self.actions is not None:
            reply = await self.actions.turn(conversation_id, turns, conversation.metadata.get(VERIFIED_IDENTITY),
                                            self.engine, self.serving.default_params())
            if reply is not None:
                async for event in self._action_reply(conversation_id, user_id, reply):
                    yield event
                return
        if self.recommendations is not None:
            suggested = await self.recommendations.turn(conversation_id, conversation.metadata.get(VERIFIED_IDENTITY),
                                                        text, self.engine, self.serving.default_params())
            if suggested is not None:
                async for event in self._recommendation_reply(conversation, user_id, suggested):
                    yield event
                return
        prepared = await self.serving.prepare(turns, busy_fallback=True)
        if prepared.canned_reason in ("curated", "small_talk"):
            async for event in self._canned_reply(conversation_id, user_id, prepared):
                yield event
            return
        if prepared.canned is not None:
            async for event in self._dont_know(conversation_id, user_id, prepared):
                yield event
            if prepared.canned_reason == "busy":  # a human is offered; nothing failed
                return
            if handoff.on_no_source:
                await asyncio.to_thread(self.store.handoffs.request_human, conversation_id, "no_relevant_source", text)
            else:
                await self._after_failed_answers(conversation_id)
            return
        answer_id = await asyncio.to_thread(
            self.store.conversations.add_message, conversation_id, "assistant", "", "streaming", self.model_name,
            {"sources": prepared.source_dicts, "grounded": bool(prepared.sources), "writer": self.replica},
        )
        yield AnswerEvent("accepted", {"message_id": user_id, "answer_id": answer_id})
        async with aclosing(self._stream_and_store(answer_id, prepared)) as events:
            async for event in events:
                yield event
                if event.type == "error":
                    await self._after_failed_answers(conversation_id)

    async def approval_queue(self) -> list[ActionRunRecord]:
        """Write actions customers confirmed that wait for an operator, oldest first."""
        return await asyncio.to_thread(self.store.actions.approval_queue) if self.actions else []

    async def decide_action(self, run_id: int, operator: str, approve: bool, reason: str = "") -> ActionReply:
        """An operator approves (the action runs now, once) or rejects (with the reason the customer reads) a
        queued action; the outcome is posted in the customer's conversation."""
        if self.actions is None:
            raise ActionStateError("this deployment declares no actions (actions.file)")
        run = await asyncio.to_thread(self.store.actions.get, run_id)
        if approve:
            conversation = await self.conversation(run.conversation_id)
            reply = await self.actions.approve(run_id, operator, conversation.metadata.get(VERIFIED_IDENTITY))
        else:
            if not reason.strip():
                raise ActionStateError("say why it is rejected: the customer reads the reason")
            reply = await self.actions.reject(run_id, operator, reason.strip())
        await asyncio.to_thread(
            self.store.conversations.add_message, run.conversation_id, "assistant", reply.text, "complete", None,
            {"sources": [], "grounded": False, "reason": "action_outcome", "action": run.action, "action_run": run_id,
             "action_status": reply.run.status if reply.run else None})
        return reply

    async def _action_reply(self, conversation_id: str, user_id: int, reply: ActionReply) -> AsyncIterator[AnswerEvent]:
        """What an action turn says (a confirmation question, a result, a refusal), stored like an answer."""
        run = reply.run
        answer_id = await asyncio.to_thread(
            self.store.conversations.add_message, conversation_id, "assistant", reply.text, "complete", None,
            {"sources": [], "grounded": False, "reason": "action",
             **({"action": run.action, "action_run": run.id, "action_status": run.status} if run else {})})
        yield AnswerEvent("accepted", {"message_id": user_id, "answer_id": answer_id})
        yield AnswerEvent("delta", {"text": reply.text})
        yield AnswerEvent("done", {"message_id": answer_id, "status": "complete", "finish_reason": "action"})

    async def _recommendation_reply(self, conversation: ConversationRecord, user_id: int,
                                    reply: RecommendationReply) -> AsyncIterator[AnswerEvent]:
        """Product cards and the words around them, stored like an answer; what was shown is recorded."""
        cards = [pick.card() for pick in reply.picks]
        answer_id = await asyncio.to_thread(
            self.store.conversations.add_message, conversation.id, "assistant", reply.text, "complete", None,
            {"sources": [], "grounded": False, "reason": "recommendation", "recommendations": cards,
             "basis": reply.basis, "model_picked": reply.model_picked, "candidates": reply.candidates,
             "most": self.recommendations.settings.max_items})
        if cards:
            customer = customer_key(conversation.id, conversation.metadata.get(VERIFIED_IDENTITY))
            await asyncio.to_thread(self.store.interactions.record, customer, [c["id"] for c in cards], "shown",
                                    conversation.id, answer_id)
        yield AnswerEvent("accepted", {"message_id": user_id, "answer_id": answer_id})
        if cards:
            yield AnswerEvent("recommendations", {"items": cards, "basis": reply.basis, "answer_id": answer_id})
        yield AnswerEvent("delta", {"text": reply.text})
        yield AnswerEvent("done", {"message_id": answer_id, "status": "complete", "finish_reason": "recommendation"})

    async def recommendation_feedback(self, conversation_id: str, message_id: int, item_id: str, kind: str) -> None:
        """The customer clicked an item a recommendation answer showed, or said "not for me"; it becomes training
        data for `assistant align recommend`. An item that answer did not show is refused."""
        shown = await asyncio.to_thread(self.store.interactions.shown, conversation_id, message_id)
        if item_id not in shown:
            raise RecommendationFeedbackError(f"answer {message_id} of this conversation did not recommend "
                                              f"item {item_id!r}")
        conversation = await self.conversation(conversation_id)
        customer = customer_key(conversation_id, conversation.metadata.get(VERIFIED_IDENTITY))
        await asyncio.to_thread(self.store.interactions.record, customer, [item_id], kind, conversation_id,
                                message_id)

    @property
    def link_secret(self) -> bytes:
        """What recommendation card links are signed with (assistant/recommend/links.py)."""
        from assistant.identity import deployment_secret

        return deployment_secret(self.settings.home_dir)

    def card_link(self, conversation_id: str, message_id: int, item_id: str) -> str:
        from assistant.recommend.links import CardLink, sign_link

        return "/api/recommendations/open?t=" + sign_link(self.link_secret, CardLink(conversation_id, message_id,
                                                                                      item_id))

    async def dismissed_items(self, conversation_id: str, message_id: int) -> set[str]:
        return set(await asyncio.to_thread(self.store.interactions.shown, conversation_id, message_id, "dismiss"))

    async def catalog_items(self, ids: list[str]) -> dict:
        return await asyncio.to_thread(self.store.catalog.get, ids)

    async def hand_to_human(self, conversation_id: str, user_id: int | None, reason: str,
                            detail: str | None = None, lang: str | None = None) -> AsyncIterator[AnswerEvent]:
        """Ask for a human (recorded with its reason) and tell the customer (in Chinese when they write it or their
        page is in it), once per open request."""
        request = await asyncio.to_thread(self.store.handoffs.request_human, conversation_id, reason, detail)
        chinese = lang == "zh" if lang else bool(detail and CJK.search(detail))
        text = waiting_for_human_answer(self.settings.company_name, chinese)
        answer_id = None
        if request.created:
            answer_id = await asyncio.to_thread(
                self.store.conversations.add_message, conversation_id, "assistant", text, "complete", None,
                {"sources": [], "grounded": False, "reason": "handoff", "handoff_reason": reason})
        yield AnswerEvent("accepted", {"message_id": user_id, "answer_id": answer_id,
                                       "conversation_status": "waiting_human"})
        if request.created:
            yield AnswerEvent("delta", {"text": text})
        yield AnswerEvent("done", {"message_id": answer_id, "status": "waiting_for_human", "handoff_reason": reason})

    async def _after_failed_answers(self, conversation_id: str) -> None:
        """Hand off when the last `handoff.after_failed_answers` bot answers all failed (no source, or broken)."""
        needed = self.settings.handoff.after_failed_answers
        if not needed:
            return
        recent = await asyncio.to_thread(self.store.conversations.messages, conversation_id, 4 * needed)
        answers = [m for m in recent if m.role == "assistant"][-needed:]
        broken = (MessageStatus.ERROR, MessageStatus.PARTIAL)
        failed = [m for m in answers
                  if m.status in broken or m.metadata.get("reason") == "no_relevant_source"]
        if len(answers) == needed and len(failed) == needed:
            reason = "bot_failed_twice" if needed == 2 else f"bot_failed_{needed}_times"
            await asyncio.to_thread(self.store.handoffs.request_human, conversation_id, reason, None)

    async def _dont_know(self, conversation_id: str, user_id: int,
                         prepared: PreparedChat) -> AsyncIterator[AnswerEvent]:
        """No relevant passage (or the model too busy to answer in time): say so and offer a human, without asking
        the model to guess."""
        answer_id = await asyncio.to_thread(
            self.store.conversations.add_message, conversation_id, "assistant", prepared.canned, "complete", None,
            {"sources": [], "grounded": False, "reason": prepared.canned_reason, "handoff_offered": True},
        )
        yield AnswerEvent("accepted", {"message_id": user_id, "answer_id": answer_id})
        async for event in self.serving.stream(prepared):
            if event.type == "done":
                why = "no_source" if prepared.canned_reason == "no_relevant_source" else prepared.canned_reason
                yield AnswerEvent("done", {"message_id": answer_id, "status": "complete", "finish_reason": why,
                                           "handoff_offered": True})
            else:
                yield AnswerEvent(event.type, event.data)

    async def _canned_reply(self, conversation_id: str, user_id: int,
                            prepared: PreparedChat) -> AsyncIterator[AnswerEvent]:
        """An answer the model does not write, served as it is: one the support team approved for this question
        (`curated`), or the reply to a greeting, thanks or goodbye (`small_talk`)."""
        reason = prepared.canned_reason
        curated = {"curated": prepared.curated} if reason == "curated" else {}
        answer_id = await asyncio.to_thread(
            self.store.conversations.add_message, conversation_id, "assistant", prepared.canned, "complete", None,
            {"sources": [], "grounded": False, "reason": reason} | curated)
        if curated:
            await asyncio.to_thread(self.store.curated.count_served, prepared.curated["id"])
        yield AnswerEvent("accepted", {"message_id": user_id, "answer_id": answer_id})
        yield AnswerEvent("delta", {"text": prepared.canned})
        yield AnswerEvent("done", {"message_id": answer_id, "status": "complete", "finish_reason": reason}
                          | curated)

    async def _stream_and_store(self, answer_id: int, prepared: PreparedChat) -> AsyncIterator[AnswerEvent]:
        """The serving layer's events for the client; the answer stored when it ends (or breaks)."""
        started = time.perf_counter()
        parts: list[str] = []
        final: dict = {}
        outcome = ("partial", "the stream was interrupted before the answer ended")
        try:
            async with aclosing(self.serving.stream(prepared)) as events:
                async for event in events:
                    if event.type == "delta":
                        parts.append(event.data["text"])
                    elif event.type == "replace":  # what was said is replaced; the stored answer is the refusal
                        parts = [event.data["text"]]
                    elif event.type == "done":
                        final = event.data
                        outcome = ("complete", None)
                        continue
                    elif event.type == "error":
                        outcome = ("partial" if parts else "error", event.data["message"])
                        continue
                    yield AnswerEvent(event.type, event.data)
        finally:
            # synchronous on purpose: this must run even when the task is being cancelled
            self.store.conversations.finish_message(
                answer_id, "".join(parts), outcome[0], outcome[1],
                prompt_tokens=final.get("prompt_tokens"), completion_tokens=final.get("completion_tokens"),
                latency_ms=(time.perf_counter() - started) * 1000,
                metadata={k: final[k] for k in ("style", "check", "reason") if k in final},
            )
        if outcome[0] == "complete":
            yield AnswerEvent("done", {"message_id": answer_id, "status": "complete",
                                       "finish_reason": final.get("finish_reason") or "stop"}
                              | ({"reason": final["reason"]} if "reason" in final else {}))
        else:
            yield AnswerEvent("error", {"message": f"the assistant could not finish its answer: {outcome[1]}",
                                        "message_id": answer_id, "status": outcome[0]})
