"""Store operations used by the API: conversations and their messages, committed one step at a time."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from assistant.store import migrate
from assistant.store.schema import Conversation, Message, utcnow


class ConversationNotFoundError(LookupError):
    def __init__(self, conversation_id: str):
        super().__init__(f"no conversation with id '{conversation_id}'")
        self.conversation_id = conversation_id


def _enable_sqlite_wal(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()


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
        "created_at": _iso(message.created_at),
        "completed_at": _iso(message.completed_at),
    }


def conversation_dict(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "customer_id": conversation.customer_id,
        "channel": conversation.channel,
        "status": conversation.status,
        "created_at": _iso(conversation.created_at),
        "updated_at": _iso(conversation.updated_at),
        "metadata": conversation.meta or {},
    }


def _iso(value: datetime | None) -> str | None:
    """ISO time in UTC (SQLite drops the zone on read: the values are stored in UTC)."""
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


class Store:
    """A conversation store on one database URL; the schema is migrated to head on open."""

    def __init__(self, url: str):
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self.engine = create_engine(url, pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            _enable_sqlite_wal(self.engine)
        migrate.upgrade(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    def session(self) -> Session:
        return self._sessions()

    def create_conversation(self, customer_id: str | None = None, channel: str = "api",
                            metadata: dict | None = None) -> dict[str, Any]:
        with self.session() as session, session.begin():
            conversation = Conversation(customer_id=customer_id, channel=channel, meta=metadata or {})
            session.add(conversation)
        return conversation_dict(conversation)

    def get_conversation(self, conversation_id: str) -> dict[str, Any]:
        with self.session() as session:
            conversation = session.get(Conversation, conversation_id)
            if conversation is None:
                raise ConversationNotFoundError(conversation_id)
            return conversation_dict(conversation)

    def add_message(self, conversation_id: str, role: str, content: str, status: str = "complete",
                    model: str | None = None, metadata: dict | None = None) -> int:
        """Commit one message now and return its id."""
        with self.session() as session, session.begin():
            conversation = session.get(Conversation, conversation_id)
            if conversation is None:
                raise ConversationNotFoundError(conversation_id)
            message = Message(conversation_id=conversation_id, role=role, content=content, status=status,
                              model=model, meta=metadata or {},
                              completed_at=utcnow() if status == "complete" else None)
            session.add(message)
            conversation.updated_at = utcnow()
        return message.id

    def finish_message(self, message_id: int, content: str, status: str, error: str | None = None,
                       prompt_tokens: int | None = None, completion_tokens: int | None = None,
                       latency_ms: float | None = None) -> None:
        """Commit the final text of an answer: `complete`, or `partial`/`error` when the stream broke."""
        with self.session() as session, session.begin():
            message = session.get(Message, message_id)
            message.content = content
            message.status = status
            message.error = error
            message.prompt_tokens = prompt_tokens
            message.completion_tokens = completion_tokens
            message.latency_ms = latency_ms
            message.completed_at = utcnow()

    def messages(self, conversation_id: str, limit: int | None = None) -> list[dict[str, Any]]:
        """Messages of a conversation, oldest first (the last `limit` if given)."""
        with self.session() as session:
            if session.get(Conversation, conversation_id) is None:
                raise ConversationNotFoundError(conversation_id)
            query = select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id.desc())
            if limit:
                query = query.limit(limit)
            rows = session.scalars(query).all()
            return [message_dict(m) for m in reversed(rows)]
