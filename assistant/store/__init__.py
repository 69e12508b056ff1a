"""The conversation store: SQLAlchemy over SQLite (default, WAL) or PostgreSQL, migrated with Alembic."""

from assistant.store.repository import ConversationNotFoundError, Store

__all__ = ["ConversationNotFoundError", "Store"]
