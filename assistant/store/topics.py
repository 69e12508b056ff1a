"""Topics of customer questions and the topic of each conversation (its first customer question), kept so the
Insights view counts per topic without grouping again; new conversations are assigned as they arrive."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import delete, func, select, update

from assistant.store.database import Repository
from assistant.store.errors import TopicError
from assistant.store.records import TopicRecord
from assistant.store.schema import Conversation, ConversationTopic, Message, TopicRow, utcnow


@dataclass(frozen=True)
class FoundTopic:
    """A topic just found, before it is stored."""

    label: str
    encoder: str
    centre: np.ndarray
    min_similarity: float
    size: int
    examples: tuple[str, ...]
    name: str | None = None  # carried over from the topic it replaces
    merged_into: int | None = None  # index, in the same finding, of the topic it stays merged into


@dataclass(frozen=True)
class TopicCentre:
    topic: TopicRecord
    centre: np.ndarray
    min_similarity: float


def first_questions(conversation_ids: list[str] | None = None):
    """Subquery: each conversation's (or each of these conversations') first customer message id."""
    query = select(Message.conversation_id, func.min(Message.id).label("message_id")).where(Message.role == "user")
    if conversation_ids is not None:
        query = query.where(Message.conversation_id.in_(conversation_ids))
    return query.group_by(Message.conversation_id).subquery()


def first_question_texts(conversation_ids: list[str] | None = None, length: int = 500):
    """Select: (conversation id, the first `length` characters of its first customer question) of each conversation
    (or of these) that has one."""
    first = first_questions(conversation_ids)
    return (select(Conversation.id, func.substr(Message.content, 1, length))
            .join(first, first.c.conversation_id == Conversation.id).join(Message, Message.id == first.c.message_id))


def _in_use():
    return select(TopicRow).where(TopicRow.retired_at.is_(None)).order_by(TopicRow.id)


class TopicRepository(Repository):
    """`store.topics`."""

    def current(self) -> list[TopicRecord]:
        """The topics in use (merged ones included, with `merged_into`), in the order they were found."""
        with self.session() as session:
            return [TopicRecord.of(row) for row in session.scalars(_in_use())]

    def centres(self) -> list[TopicCentre]:
        """The topics in use with their centres, as `current`."""
        with self.session() as session:
            return [TopicCentre(TopicRecord.of(row), np.frombuffer(row.centre, dtype=np.float32),
                                row.min_similarity) for row in session.scalars(_in_use())]

    def replace(self, found: list[FoundTopic], assigned: list[tuple[str, int | None, float]]) -> list[TopicRecord]:
        """Retire the current topics and store `found`; `assigned`: (conversation id, index in `found` or None,
        similarity) for the conversations grouped. Conversations not in `assigned` are assigned again later."""
        now = utcnow()
        with self.session() as session, session.begin():
            session.execute(update(TopicRow).where(TopicRow.retired_at.is_(None)).values(retired_at=now))
            session.execute(delete(ConversationTopic))
            rows = [TopicRow(label=t.label[:200], name=t.name, encoder=t.encoder,
                             centre=np.asarray(t.centre, dtype=np.float32).tobytes(),
                             min_similarity=float(t.min_similarity), size=t.size, examples=list(t.examples),
                             found_at=now) for t in found]
            session.add_all(rows)
            session.flush()
            for row, topic in zip(rows, found, strict=True):
                if topic.merged_into is not None:
                    row.merged_into = rows[topic.merged_into].id
            session.execute(ConversationTopic.__table__.insert(), [
                {"conversation_id": c, "topic_id": None if i is None else rows[i].id, "similarity": s,
                 "assigned_at": now} for c, i, s in assigned] or [])
            return [TopicRecord.of(row) for row in rows]

    def _live(self, session, topic_id: int) -> TopicRow:
        row = session.get(TopicRow, topic_id)
        if row is None or row.retired_at is not None:
            raise TopicError(f"no topic {topic_id} (topics found again since? reload the page)")
        return row

    def rename(self, topic_id: int, name: str) -> TopicRecord:
        name = " ".join(name.split())
        if not name:
            raise TopicError("a topic's name cannot be empty")
        with self.session() as session, session.begin():
            row = self._live(session, topic_id)
            row.name = name[:200]
            session.flush()
            return TopicRecord.of(row)

    def merge(self, topic_id: int, into_id: int) -> TopicRecord:
        """Merge a topic into another: its conversations (and the questions that join it later) count there."""
        with self.session() as session, session.begin():
            target = self._live(session, into_id)
            while target.merged_into is not None:
                target = self._live(session, target.merged_into)
            source = self._live(session, topic_id)
            if source.id == target.id or source.merged_into == target.id:
                raise TopicError(f"topic {topic_id} is already part of topic {target.id}: nothing to merge")
            if source.encoder != target.encoder:
                raise TopicError(f"topic {topic_id} and topic {into_id} group questions of different languages "
                                 f"({source.encoder}, {target.encoder}): they cannot be merged")
            session.execute(update(TopicRow).where(TopicRow.merged_into == source.id).values(merged_into=target.id))
            source.merged_into = target.id
            session.execute(update(ConversationTopic).where(ConversationTopic.topic_id == source.id)
                            .values(topic_id=target.id))
            session.flush()
            return TopicRecord.of(target)

    def unassigned(self, limit: int) -> list[tuple[str, str]]:
        """(conversation id, first customer question) of conversations without a topic yet, oldest first."""
        query = (first_question_texts()
                 .outerjoin(ConversationTopic, ConversationTopic.conversation_id == Conversation.id)
                 .where(ConversationTopic.conversation_id.is_(None)).order_by(Conversation.created_at).limit(limit))
        with self.session() as session:
            return [(c, text) for c, text in session.execute(query)]

    def assign(self, rows: list[tuple[str, int | None, float]]) -> None:
        """Store the topic (or None) of conversations; one already assigned meanwhile is left as it is."""
        if not rows:
            return
        with self.session() as session, session.begin():
            taken = set(session.scalars(select(ConversationTopic.conversation_id).where(
                ConversationTopic.conversation_id.in_([c for c, _, _ in rows]))))
            now = utcnow()
            fresh = [{"conversation_id": c, "topic_id": t, "similarity": s, "assigned_at": now}
                     for c, t, s in rows if c not in taken]
            if fresh:
                session.execute(ConversationTopic.__table__.insert(), fresh)

    def first_question_topics(self, conversation_ids: list[str]) -> dict[str, tuple[int, int | None]]:
        """(first customer message id, topic id or None) of those of the conversations that have a topic row."""
        found: dict[str, tuple[int, int | None]] = {}
        with self.session() as session:
            for start in range(0, len(conversation_ids), 5000):  # bounded IN lists
                some = conversation_ids[start:start + 5000]
                first = first_questions(some)
                found.update({c: (m, t) for c, m, t in session.execute(
                    select(ConversationTopic.conversation_id, first.c.message_id, ConversationTopic.topic_id)
                    .join(first, first.c.conversation_id == ConversationTopic.conversation_id))})
        return found
