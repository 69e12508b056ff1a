"""Assemble a running service from settings: model, engine, store."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.config import LoadedSettings, Settings
from assistant.conversation import ConversationService
from assistant.errors import AssistantError

if TYPE_CHECKING:
    from assistant.model_files import ResolvedModel

log = logging.getLogger(__name__)


def choose_engine(loaded: LoadedSettings) -> str:
    """`vllm` unless it is not installed and the user did not ask for it explicitly (then `transformers`)."""
    settings = loaded.settings
    if settings.engine == "vllm" and not settings.llm_urls:
        from assistant.engines.vllm_process import vllm_installed

        if not vllm_installed():
            if loaded.sources.get("engine") == "default":
                log.warning("vLLM is not installed: using the transformers engine instead")
                return "transformers"
            raise AssistantError("engine 'vllm' was asked for but vLLM is not installed "
                                 "(pip install 'assistant[cpu]' or 'assistant[gpu]'), or use --engine transformers")
    return settings.engine


def model_registry(settings: Settings):
    from assistant.registry import ModelRegistry

    return ModelRegistry(settings.home_dir / "registry")


def with_private_vllm_port(settings: Settings) -> Settings:
    """The same settings with a free port for a managed vLLM, so a second one can run beside the serving one."""
    from assistant.ports import free_port

    return settings.model_copy(update={"vllm": settings.vllm.model_copy(update={"port": free_port()})})


def serving_model(settings: Settings) -> tuple[ResolvedModel, str | None]:
    """The model to serve and its registry version: the promoted version aligned from the configured model,
    else the configured model itself."""
    from assistant.model_files import ResolvedModel, resolve_model

    base = resolve_model(settings.model, settings.models_dir)
    registry = model_registry(settings)
    active = registry.active()
    if active is None:
        return base, None
    if active.base_model != base.name:
        log.warning("the promoted version %s was aligned from %s, not from the configured model %s: serving %s",
                    active.id, active.base_model, base.name, base.name)
        return base, None
    registry.verify(active)
    return ResolvedModel(active.served_name, str(active.model_dir)), active.id


def served_retrieval(settings: Settings, which: str = "current"):
    """The retrieval settings to search with. `which`: "current" (what a server uses: the encoder and reranker
    `assistant align retrieval` promoted, else the configured ones), "base" (the configured ones) or a registered
    version ("v2"); a version's files are checked against their registered digest."""
    from assistant.registry import retrieval_models, retrieval_registry

    if which == "base":
        return settings.retrieval
    registry = retrieval_registry(settings.home_dir)
    version = registry.active() if which == "current" else registry.get(which)
    if version is None:
        return settings.retrieval
    registry.verify(version)
    return settings.retrieval.model_copy(update=retrieval_models(version))


def actions_environment(settings: Settings) -> dict[str, str]:
    """What the actions file may read: the environment; for the demo company's own actions file, also the address
    and token of its order service, started here beside the assistant (unless ORDER_SERVICE_URL points elsewhere)."""
    import os

    from assistant.demo.order_service import DEMO_ACTIONS, OrderService

    environ = dict(os.environ)
    if Path(settings.actions.file).resolve() == DEMO_ACTIONS and "ORDER_SERVICE_URL" not in environ:
        service = OrderService(settings.home_dir / "demo-orders.db").__enter__()  # a daemon thread: ends with us
        log.info("demo order service on %s", service.url)
        environ |= service.environment()
    return environ


def model_by_spec(spec: str, settings: Settings):
    """'current' (what serves now), 'base' (the configured model), a registered version id, or a model spec."""
    from assistant.model_files import ResolvedModel, resolve_model

    if spec == "current":
        return serving_model(settings)[0]
    if spec == "base":
        return resolve_model(settings.model, settings.models_dir)
    if spec.startswith("v") and spec[1:].isdigit():
        registry = model_registry(settings)
        version = registry.get(spec)
        registry.verify(version)
        return ResolvedModel(version.served_name, str(version.model_dir))
    return resolve_model(spec, settings.models_dir)


def build_service(loaded: LoadedSettings, console=None, make_engine=None) -> ConversationService:
    """`make_engine(settings, model)`: builds the engine in place of `assistant.engines.build_engine` (the tests'
    fake engine)."""
    from assistant.engines import build_engine
    from assistant.engines.swappable import SwappableEngine
    from assistant.store import open_store

    settings = loaded.settings.model_copy(update={"engine": choose_engine(loaded)})
    store = open_store(settings)  # first: on a home replicas share, the registries read below are in its database
    model, model_version = (None, None) if settings.llm_urls else serving_model(settings)
    engine = (make_engine or build_engine)(settings, model)
    if model is not None:
        engine = SwappableEngine(engine)  # `assistant models promote` swaps the model while serving
    grounder = None
    if settings.retrieval.enabled:
        from assistant.grounding import Grounder

        grounder = Grounder(served_retrieval(settings), settings.knowledge_dir)
    if console is not None:
        source = ", ".join(settings.llm_urls) or (model.path if model else "?")
        console.print(f"engine: [bold]{engine.name}[/bold]  model: {source}  "
                      f"store: {store.engine.url.render_as_string(hide_password=True)}", soft_wrap=True)
    actions = None
    if settings.actions.file:
        from assistant.actions.service import ActionService
        from assistant.actions.spec import load_actions

        actions = ActionService(load_actions(Path(settings.actions.file), actions_environment(settings)), store)
        actions.use_model(model)
    recommendations = None
    if settings.recommend.mode != "off":
        from assistant.recommend.service import RecommendationService

        recommendations = RecommendationService(settings.recommend, store, served_retrieval(settings).encoder,
                                                settings.home_dir, settings.company_name)
    service = ConversationService(settings, store, engine, grounder, actions, recommendations)
    service.versions["model"] = model_version
    if grounder is not None:
        from assistant.registry import retrieval_registry

        service.versions["retrieval"] = retrieval_registry(settings.home_dir).active_id()
    return service
