"""Store operations of human handoff: asking for a human, taking over, agent replies, handing back, closing,
the operators' overview, transcript export, operator accounts (mixed into `Store`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from assistant.errors import AssistantError
from assistant.passwords import hash_password, verify_password
from assistant.store.schema import (
    Conversation,
    Feedback,
    Handoff,
    Message,
    Operator,
    SentimentAlert,
    as_utc,
    utcnow,
)


class HandoffError(AssistantError, ValueError):
    """A handoff step that does not fit the conversation's state; the message says what to do instead."""



class HandoffRecords:
    """Needs `self.session()` and `ConversationNotFoundError` handling (see `Store`)."""

    def _conversation(self, session, conversation_id: str) -> Conversation:
        from assistant.store.repository import ConversationNotFoundError

        conversation = session.get(Conversation, conversation_id)
        if conversation is None:
            raise ConversationNotFoundError(conversation_id)
        return conversation

    @staticmethod
    def _open_handoff(session, conversation_id: str) -> Handoff | None:
        return session.scalars(select(Handoff).where(Handoff.conversation_id == conversation_id,
                                                     Handoff.resolved_at.is_(None))
                               .order_by(Handoff.id.desc())).first()

    def request_human(self, conversation_id: str, reason: str, detail: str | None = None) -> dict[str, Any]:
        """Ask for a human (reason recorded); a conversation already waiting for or with a human keeps its request."""
        with self.session() as session, session.begin():
            conversation = self._conversation(session, conversation_id)
            if conversation.status == "closed":
                raise HandoffError(f"conversation '{conversation_id}' is closed; start a new one")
            open_handoff = self._open_handoff(session, conversation_id)
            if conversation.status in ("waiting_human", "human") and open_handoff is not None:
                return {"handoff_id": open_handoff.id, "status": conversation.status, "created": False}
            handoff = Handoff(conversation_id=conversation_id, reason=reason, detail=detail)
            session.add(handoff)
            conversation.status = "waiting_human"
            conversation.updated_at = utcnow()
            session.flush()
            return {"handoff_id": handoff.id, "status": "waiting_human", "created": True}

    def take_over(self, conversation_id: str, agent: str) -> None:
        """An operator takes the conversation: from now on the bot never replies in it."""
        with self.session() as session, session.begin():
            conversation = self._conversation(session, conversation_id)
            if conversation.status == "closed":
                raise HandoffError(f"conversation '{conversation_id}' is closed")
            handoff = self._open_handoff(session, conversation_id)
            if handoff is None:
                handoff = Handoff(conversation_id=conversation_id, reason="operator_took_over")
                session.add(handoff)
            if handoff.agent and handoff.agent != agent and conversation.status == "human":
                raise HandoffError(f"{handoff.agent} already has this conversation")
            handoff.agent, handoff.accepted_at = agent, handoff.accepted_at or utcnow()
            conversation.status = "human"
            conversation.updated_at = utcnow()

    def hand_back(self, conversation_id: str) -> None:
        """The bot answers again; the open handoff is resolved."""
        with self.session() as session, session.begin():
            conversation = self._conversation(session, conversation_id)
            if conversation.status == "closed":
                raise HandoffError(f"conversation '{conversation_id}' is closed")
            handoff = self._open_handoff(session, conversation_id)
            if handoff is not None:
                handoff.resolved_at = utcnow()
            conversation.status = "bot"
            conversation.updated_at = utcnow()

    def handoff_state(self, conversation_id: str) -> dict[str, Any]:
        """The conversation's status and, while a human is asked for or involved, the reason and the agent."""
        with self.session() as session:
            conversation = self._conversation(session, conversation_id)
            handoff = self._open_handoff(session, conversation_id)
            agent = handoff.agent if handoff else None
            return {"status": conversation.status, "reason": handoff.reason if handoff else None,
                    "agent": agent, "agent_name": self._display_name(session, agent)}

    @staticmethod
    def _display_name(session, username: str | None) -> str | None:
        if username is None:
            return None
        name = session.scalar(select(Operator.display_name).where(Operator.username == username))
        return name or username

    def add_agent_message(self, conversation_id: str, agent: str, text: str) -> int:
        """A human agent's reply; only in a conversation the operator has taken over."""
        with self.session() as session, session.begin():
            conversation = self._conversation(session, conversation_id)
            if conversation.status != "human":
                raise HandoffError(f"take the conversation over before replying (it is '{conversation.status}')")
            message = Message(conversation_id=conversation_id, role="agent", content=text, status="complete",
                              model=None, meta={"agent": agent, "agent_name": self._display_name(session, agent)},
                              completed_at=utcnow())
            session.add(message)
            conversation.updated_at = utcnow()
        return message.id

    def close_conversation(self, conversation_id: str, csat: int | None = None) -> None:
        """End the conversation (idempotent); `csat` is the customer's 1-5 rating, also accepted after closing."""
        if csat is not None and not 1 <= csat <= 5:
            raise HandoffError(f"csat must be 1 to 5, got {csat}")
        with self.session() as session, session.begin():
            conversation = self._conversation(session, conversation_id)
            handoff = self._open_handoff(session, conversation_id)
            if handoff is not None:
                handoff.resolved_at = utcnow()
            if conversation.status != "closed":
                conversation.status, conversation.closed_at = "closed", utcnow()
            if csat is not None:
                conversation.csat = csat
            conversation.updated_at = utcnow()

    def messages_after(self, conversation_id: str, after_id: int = 0) -> list[dict[str, Any]]:
        """Messages newer than `after_id` (what a waiting customer's page polls for)."""
        from assistant.store.repository import message_dict

        with self.session() as session:
            self._conversation(session, conversation_id)
            rows = session.scalars(select(Message).where(Message.conversation_id == conversation_id,
                                                         Message.id > after_id).order_by(Message.id)).all()
            return [message_dict(m) for m in rows]

    def conversation_overview(self, status: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """Newest first: status, last message, last customer sentiment, open handoff (reason, waiting since),
        alerts; what the operator console lists (a fixed number of queries, however many conversations)."""
        query = select(Conversation).order_by(Conversation.updated_at.desc()).limit(limit)
        if status:
            query = query.where(Conversation.status == status)
        with self.session() as session:
            conversations = session.scalars(query).all()
            ids = [c.id for c in conversations]
            newest = (select(func.max(Message.id)).where(Message.conversation_id.in_(ids))
                      .group_by(Message.conversation_id))
            last = {m.conversation_id: m for m in session.scalars(select(Message).where(Message.id.in_(newest)))}
            scored = (select(func.max(Message.id))
                      .where(Message.conversation_id.in_(ids), Message.role == "user",
                             Message.sentiment_label.is_not(None)).group_by(Message.conversation_id))
            feeling = {r.conversation_id: r for r in session.execute(
                select(Message.conversation_id, Message.sentiment_label, Message.sentiment_score)
                .where(Message.id.in_(scored)))}
            handoffs = {h.conversation_id: h for h in session.scalars(  # ascending: the newest open one wins
                select(Handoff).where(Handoff.conversation_id.in_(ids), Handoff.resolved_at.is_(None))
                .order_by(Handoff.id))}
            alerts = dict(session.execute(select(SentimentAlert.conversation_id, func.count(SentimentAlert.id))
                                          .where(SentimentAlert.conversation_id.in_(ids))
                                          .group_by(SentimentAlert.conversation_id)).all())
            result = []
            for conversation in conversations:
                message, score = last.get(conversation.id), feeling.get(conversation.id)
                handoff = handoffs.get(conversation.id)
                result.append({
                    "id": conversation.id, "status": conversation.status, "customer_id": conversation.customer_id,
                    "channel": conversation.channel, "updated_at": as_utc(conversation.updated_at),
                    "last_role": message.role if message else None, "last_message": message.content if message else "",
                    "sentiment": score.sentiment_label if score else None,
                    "sentiment_score": score.sentiment_score if score else None,
                    "handoff_reason": handoff.reason if handoff else None,
                    "agent": handoff.agent if handoff else None,
                    "waiting_since": as_utc(handoff.requested_at) if handoff and not handoff.accepted_at else None,
                    "alerts": alerts.get(conversation.id, 0), "csat": conversation.csat,
                })
            return result

    def transcript(self, conversation_id: str) -> list[dict[str, Any]]:
        """Every message with its latest feedback (rating, comment, correction): the operator's view."""
        with self.session() as session:
            self._conversation(session, conversation_id)
            messages = session.scalars(select(Message).where(Message.conversation_id == conversation_id)
                                       .order_by(Message.id)).all()
            feedback: dict[int, dict] = {}
            for row in session.scalars(select(Feedback).join(Message, Feedback.message_id == Message.id)
                                       .where(Message.conversation_id == conversation_id).order_by(Feedback.id)):
                latest = feedback.setdefault(row.message_id, {"rating": None, "comment": None, "corrected_text": None})
                for key in latest:
                    value = getattr(row, key)
                    latest[key] = value if value not in (None, "") else latest[key]
            return [{"id": m.id, "role": m.role, "content": m.content, "status": m.status,
                     "agent": (m.meta or {}).get("agent"), "created_at": as_utc(m.created_at),
                     "sentiment": m.sentiment_label, "feedback": feedback.get(m.id)} for m in messages]

    def export_transcripts(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Conversations created in [start, end) in the transcript format of `assistant align`
        (`{"id", "messages": [{"role", "content"}], "metadata"}`); empty and broken messages are left out."""
        with self.session() as session:
            conversations = session.scalars(select(Conversation).where(Conversation.created_at >= start,
                                                                       Conversation.created_at < end)
                                            .order_by(Conversation.created_at)).all()
            rows = []
            for conversation in conversations:
                messages = session.scalars(select(Message).where(Message.conversation_id == conversation.id,
                                                                 Message.status == "complete")
                                           .order_by(Message.id)).all()
                kept = [{"role": m.role, "content": m.content} for m in messages
                        if m.content.strip() and m.role in ("user", "assistant", "agent")]
                if kept:
                    rows.append({"id": conversation.id, "messages": kept, "metadata": {
                        "channel": conversation.channel, "customer_id": conversation.customer_id,
                        "status": conversation.status, "csat": conversation.csat,
                        "created_at": as_utc(conversation.created_at).isoformat()}})
            return rows

    def create_operator(self, username: str, password: str, display_name: str | None = None) -> None:
        if not username.strip() or len(password) < 8:
            raise HandoffError("an operator needs a username and a password of at least 8 characters")
        try:
            with self.session() as session, session.begin():
                session.add(Operator(username=username.strip(), display_name=display_name or username.strip(),
                                     password_hash=hash_password(password)))
        except IntegrityError as exc:
            raise HandoffError(f"operator '{username}' already exists") from exc

    def verify_operator(self, username: str, password: str) -> dict[str, Any] | None:
        """The operator's name when the password matches an enabled account, else None."""
        with self.session() as session:
            operator = session.scalars(select(Operator).where(Operator.username == username)).first()
            if operator is None or operator.disabled or not verify_password(password, operator.password_hash):
                return None
            return {"username": operator.username, "display_name": operator.display_name}

    def operator_count(self) -> int:
        with self.session() as session:
            return session.scalar(select(func.count(Operator.id))) or 0
