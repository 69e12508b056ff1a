"""Human handoff: asking for a human, taking over, agent replies, handing back, the operators' overview."""

from __future__ import annotations

from sqlalchemy import func, select

from assistant.store.database import Repository
from assistant.store.errors import (
    HandoffError,
)
from assistant.store.lookups import display_name, find_conversation, open_handoff
from assistant.store.records import ConversationSummary, HandoffRequest, HandoffState
from assistant.store.schema import (
    Conversation,
    Handoff,
    Message,
    SentimentAlert,
    as_utc,
    utcnow,
)
from assistant.store.statuses import ConversationStatus, MessageStatus


class HandoffRepository(Repository):
    """`store.handoffs`."""

    def request_human(self, conversation_id: str, reason: str, detail: str | None = None) -> HandoffRequest:
        """Ask for a human (reason recorded); a conversation already waiting for or with a human keeps its request."""
        with self.session() as session, session.begin():
            conversation = find_conversation(session, conversation_id)
            if conversation.status == ConversationStatus.CLOSED:
                raise HandoffError(f"conversation '{conversation_id}' is closed; start a new one")
            pending = open_handoff(session, conversation_id)
            if conversation.status in (ConversationStatus.WAITING_HUMAN,
                                       ConversationStatus.HUMAN) and pending is not None:
                return HandoffRequest(handoff_id=pending.id, status=conversation.status, created=False)
            handoff = Handoff(conversation_id=conversation_id, reason=reason, detail=detail)
            session.add(handoff)
            conversation.status = ConversationStatus.WAITING_HUMAN
            conversation.updated_at = utcnow()
            session.flush()
            return HandoffRequest(handoff_id=handoff.id, status=ConversationStatus.WAITING_HUMAN, created=True)

    def take_over(self, conversation_id: str, agent: str) -> None:
        """An operator takes the conversation: from now on the bot never replies in it."""
        with self.session() as session, session.begin():
            conversation = find_conversation(session, conversation_id)
            if conversation.status == ConversationStatus.CLOSED:
                raise HandoffError(f"conversation '{conversation_id}' is closed")
            handoff = open_handoff(session, conversation_id)
            if handoff is None:
                handoff = Handoff(conversation_id=conversation_id, reason="operator_took_over")
                session.add(handoff)
            if handoff.agent and handoff.agent != agent and conversation.status == ConversationStatus.HUMAN:
                raise HandoffError(f"{handoff.agent} already has this conversation")
            handoff.agent, handoff.accepted_at = agent, handoff.accepted_at or utcnow()
            conversation.status = ConversationStatus.HUMAN
            conversation.updated_at = utcnow()

    def hand_back(self, conversation_id: str) -> None:
        """The bot answers again; the open handoff is resolved."""
        with self.session() as session, session.begin():
            conversation = find_conversation(session, conversation_id)
            if conversation.status == ConversationStatus.CLOSED:
                raise HandoffError(f"conversation '{conversation_id}' is closed")
            handoff = open_handoff(session, conversation_id)
            if handoff is not None:
                handoff.resolved_at = utcnow()
            conversation.status = ConversationStatus.BOT
            conversation.updated_at = utcnow()

    def handoff_state(self, conversation_id: str) -> HandoffState:
        """The conversation's status and, while a human is asked for or involved, the reason and the agent."""
        with self.session() as session:
            conversation = find_conversation(session, conversation_id)
            handoff = open_handoff(session, conversation_id)
            agent = handoff.agent if handoff else None
            return HandoffState(status=conversation.status, reason=handoff.reason if handoff else None,
                                agent=agent, agent_name=display_name(session, agent))

    def add_agent_message(self, conversation_id: str, agent: str, text: str) -> int:
        """A human agent's reply; only in a conversation the operator has taken over."""
        with self.session() as session, session.begin():
            conversation = find_conversation(session, conversation_id)
            if conversation.status != ConversationStatus.HUMAN:
                raise HandoffError(f"take the conversation over before replying (it is '{conversation.status}')")
            message = Message(conversation_id=conversation_id, role="agent", content=text,
                              status=MessageStatus.COMPLETE,
                              model=None, meta={"agent": agent, "agent_name": display_name(session, agent)},
                              completed_at=utcnow())
            session.add(message)
            conversation.updated_at = utcnow()
        return message.id

    def conversation_overview(self, status: str | None = None, limit: int = 200) -> list[ConversationSummary]:
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
                result.append(ConversationSummary(
                    id=conversation.id, status=conversation.status, customer_id=conversation.customer_id,
                    channel=conversation.channel, updated_at=as_utc(conversation.updated_at),
                    last_role=message.role if message else None, last_message=message.content if message else "",
                    sentiment=score.sentiment_label if score else None,
                    sentiment_score=score.sentiment_score if score else None,
                    handoff_reason=handoff.reason if handoff else None,
                    agent=handoff.agent if handoff else None,
                    waiting_since=as_utc(handoff.requested_at) if handoff and not handoff.accepted_at else None,
                    alerts=alerts.get(conversation.id, 0), csat=conversation.csat,
                ))
            return result
