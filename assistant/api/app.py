"""The HTTP app: OpenAI-compatible API, our conversation API, health, and the views mounted on one port."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection
from contextlib import asynccontextmanager
from dataclasses import asdict
from importlib.metadata import entry_points

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from assistant.api import (
    access,
    conversation_routes,
    insights_routes,
    openai_routes,
    recommendation_routes,
    sentiment_routes,
    source_routes,
    widget_routes,
)
from assistant.api.errors import install_error_handlers
from assistant.api.metrics import install_metrics
from assistant.conversation import ConversationService
from assistant.engines.swappable import SwappableEngine
from assistant.model_swap import follow_knowledge_base, follow_promotions, follow_retrieval_promotions
from assistant.privacy import purge_expired
from assistant.sentiment.monitor import SentimentMonitor
from assistant.shared_work import exclusively, hold_presence, recover_lapsed_replicas, run_claimed

log = logging.getLogger(__name__)
VIEWS_ENTRY_POINT_GROUP = "assistant.views"


def discover_views() -> dict[str, Callable]:
    """Views (Gradio pages) register themselves under the `assistant.views` entry-point group."""
    return {ep.name: ep for ep in entry_points(group=VIEWS_ENTRY_POINT_GROUP)}


async def purge_hourly(service: ConversationService) -> None:
    """Retention: conversations with no activity for `privacy.retention_days` are deleted, checked every hour."""
    settings = service.settings
    while True:
        try:
            deleted = await asyncio.to_thread(purge_expired, service.store, settings.exports_dir,
                                              settings.privacy.retention_days)
            if deleted["conversations"]:
                log.info("retention: deleted %d conversations older than %s days", deleted["conversations"],
                         settings.privacy.retention_days)
        except Exception:  # a failed purge is retried next hour; it must not stop the server
            log.exception("retention purge failed")
        await asyncio.sleep(3600)


def create_app(service: ConversationService, mount_views: bool | Collection[str] = True,
               on_ready: Callable[[], None] | None = None) -> FastAPI:
    """Build the app; the engine starts with the app and stops (whole vLLM process group) with it.
    `mount_views`: every view, none, or the names of those to mount (e.g. {"operator"})."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        recovered = await asyncio.to_thread(service.store.conversations.recover_interrupted)
        if recovered:
            log.warning("%d answers were cut off by a previous stop: marked partial", recovered)
        await service.engine.start()
        if service.grounder is not None:  # replicas on a shared home: one builds the index, the others read it
            await exclusively(service.store.coordination, "knowledge-base", service.replica, service.grounder.prepare,
                              service.settings.replicas.lease_ttl_s)
        if service.recommendations is not None:
            await asyncio.to_thread(service.recommendations.prepare)
        app.state.started_at = time.time()
        tasks = []
        if isinstance(service.engine, SwappableEngine):
            tasks.append(asyncio.create_task(follow_promotions(service)))
        if service.curated is not None:
            tasks.append(asyncio.create_task(service.curated.follow()))
        if service.grounder is not None:
            tasks.append(asyncio.create_task(follow_retrieval_promotions(service)))
            tasks.append(asyncio.create_task(follow_knowledge_base(service)))
        # work one replica does for all (shared_work.py): on whichever holds its lease
        replica, coordination = service.replica, service.store.coordination
        ttl_s = service.settings.replicas.lease_ttl_s
        tasks.append(asyncio.create_task(hold_presence(coordination, replica, ttl_s)))
        claimed = {"recovery": lambda: recover_lapsed_replicas(service.store, ttl_s / 3),
                   "topics": service.insights.assign_forever}
        if service.settings.sentiment.enabled:
            app.state.sentiment_monitor = SentimentMonitor(service.store, service.settings.sentiment,
                                                           service.settings.home_dir)
            app.state.sentiment_monitor.still_held = lambda: coordination.holds("sentiment", replica)
            claimed["sentiment"] = app.state.sentiment_monitor.run_forever
        if service.settings.privacy.retention_days:
            claimed["retention"] = lambda: purge_hourly(service)
        for name, work in claimed.items():
            tasks.append(asyncio.create_task(run_claimed(coordination, name, replica, work, ttl_s)))
        if on_ready:
            on_ready()
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=10)  # leases released: another replica takes the work at once
            await service.engine.stop()
            service.store.close()

    app = FastAPI(title="assistant", version="0.1.0", lifespan=lifespan,
                  description="Customer-service assistant: OpenAI-compatible API and conversation API.")
    app.state.service = service
    app.state.started_at = time.time()
    install_error_handlers(app)
    app.include_router(openai_routes.router)
    app.include_router(conversation_routes.router)
    app.include_router(conversation_routes.feedback_router)
    app.include_router(sentiment_routes.router)
    app.include_router(insights_routes.router)
    app.include_router(widget_routes.router)
    app.include_router(recommendation_routes.router)
    app.include_router(source_routes.router)
    widget_routes.install_frame_policy(app)
    access.install_access_control(app)
    install_metrics(app)  # outermost: refused requests are counted too

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict:
        healthy = await service.engine.health()
        return {"status": "ok" if healthy else "degraded", "engine": service.engine.name,
                "engine_healthy": healthy, "models": service.engine.model_names(),
                "answer_style": service.serving.answer_style(), "answers": asdict(service.serving.counts),
                "queue": {"writing": service.serving.queue.writing,
                          "estimated_wait_s": round(service.serving.queue.estimated_wait_s(), 2),
                          "max_wait_s": service.settings.answers.max_wait_s},
                "versions": service.versions, "replica": service.replica}

    if mount_views:
        views = discover_views()
        if mount_views is not True:
            views = {name: entry for name, entry in views.items() if name in mount_views}
        for name, entry in views.items():
            try:
                entry.load()(app, service)
            except Exception:  # a broken view must not take the API down
                log.exception("view '%s' failed to mount", name)
        if "chat" in views:
            @app.get("/", include_in_schema=False)
            async def root() -> RedirectResponse:
                return RedirectResponse("/chat/")
    return app
