"""Sentiment records: message scores, feed items, alerts."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from assistant.store.database import Repository
from assistant.store.records import ScoredText, SentimentAlertRecord, TrajectoryPoint, UnscoredMessage
from assistant.store.schema import (
    Conversation,
    FeedItem,
    Message,
    SentimentAlert,
    as_utc,
)
from assistant.store.statuses import MessageStatus


def feed_hash(text: str, published_at: datetime, source: str | None, entity: str | None) -> str:
    key = "\x1f".join([text, published_at.astimezone(UTC).isoformat(), source or "", entity or ""])
    return hashlib.sha1(key.encode()).hexdigest()


class SentimentRepository(Repository):
    """`store.sentiment`."""

    def unscored_messages(self, limit: int = 64) -> list[UnscoredMessage]:
        """Complete customer messages without a sentiment yet, oldest first."""
        with self.session() as session:
            rows = session.execute(
                select(Message.id, Message.conversation_id, Message.content)
                .where(Message.role == "user", Message.sentiment_label.is_(None),
                       Message.status == MessageStatus.COMPLETE)
                .order_by(Message.id).limit(limit)).all()
            return [UnscoredMessage(id=r.id, conversation_id=r.conversation_id, content=r.content) for r in rows]

    def set_message_sentiments(self, scores: list[tuple[int, str, float]]) -> None:
        """(message id, label, score) for each scored message, in one transaction."""
        with self.session() as session, session.begin():
            for message_id, label, score in scores:
                session.execute(update(Message).where(Message.id == message_id)
                                .values(sentiment_label=label, sentiment_score=score))

    def sentiment_trajectory(self, conversation_id: str) -> list[TrajectoryPoint]:
        """The scored customer messages of one conversation, in order."""
        with self.session() as session:
            rows = session.execute(
                select(Message.id, Message.created_at, Message.content, Message.sentiment_label,
                       Message.sentiment_score)
                .where(Message.conversation_id == conversation_id, Message.role == "user",
                       Message.sentiment_label.is_not(None))
                .order_by(Message.id)).all()
            return [TrajectoryPoint(message_id=r.id, created_at=as_utc(r.created_at), text=r.content,
                                    label=r.sentiment_label, score=r.sentiment_score) for r in rows]

    def scored_messages(self, since: datetime | None = None, until: datetime | None = None) -> list[ScoredText]:
        """Scored customer messages in a time range (for trends): time, text, label, score, conversation."""
        query = (select(Message.id, Message.conversation_id, Message.created_at, Message.content,
                        Message.sentiment_label, Message.sentiment_score, Conversation.channel)
                 .join(Conversation, Conversation.id == Message.conversation_id)
                 .where(Message.role == "user", Message.sentiment_label.is_not(None)))
        if since is not None:
            query = query.where(Message.created_at >= since)
        if until is not None:
            query = query.where(Message.created_at < until)
        with self.session() as session:
            return [ScoredText(id=r.id, time=as_utc(r.created_at), text=r.content, label=r.sentiment_label,
                               score=r.sentiment_score, source=f"chat:{r.channel}", entity=None, topic=None,
                               conversation_id=r.conversation_id)
                    for r in session.execute(query.order_by(Message.id))]

    def add_feed_items(self, items: list[dict[str, Any]]) -> tuple[int, int]:
        """Store scored feed items; returns (added, already stored). An item already stored is left as it was."""
        hashes = [feed_hash(i["text"], i["published_at"], i.get("source"), i.get("entity")) for i in items]
        with self.session() as session, session.begin():
            known = set()
            for start in range(0, len(hashes), 500):
                known |= set(session.scalars(select(FeedItem.content_hash)
                                             .where(FeedItem.content_hash.in_(hashes[start:start + 500]))))
            added = 0
            for item, digest in zip(items, hashes, strict=True):
                if digest in known:
                    continue
                known.add(digest)
                session.add(FeedItem(content_hash=digest, published_at=item["published_at"],
                                     source=item.get("source"), entity=item.get("entity"), topic=item.get("topic"),
                                     text=item["text"], sentiment_label=item["label"], sentiment_score=item["score"]))
                added += 1
        return added, len(items) - added

    def feed_items(self, since: datetime | None = None, until: datetime | None = None,
                   entity: str | None = None, limit: int | None = None) -> list[ScoredText]:
        """Stored feed items in a time range (of one entity), oldest first."""
        query = select(FeedItem).limit(limit)
        if since is not None:
            query = query.where(FeedItem.published_at >= since)
        if until is not None:
            query = query.where(FeedItem.published_at < until)
        if entity is not None:
            query = query.where(FeedItem.entity == entity)
        with self.session() as session:
            return [ScoredText(id=f.id, time=as_utc(f.published_at), text=f.text, label=f.sentiment_label,
                               score=f.sentiment_score, source=f.source, entity=f.entity, topic=f.topic)
                    for f in session.scalars(query.order_by(FeedItem.published_at, FeedItem.id))]

    def add_alert(self, key: str, scope: str, rule: str, detail: str, conversation_id: str | None = None,
                  entity: str | None = None, window_start: datetime | None = None) -> bool:
        """Store an alert unless one with the same key exists; True when it is new."""
        try:
            with self.session() as session, session.begin():
                session.add(SentimentAlert(key=key, scope=scope, rule=rule, detail=detail,
                                           conversation_id=conversation_id, entity=entity, window_start=window_start))
        except IntegrityError:
            return False
        return True

    def sentiment_alerts(self, limit: int = 200, scope: str | None = None,
                         conversation_id: str | None = None) -> list[SentimentAlertRecord]:
        """Alerts, newest first (of one scope or conversation)."""
        query = select(SentimentAlert).order_by(SentimentAlert.id.desc()).limit(limit)
        if scope:
            query = query.where(SentimentAlert.scope == scope)
        if conversation_id:
            query = query.where(SentimentAlert.conversation_id == conversation_id)
        with self.session() as session:
            return [SentimentAlertRecord(id=a.id, scope=a.scope, rule=a.rule, detail=a.detail,
                                         conversation_id=a.conversation_id, entity=a.entity,
                                         window_start=as_utc(a.window_start), created_at=as_utc(a.created_at))
                    for a in session.scalars(query)]
