"""Follow the registries while serving: when `assistant models promote` or `rollback` (or `assistant align`) changes
the active version, the running server switches to it without dropping requests (see SwappableEngine); a new
retrieval version is switched to once the knowledge base is encoded with it (the old index answers meanwhile)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from assistant.conversation import ConversationService

log = logging.getLogger(__name__)


async def switch_to_active(service: ConversationService, model) -> None:
    """Start `model` in a new engine beside the serving one and swap."""
    from assistant.engines import build_engine
    from assistant.runtime import with_private_vllm_port

    await service.engine.swap(build_engine(with_private_vllm_port(service.settings), model))
    if service.actions is not None:
        service.actions.use_model(model)


async def follow_registry(registry, switch: Callable[[str | None], Awaitable[None]], what: str,
                          interval_s: float) -> None:
    """Poll a registry's active version; `switch(version)` when it changes (one attempt per change: a broken
    version is reported, not retried in a loop, and what serves keeps serving). Runs until cancelled."""
    from assistant.registry import RegistryError

    serving = registry.active_id()
    while True:
        await asyncio.sleep(interval_s)
        try:
            wanted = registry.active_id()
        except RegistryError as exc:
            log.warning("%s registry unreadable: %s", what, exc)
            continue
        if wanted == serving:
            continue
        serving = wanted
        try:
            await switch(wanted)
        except Exception as exc:  # the old one keeps serving
            log.error("could not switch to %s version %s: %s; the previous one keeps serving", what, wanted, exc)


async def follow_promotions(service: ConversationService, interval_s: float = 2.0) -> None:
    """Switch engines when the chat model registry's active version changes."""
    from assistant.runtime import model_registry, serving_model

    async def switch(wanted: str | None) -> None:
        model, version = await asyncio.to_thread(serving_model, service.settings)
        log.info("switching to %s (%s)", version or "the base model", model.path)
        await switch_to_active(service, model)
        service.versions["model"] = version
        log.info("now serving %s", model.name)

    await follow_registry(model_registry(service.settings), switch, "model", interval_s)


async def follow_retrieval_promotions(service: ConversationService, interval_s: float = 2.0) -> None:
    """Search with the retrieval registry's active version (encoder, fusion weights, reranker) once the knowledge
    base is encoded with it; the old index answers meanwhile."""
    from assistant.registry import retrieval_registry
    from assistant.runtime import served_retrieval
    from assistant.shared_work import exclusively

    async def switch(wanted: str | None) -> None:
        retrieval = await asyncio.to_thread(served_retrieval, service.settings)
        log.info("switching retrieval to %s (encoder %s)", wanted or "the configured models", retrieval.encoder)
        # replicas on a shared home re-encode its index one at a time (the second finds it encoded)
        await exclusively(service.store.coordination, "knowledge-base", service.replica,
                          lambda: service.grounder.switch_retrieval(retrieval), service.settings.replicas.lease_ttl_s)
        service.versions["retrieval"] = wanted
        log.info("now searching with retrieval %s", wanted or "the configured models")

    await follow_registry(retrieval_registry(service.settings.home_dir), switch, "retrieval", interval_s)


async def follow_knowledge_base(service: ConversationService, interval_s: float = 5.0) -> None:
    """Documents ingested by another process (`assistant ingest` while serving) are searched within seconds."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            if await asyncio.to_thread(service.grounder.reload_if_changed):
                log.info("the knowledge base changed on disk: now searching %d passages",
                         len(service.grounder.knowledge_base))
        except Exception:  # a half-written or unreadable index is retried; the loaded one keeps answering
            log.exception("could not read the changed knowledge base")
