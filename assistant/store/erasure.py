"""Erasure of customers' data: one customer everywhere, or everything past the retention period."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select

from assistant.store.database import Repository
from assistant.store.records import ErasureResult
from assistant.store.schema import (
    Conversation,
    Feedback,
    Message,
)


class PrivacyRepository(Repository):
    """`store.privacy`."""

    def _erase(self, where) -> ErasureResult:
        with self.session() as session, session.begin():
            ids = list(session.scalars(select(Conversation.id).where(where)))
            if not ids:
                return ErasureResult(conversations=0, messages=0, feedback=0, ids=[])
            messages = session.scalar(select(func.count(Message.id)).where(Message.conversation_id.in_(ids)))
            feedback = session.scalar(select(func.count(Feedback.id)).join(Message, Feedback.message_id == Message.id)
                                      .where(Message.conversation_id.in_(ids)))
            session.execute(delete(Conversation).where(Conversation.id.in_(ids)))
        return ErasureResult(conversations=len(ids), messages=messages or 0, feedback=feedback or 0, ids=ids)

    def erase_customer(self, customer_id: str) -> ErasureResult:
        """Delete every conversation of this customer with all that hangs on it; returns counts and the `ids`."""
        return self._erase(Conversation.customer_id == customer_id)

    def purge_before(self, cutoff: datetime) -> ErasureResult:
        """Delete conversations with no activity since `cutoff` (the retention period)."""
        return self._erase(Conversation.updated_at < cutoff)
