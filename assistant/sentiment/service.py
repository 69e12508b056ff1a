"""What the sentiment view and API read: scored chat messages or feed items, alerts, a conversation's trajectory."""

from __future__ import annotations

import asyncio
from typing import Literal

from assistant.store import Store
from assistant.store.records import ScoredText, SentimentAlertRecord, TrajectoryPoint


class SentimentService:
    def __init__(self, store: Store):
        self.store = store

    async def rows(self, kind: Literal["chats", "feeds"]) -> list[ScoredText]:
        """Every scored customer message (`chats`) or feed item (`feeds`), for trends and drill-down."""
        read = self.store.sentiment.feed_items if kind == "feeds" else self.store.sentiment.scored_messages
        return await asyncio.to_thread(read)

    async def alerts(self, limit: int = 200, scope: str | None = None,
                     conversation_id: str | None = None) -> list[SentimentAlertRecord]:
        return await asyncio.to_thread(self.store.sentiment.sentiment_alerts, limit, scope, conversation_id)

    async def trajectory(self, conversation_id: str) -> list[TrajectoryPoint]:
        """The conversation's customer turns with their scores (404-style error when it does not exist)."""
        await asyncio.to_thread(self.store.conversations.get_conversation, conversation_id)
        return await asyncio.to_thread(self.store.sentiment.sentiment_trajectory, conversation_id)
