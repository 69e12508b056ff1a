"""Scores customer messages off the reply path: a background task picks up new messages in batches, stores their
sentiment, checks the conversation rules, stores alerts and asks for a human when a rule fires."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from assistant.config import SentimentSettings
from assistant.sentiment.rules import conversation_findings
from assistant.sentiment.scorers import load_scorer, sentiment_registry

log = logging.getLogger(__name__)
DEMO_FEEDS = Path(__file__).resolve().parent.parent.parent / "data" / "feeds"


class SentimentMonitor:
    """`run_once()` scores one batch; `run_forever()` loops. The scorer follows promotions in the registry."""

    def __init__(self, store, settings: SentimentSettings, home: Path):
        self.store, self.settings, self.home = store, settings, home
        self._scorer = None
        self._scorer_version: str | None = None
        # with replicas: whether this one still holds the monitor's lease, asked before each batch (a replica that
        # stalled past its lease scores nothing more; the one that took over does)
        self.still_held: Callable[[], bool] = lambda: True

    def scorer(self):
        version = sentiment_registry(self.home).active_id() if self.settings.scorer == "current" else None
        if self._scorer is None or version != self._scorer_version:
            self._scorer = load_scorer(self.settings.scorer, self.home)
            self._scorer_version = version
            log.info("sentiment scorer: %s", self._scorer.name)
        return self._scorer

    def feed_files(self) -> list[Path]:
        if self.settings.feeds is not None:
            return [Path(f).expanduser() for f in self.settings.feeds]
        return sorted(DEMO_FEEDS.glob("*.jsonl")) if DEMO_FEEDS.is_dir() else []

    def prepare(self) -> None:
        """Ingest the configured feeds once, while the store holds no feed item (the demo company's by default)."""
        from assistant.sentiment.feeds import ingest_feed

        if self.store.sentiment.feed_items(limit=1):
            return
        for path in self.feed_files():
            try:
                report = ingest_feed(self.store, self.scorer(), path, self.settings, progress=False)
            except ValueError as exc:
                log.error("feed %s not ingested: %s", path, exc)
                continue
            log.info("feed %s: %d items stored, %d skipped, %d alerts", path, report.added, len(report.errors),
                     len(report.alerts))

    def run_once(self) -> int:
        """Score up to one batch of waiting messages; returns how many were scored."""
        if not self.still_held():
            return 0
        waiting = self.store.sentiment.unscored_messages(self.settings.batch_size)
        if not waiting:
            return 0
        results = self.scorer().score([m.content for m in waiting])
        self.store.sentiment.set_message_sentiments([(m.id, r.label, r.score) for m, r in zip(waiting, results,
                                                                                             strict=True)])
        for conversation_id in dict.fromkeys(m.conversation_id for m in waiting):
            self.check_conversation(conversation_id)
        return len(waiting)

    def check_conversation(self, conversation_id: str) -> list[str]:
        """Store the alerts of rules that fire (once per rule and conversation); hand off if configured."""
        raised = []
        for finding in conversation_findings(self.store.sentiment.sentiment_trajectory(conversation_id), self.settings):
            key = f"conversation:{conversation_id}:{finding.rule}"
            if self.store.sentiment.add_alert(key, "conversation", finding.rule, finding.detail,
                                              conversation_id=conversation_id):
                raised.append(finding.rule)
                state = self.store.handoffs.handoff_state(conversation_id).status
                if self.settings.handoff_on_alert and state == "bot":
                    self.store.handoffs.request_human(conversation_id, "sentiment", f"{finding.rule}: {finding.detail}")
        return raised

    async def run_forever(self) -> None:
        try:
            await asyncio.to_thread(self.prepare)
        except Exception:
            log.exception("feeds could not be ingested at start")
        while True:
            try:
                scored = await asyncio.to_thread(self.run_once)
            except asyncio.CancelledError:
                raise
            except Exception:  # a scoring failure must not stop the API; it is retried next round
                log.exception("sentiment scoring failed")
                scored = 0
            if scored < self.settings.batch_size:
                await asyncio.sleep(self.settings.interval_s)
