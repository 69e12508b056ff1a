"""What the Insights view and API ask of a deployment: outcomes, knowledge gaps with drafts, publishing."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from assistant.engines.base import ChatMessage, GenerationParams
from assistant.insights.gaps import GapError, KnowledgeGap, draft_messages, knowledge_gaps, publish_article

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
