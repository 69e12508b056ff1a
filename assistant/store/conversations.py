"""Conversations and their messages: create, append, finish an answer, history, feedback, transcripts, close."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from assistant.store.database import Repository
from assistant.store.errors import (
    ConversationNotFoundError,
    HandoffError,
    MessageNotFoundError,
)
from assistant.store.lookups import find_conversation, open_handoff
from assistant.store.records import ConversationRecord, FeedbackSummary, MessageRecord, TranscriptEntry
from assistant.store.schema import (
    Conversation,
    Feedback,
    Handoff,
    Message,
    as_utc,
    utcnow,
)
from assistant.store.statuses import ConversationStatus, MessageStatus
from retrieval.embeddings import mostly_chinese


def writer_id() -> str:
    """This process, as recorded on an answer it streams (see `Store.recover_interrupted`)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def replica_name() -> str:
    """A name for one server in this process (`host:pid/random`): recorded on the answers it streams, held as its
    presence lease (assistant/shared_work.py)."""
    return f"{writer_id()}/{uuid.uuid4().hex[:8]}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: alive
    return True


class ConversationRepository(Repository):
    """`store.conversations`."""

    def create_conversation(self, customer_id: str | None = None, channel: str = "api",
                            metadata: dict | None = None, owner: str | None = None) -> ConversationRecord:
        with self.session() as session, session.begin():
            conversation = Conversation(customer_id=customer_id, channel=channel, meta=metadata or {}, owner=owner)
            session.add(conversation)
        return ConversationRecord.from_row(conversation)

    def owner(self, conversation_id: str) -> str | None:
        """Who the conversation belongs to (see assistant/ownership.py)."""
        with self.session() as session:
            found = session.execute(select(Conversation.id, Conversation.owner)
                                    .where(Conversation.id == conversation_id)).first()
        if found is None:
            raise ConversationNotFoundError(conversation_id)
        return found.owner

    def conversation_of_answer(self, message_id: int) -> str:
        """The conversation a bot answer belongs to."""
        with self.session() as session:
            message = session.get(Message, message_id)
            if message is None or message.role != "assistant":
                raise MessageNotFoundError(message_id, "no bot answer with this id")
            return message.conversation_id

    def get_conversation(self, conversation_id: str) -> ConversationRecord:
        with self.session() as session:
            conversation = session.get(Conversation, conversation_id)
            if conversation is None:
                raise ConversationNotFoundError(conversation_id)
            return ConversationRecord.from_row(conversation)

    def add_message(self, conversation_id: str, role: str, content: str, status: str = MessageStatus.COMPLETE,
                    model: str | None = None, metadata: dict | None = None) -> int:
        """Commit one message now and return its id."""
        with self.session() as session, session.begin():
            conversation = session.get(Conversation, conversation_id)
            if conversation is None:
                raise ConversationNotFoundError(conversation_id)
            now = utcnow()
            message = Message(conversation_id=conversation_id, role=role, content=content, status=status,
                              model=model, meta=metadata or {}, created_at=now,
                              completed_at=now if status == MessageStatus.COMPLETE else None)
            session.add(message)
            conversation.updated_at = now
            if role == "user" and conversation.first_user_at is None:
                conversation.first_user_at = now
                conversation.language = "zh" if mostly_chinese(content) else "en"
            elif role == "assistant" and conversation.first_answer_at is None:
                conversation.first_answer_at = now
        return message.id

    def recover_interrupted(self, older_than: timedelta = timedelta(hours=1),
                            dead_writers: Collection[str] = ()) -> int:
        """Answers left `streaming` by a process that died (this host, pid gone; or one of `dead_writers`, replicas
        whose presence lapsed) or for longer than `older_than` (any host) become `partial`, so no view waits for
        them forever; returns how many."""
        host = writer_id().rpartition(":")[0]
        cutoff = utcnow() - older_than
        with self.session() as session, session.begin():
            stuck = session.scalars(select(Message).where(Message.status == MessageStatus.STREAMING)).all()
            recovered = 0
            for message in stuck:
                writer = str((message.meta or {}).get("writer", ""))
                writer_host, _, pid = writer.partition("/")[0].rpartition(":")
                dead = writer in dead_writers or (writer_host == host and pid.isdigit() and not _alive(int(pid)))
                if dead or as_utc(message.created_at) < cutoff:
                    message.status = MessageStatus.PARTIAL
                    message.error = "the server stopped while this answer was written"
                    message.completed_at = utcnow()
                    recovered += 1
            return recovered

    def streaming_writers(self) -> set[str]:
        """The servers (`replica_name`) with answers being written now."""
        with self.session() as session:
            metas = session.scalars(select(Message.meta).where(Message.status == MessageStatus.STREAMING)).all()
        return {str(meta["writer"]) for meta in metas if meta and meta.get("writer")}

    def resent_message(self, conversation_id: str, client_message_id: str) -> tuple[int, MessageRecord | None] | None:
        """A customer message already stored under this client id (a retried or double submit), with the answer
        that followed it (None while there is none), or None when the id is new."""
        with self.session() as session:
            sent = session.scalars(select(Message).where(
                Message.conversation_id == conversation_id, Message.role == "user",
                Message.meta["client_message_id"].as_string() == client_message_id)).first()
            if sent is None:
                return None
            answer = session.scalars(select(Message).where(
                Message.conversation_id == conversation_id, Message.id > sent.id).order_by(Message.id)).first()
            answered = answer is not None and answer.role == "assistant"
            return sent.id, MessageRecord.from_row(answer) if answered else None

    def finish_message(self, message_id: int, content: str, status: str, error: str | None = None,
                       prompt_tokens: int | None = None, completion_tokens: int | None = None,
                       latency_ms: float | None = None, metadata: dict | None = None) -> None:
        """Commit the final text of an answer: `complete`, or `partial`/`error` when the stream broke; `metadata`
        is added to what the message already carries (the support check's verdict, say)."""
        with self.session() as session, session.begin():
            message = session.get(Message, message_id)
            if metadata:
                message.meta = {**(message.meta or {}), **metadata}
            message.content = content
            message.status = status
            message.error = error
            message.prompt_tokens = prompt_tokens
            message.completion_tokens = completion_tokens
            message.latency_ms = latency_ms
            message.completed_at = utcnow()

    def messages(self, conversation_id: str, limit: int | None = None) -> list[MessageRecord]:
        """Messages of a conversation, oldest first (the last `limit` if given)."""
        with self.session() as session:
            if session.get(Conversation, conversation_id) is None:
                raise ConversationNotFoundError(conversation_id)
            query = select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id.desc())
            if limit:
                query = query.limit(limit)
            rows = session.scalars(query).all()
            return [MessageRecord.from_row(m) for m in reversed(rows)]

    def add_feedback(self, message_id: int, rating: int | None = None, comment: str | None = None,
                     corrected_text: str | None = None, author: str | None = None) -> int:
        """Store a rating (+1/-1), comment or correction of one bot answer; returns the feedback id."""
        with self.session() as session, session.begin():
            message = session.get(Message, message_id)
            if message is None or message.role != "assistant":
                raise MessageNotFoundError(message_id, "no bot answer with this id")
            feedback = Feedback(message_id=message_id, rating=rating, comment=comment,
                                corrected_text=corrected_text, author=author)
            session.add(feedback)
        return feedback.id

    def alignment_cursor(self) -> dict[str, int]:
        """The newest message and feedback ids: what a training run has seen."""
        with self.session() as session:
            return {"message_id": session.scalar(select(func.max(Message.id))) or 0,
                    "feedback_id": session.scalar(select(func.max(Feedback.id))) or 0}

    def conversations_for_alignment(self, after: dict[str, int] | None = None) -> list[dict[str, Any]]:
        """Conversations with new messages or new feedback since `after` (a cursor), with their complete
        messages, the latest feedback per answer, and whether a human was asked for.

        Dicts, not records: this is the transcript data contract alignment reads (see `records`)."""
        after = after or {}
        with self.session() as session:
            touched = set(session.scalars(select(Message.conversation_id)
                                          .where(Message.id > after.get("message_id", 0))))
            touched |= set(session.scalars(
                select(Message.conversation_id).join(Feedback, Feedback.message_id == Message.id)
                .where(Feedback.id > after.get("feedback_id", 0))))
            result = []
            for conversation_id in sorted(touched):
                messages = session.scalars(select(Message).where(Message.conversation_id == conversation_id)
                                           .order_by(Message.id)).all()
                feedback = {}
                for row in session.scalars(select(Feedback).join(Message, Feedback.message_id == Message.id)
                                           .where(Message.conversation_id == conversation_id)
                                           .order_by(Feedback.id)):
                    latest = feedback.setdefault(row.message_id, {"rating": None, "corrected_text": None})
                    latest["rating"] = row.rating if row.rating is not None else latest["rating"]
                    latest["corrected_text"] = row.corrected_text or latest["corrected_text"]
                handoffs = session.scalar(select(func.count(Handoff.id))
                                          .where(Handoff.conversation_id == conversation_id))
                result.append({
                    "id": conversation_id, "handoff": bool(handoffs), "feedback": feedback,
                    "messages": [{"id": m.id, "role": m.role, "content": m.content, "status": m.status,
                                  "sources": (m.meta or {}).get("sources") or []}
                                 for m in messages
                                 if (m.status == MessageStatus.COMPLETE and m.content.strip())
                                 or (feedback.get(m.id) or {}).get("corrected_text")],  # a corrected broken one
                })
            return result

    def messages_after(self, conversation_id: str, after_id: int = 0) -> list[MessageRecord]:
        """Messages newer than `after_id` (what a waiting customer's page polls for)."""
        with self.session() as session:
            find_conversation(session, conversation_id)
            rows = session.scalars(select(Message).where(Message.conversation_id == conversation_id,
                                                         Message.id > after_id).order_by(Message.id)).all()
            return [MessageRecord.from_row(m) for m in rows]

    def close_conversation(self, conversation_id: str, csat: int | None = None) -> None:
        """End the conversation (idempotent); `csat` is the customer's 1-5 rating, also accepted after closing."""
        if csat is not None and not 1 <= csat <= 5:
            raise HandoffError(f"csat must be 1 to 5, got {csat}")
        with self.session() as session, session.begin():
            conversation = find_conversation(session, conversation_id)
            handoff = open_handoff(session, conversation_id)
            if handoff is not None:
                handoff.resolved_at = utcnow()
            if conversation.status != ConversationStatus.CLOSED:
                conversation.status, conversation.closed_at = ConversationStatus.CLOSED, utcnow()
            if csat is not None:
                conversation.csat = csat
            conversation.updated_at = utcnow()

    def transcript(self, conversation_id: str) -> list[TranscriptEntry]:
        """Every message with its latest feedback (rating, comment, correction): the operator's view."""
        with self.session() as session:
            find_conversation(session, conversation_id)
            messages = session.scalars(select(Message).where(Message.conversation_id == conversation_id)
                                       .order_by(Message.id)).all()
            feedback: dict[int, FeedbackSummary] = {}
            for row in session.scalars(select(Feedback).join(Message, Feedback.message_id == Message.id)
                                       .where(Message.conversation_id == conversation_id).order_by(Feedback.id)):
                latest = feedback.get(row.message_id, FeedbackSummary())
                feedback[row.message_id] = FeedbackSummary(
                    rating=row.rating if row.rating is not None else latest.rating,
                    comment=row.comment or latest.comment, corrected_text=row.corrected_text or latest.corrected_text)
            entries = []
            for m in messages:
                check = (m.meta or {}).get("check") or {}
                entries.append(TranscriptEntry(
                    id=m.id, role=m.role, content=m.content, status=m.status, agent=(m.meta or {}).get("agent"),
                    created_at=as_utc(m.created_at), sentiment=m.sentiment_label, feedback=feedback.get(m.id),
                    cut=tuple((c["text"].strip(), c["reason"]) for c in check.get("cut", [])),
                    fell_back=bool(check.get("fell_back"))))
            return entries

    def export_transcripts(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Conversations created in [start, end) in the transcript format of `assistant align`
        (`{"id", "messages": [{"role", "content"}], "metadata"}`); empty and broken messages are left out.
        Dicts, not records: this is the transcript data contract of `assistant align` (see `records`)."""
        with self.session() as session:
            conversations = session.scalars(select(Conversation).where(Conversation.created_at >= start,
                                                                       Conversation.created_at < end)
                                            .order_by(Conversation.created_at)).all()
            rows = []
            for conversation in conversations:
                messages = session.scalars(select(Message).where(Message.conversation_id == conversation.id,
                                                                 Message.status == MessageStatus.COMPLETE)
                                           .order_by(Message.id)).all()
                kept = [{"role": m.role, "content": m.content} for m in messages
                        if m.content.strip() and m.role in ("user", "assistant", "agent")]
                if kept:
                    rows.append({"id": conversation.id, "messages": kept, "metadata": {
                        "channel": conversation.channel, "customer_id": conversation.customer_id,
                        "status": conversation.status, "csat": conversation.csat,
                        "created_at": as_utc(conversation.created_at).isoformat()}})
            return rows
