"""The conversation store: SQLAlchemy over SQLite (default, WAL) or PostgreSQL, migrated with Alembic."""

from assistant.store.handoff_records import HandoffError
from assistant.store.repository import ConversationNotFoundError, MessageNotFoundError, Store

__all__ = ["ConversationNotFoundError", "HandoffError", "MessageNotFoundError", "Store"]
