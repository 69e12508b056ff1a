"""Row lookups every repository shares: a conversation (or its not-found error), its open handoff, a display name."""

from __future__ import annotations

from sqlalchemy import select

from assistant.store.errors import ConversationNotFoundError
from assistant.store.schema import Conversation, Handoff, Operator


def find_conversation(session, conversation_id: str) -> Conversation:
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise ConversationNotFoundError(conversation_id)
    return conversation


def open_handoff(session, conversation_id: str) -> Handoff | None:
    return session.scalars(select(Handoff).where(Handoff.conversation_id == conversation_id,
                                                 Handoff.resolved_at.is_(None))
                           .order_by(Handoff.id.desc())).first()


def display_name(session, username: str | None) -> str | None:
    if username is None:
        return None
    name = session.scalar(select(Operator.display_name).where(Operator.username == username))
    return name or username
