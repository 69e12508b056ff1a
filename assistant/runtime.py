"""Assemble a running service from settings: model, engine, store."""

from __future__ import annotations

import logging

from assistant.config import LoadedSettings
from assistant.conversation import ConversationService

log = logging.getLogger(__name__)


def choose_engine(loaded: LoadedSettings) -> str:
    """`vllm` unless it is not installed and the user did not ask for it explicitly (then `transformers`)."""
    settings = loaded.settings
    if settings.engine == "vllm" and not settings.llm_url:
        from assistant.engines.vllm_process import vllm_installed

        if not vllm_installed():
            if loaded.sources.get("engine") == "default":
                log.warning("vLLM is not installed: using the transformers engine instead")
                return "transformers"
            raise SystemExit("error: engine 'vllm' was asked for but vLLM is not installed "
                             "(pip install 'assistant[cpu]' or 'assistant[gpu]'), or use --engine transformers")
    return settings.engine


def build_service(loaded: LoadedSettings, console=None) -> ConversationService:
    from assistant.engines import build_engine
    from assistant.model_files import resolve_model
    from assistant.store import Store

    settings = loaded.settings.model_copy(update={"engine": choose_engine(loaded)})
    model = None if settings.llm_url else resolve_model(settings.model, settings.models_dir)
    engine = build_engine(settings, model)
    store = Store(settings.effective_database_url)
    grounder = None
    if settings.retrieval.enabled:
        from assistant.grounding import Grounder

        grounder = Grounder(settings.retrieval, settings.knowledge_dir)
    if console is not None:
        source = settings.llm_url or (model.path if model else "?")
        console.print(f"engine: [bold]{engine.name}[/bold]  model: {source}  "
                      f"store: {store.engine.url.render_as_string(hide_password=True)}", soft_wrap=True)
    return ConversationService(settings, store, engine, grounder)
