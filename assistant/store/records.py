"""Rows as the records the store returns (every time an aware datetime in UTC: the API renders them as ISO 8601),
and lookups every repository shares."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from assistant.store.errors import ConversationNotFoundError
from assistant.store.schema import Conversation, Handoff, Message, Operator, as_utc


def utc(value: datetime | None) -> datetime | None:
    """The stored time as an aware UTC datetime (SQLite drops the zone on read: the values are stored in UTC)."""
    return None if value is None else as_utc(value)


def message_dict(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "role": message.role,
        "content": message.content,
        "status": message.status,
        "error": message.error,
        "model": message.model,
        "sources": (message.meta or {}).get("sources", []),
        "metadata": message.meta or {},
        "created_at": utc(message.created_at),
        "completed_at": utc(message.completed_at),
    }


def conversation_dict(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "customer_id": conversation.customer_id,
        "channel": conversation.channel,
        "status": conversation.status,
        "created_at": utc(conversation.created_at),
        "updated_at": utc(conversation.updated_at),
        "closed_at": utc(conversation.closed_at),
        "csat": conversation.csat,
        "metadata": conversation.meta or {},
    }


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
