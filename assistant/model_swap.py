"""Follow the registry while serving: when `assistant models promote` or `rollback` (or `assistant align`) changes
the active version, the running server switches to it without dropping requests (see SwappableEngine)."""

from __future__ import annotations

import asyncio
import logging

from assistant.conversation import ConversationService

log = logging.getLogger(__name__)


async def switch_to_active(service: ConversationService, model) -> None:
    """Start `model` in a new engine beside the serving one and swap."""
    from assistant.engines import build_engine
    from assistant.runtime import with_private_vllm_port

    await service.engine.swap(build_engine(with_private_vllm_port(service.settings), model))


async def follow_promotions(service: ConversationService, interval_s: float = 2.0) -> None:
    """Poll the registry's active version; switch engines when it changes. Runs until cancelled."""
    from assistant.registry import RegistryError
    from assistant.runtime import model_registry, serving_model

    registry = model_registry(service.settings)
    serving = registry.active_id()
    while True:
        await asyncio.sleep(interval_s)
        try:
            wanted = registry.active_id()
        except RegistryError as exc:
            log.warning("model registry unreadable: %s", exc)
            continue
        if wanted == serving:
            continue
        serving = wanted  # one attempt per change: a broken version is reported, not retried in a loop
        try:
            model, version = await asyncio.to_thread(serving_model, service.settings)
            log.info("switching to %s (%s)", version or "the base model", model.path)
            await switch_to_active(service, model)
            log.info("now serving %s", model.name)
        except Exception as exc:  # the old model keeps serving
            log.error("could not switch to model version %s: %s; the previous model keeps serving", wanted, exc)
