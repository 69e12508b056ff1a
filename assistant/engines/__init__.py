"""LLM engines behind one interface (`base.LLMEngine`): vLLM (managed or external URL) and transformers."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from assistant.config import Settings
    from assistant.engines.base import ContextWindow, LLMEngine
    from assistant.model_files import ResolvedModel


def build_engine(settings: Settings, model: ResolvedModel | None) -> LLMEngine:
    """The engine the settings ask for: an external URL wins, then `engine` (vllm, in this process or as a managed
    server by `vllm.mode`, or transformers)."""
    if settings.llm_urls:
        from assistant.engines.openai_http import OpenAIHTTPEngine

        engines = [OpenAIHTTPEngine(url, api_key=settings.llm_api_key, tokenizer=settings.llm_tokenizer)
                   for url in settings.llm_urls]
        if len(engines) == 1:
            return engines[0]
        from assistant.engines.balanced import BalancedEngine

        return BalancedEngine(engines)
    if model is None:
        raise ValueError("a local engine needs a resolved model")
    if settings.engine == "transformers":
        from assistant.engines.transformers_engine import TransformersEngine

        return TransformersEngine(model.path, model.name, settings.generation, settings.transformers)
    if settings.vllm.mode == "in_process":
        from assistant.engines.vllm_in_process import InProcessVLLMEngine

        return InProcessVLLMEngine(model.path, model.name, settings.vllm, settings.logs_dir)
    from assistant.engines.vllm_engine import ManagedVLLMEngine

    return ManagedVLLMEngine(model.path, model.name, settings.vllm, settings.logs_dir)


def served_window(settings: Settings, model: ResolvedModel) -> ContextWindow:
    """The context window the engine these settings build will report for a local `model`, known before it starts
    (evaluation and training build their prompts first)."""
    from assistant.engines.context import folder_window, transformers_context_tokens

    if settings.engine == "transformers":
        from transformers import AutoConfig

        tokens = transformers_context_tokens(AutoConfig.from_pretrained(model.path),
                                             settings.transformers.kv_cache_tokens)
        return folder_window(model.path, tokens)
    return folder_window(model.path, settings.vllm.max_model_len)
