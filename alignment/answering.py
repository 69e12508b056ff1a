"""Answer many prompts with a model through the serving engine (vLLM or transformers), many at a time.

Used to evaluate answers (`assistant eval answers`, the promotion gate) and to make preference pairs from the
current model's own answers. Decoding is greedy so the same model gives the same answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

from assistant.config import Settings
from assistant.engines.base import ChatMessage, EngineError, GenerationParams
from assistant.model_files import ResolvedModel
from assistant.runtime import with_private_vllm_port


def answering_settings(settings: Settings, engine: str, max_new_tokens: int) -> Settings:
    """Greedy decoding, and a private port for a managed vLLM so a running server is not disturbed."""
    generation = settings.generation.model_copy(update={"temperature": 0.0, "max_new_tokens": max_new_tokens})
    return with_private_vllm_port(settings).model_copy(
        update={"engine": engine, "generation": generation, "llm_url": None})


async def _answer_all(engine, prompts: Sequence[list[dict]], params: GenerationParams, concurrency: int,
                      progress, schemas: Sequence[dict | None] | None = None) -> list[str]:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(index: int, prompt: list[dict]) -> str:
        async with semaphore:
            messages = [ChatMessage(m["role"], m["content"]) for m in prompt]
            asked = replace(params, json_schema=schemas[index]) if schemas else params
            parts = []
            try:
                async for delta in engine.stream_chat(messages, asked):
                    parts.append(delta.text)
            except EngineError as exc:
                raise EngineError(f"prompt {index}: {exc}") from exc
            if progress is not None:
                progress.update(1)
            return "".join(parts).strip()

    return list(await asyncio.gather(*(one(i, p) for i, p in enumerate(prompts))))


def answer_prompts(settings: Settings, model: ResolvedModel, engine_name: str, prompts: Sequence[list[dict]],
                   max_new_tokens: int = 128, concurrency: int = 32, label: str = "answering",
                   schemas: Sequence[dict | None] | None = None) -> list[str]:
    """Start an engine for `model`, answer every prompt (chat messages), stop the engine. `schemas`: per prompt, a
    JSON schema its answer is constrained to (or None)."""
    from tqdm import tqdm

    from assistant.engines import build_engine

    if not prompts:
        return []
    settings = answering_settings(settings, engine_name, max_new_tokens)
    engine = build_engine(settings, model)
    params = replace(GenerationParams.from_settings(settings.generation), top_p=1.0)  # greedy (temperature 0)

    async def run() -> list[str]:
        await engine.start()
        try:
            with tqdm(total=len(prompts), desc=f"{label} ({model.name})", unit="answer") as bar:
                return await _answer_all(engine, prompts, params, concurrency, bar, schemas)
        finally:
            await engine.stop()

    return asyncio.run(run())
