"""What the Insights view and API ask of a deployment: outcomes, knowledge gaps with drafts, publishing."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime

from assistant.engines.base import ChatMessage, GenerationParams
from assistant.insights.gaps import GapError, KnowledgeGap, draft_messages, knowledge_gaps, publish_article
from assistant.insights.outcomes import OutcomeFilter
from assistant.insights.stored_topics import assign_new, find_topics, topic_conversations, topic_outcomes
from assistant.store.records import TopicRecord

log = logging.getLogger(__name__)


class InsightsService:
    def __init__(self, settings, store, serving):
        self.settings, self.store, self.serving = settings, store, serving

    @property
    def published_folder(self):
        return self.settings.home_dir / "published"

    async def gaps(self, since: datetime, until: datetime) -> list[KnowledgeGap]:
        return await asyncio.to_thread(knowledge_gaps, self.store, self.settings.retrieval.encoder, since, until)

    async def draft(self, gap: KnowledgeGap, max_new_tokens: int = 200) -> str:
        """A draft article the serving model writes from the gap's questions and the human replies."""
        params = GenerationParams(max_new_tokens=max_new_tokens, temperature=0.0, top_p=1.0, repetition_penalty=1.1)
        messages = [ChatMessage(m["role"], m["content"]) for m in draft_messages(self.settings.company_name, gap)]
        parts = [delta.text async for delta in self.serving.engine.stream_chat(messages, params) if delta.text]
        return "".join(parts).strip()

    async def publish(self, title: str, text: str) -> dict:
        """Write the article into the knowledge base's published folder and ingest it now: the next answer can
        cite it."""
        grounder = self.serving.grounder
        if grounder is None:
            raise GapError("retrieval is off (`retrieval.enabled: false`): there is no knowledge base to publish to")
        path = publish_article(self.published_folder, title, text)
        report = await asyncio.to_thread(grounder.knowledge_base.ingest, [self.published_folder], progress=False)
        log.info("published %s: %d passages added", path.name, report.passages_added)
        return {"path": str(path), "passages_added": report.passages_added, "passages_total": report.passages_total}

    async def find_topics(self, since: datetime, until: datetime) -> list[TopicRecord]:
        return await asyncio.to_thread(find_topics, self.store, self.settings.retrieval.encoder, since, until)

    async def assign_new(self) -> int:
        """Assign a batch of new conversations to the stored topics; how many."""
        return await asyncio.to_thread(assign_new, self.store, self.settings.retrieval.encoder)

    async def topics(self, f: OutcomeFilter) -> dict:
        return await asyncio.to_thread(topic_outcomes, self.store, f)

    async def topic_conversations(self, f: OutcomeFilter, topic_id: int) -> list[dict]:
        return await asyncio.to_thread(topic_conversations, self.store, f, topic_id)

    async def assign_forever(self, pause_s: float = 60.0) -> None:
        """New conversations get their topic in the background: a batch at a time, off the reply path, resting as
        long as each batch took (a backlog after topics are found takes at most half of a core from answers)."""
        while True:
            started = time.monotonic()
            try:
                assigned = await self.assign_new()
            except Exception:  # retried at the next pause; it must not stop the server
                log.exception("topic assignment failed")
                assigned = 0
            await asyncio.sleep(max(1.0, time.monotonic() - started) if assigned else pause_s)
