"""Answer many prompts with a model through the serving engine (vLLM or transformers), many at a time.

Used to evaluate answers (`assistant eval answers`, the promotion gate) and to make preference pairs from the
current model's own answers. Decoding is greedy so the same model gives the same answers. An `Answerer` keeps its
engine running between passes with the same model (a vLLM start costs about half a minute on a CPU).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from assistant.config import Settings
from assistant.engines.base import ChatMessage, EngineError, GenerationParams
from assistant.model_files import ResolvedModel
from assistant.runtime import with_private_vllm_port


def answering_settings(settings: Settings, engine: str) -> Settings:
    """Greedy decoding, and a managed vLLM server of its own (a private port, so a running server is not
    disturbed; its engine core in its API server process, which starts sooner: one client sends every request, so
    the in-process engine's gain under many clients does not apply)."""
    generation = settings.generation.model_copy(update={"temperature": 0.0})
    private = with_private_vllm_port(settings)
    return private.model_copy(update={"engine": engine, "generation": generation, "llm_url": None,
                                      "vllm": private.vllm.model_copy(update={"mode": "server", "one_process": True})})


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


def _key(model: ResolvedModel) -> str:
    return str(Path(model.path).resolve())


class Answerer:
    """Answers prompts with one model at a time, its engine kept running between passes until another model is
    asked or `close()`: the bench answers its test questions with the base model, then `assistant align` answers
    with it again, on one start. Close it before training: an idle engine competes for the cores and memory."""

    def __init__(self, settings: Settings, engine_name: str):
        self.settings = settings
        self.engine_name = engine_name
        self._runner = asyncio.Runner()
        self._engine = None
        self._serving: str | None = None  # the model folder the running engine loaded
        self._copies: dict[str, str] = {}  # a model folder -> the folder it is a copy of

    def same_model(self, copy: ResolvedModel, original: ResolvedModel) -> None:
        """`copy` holds the same weights as `original` (a registered candidate): its engine answers for both."""
        self._copies[_key(copy)] = self._copies.get(_key(original), _key(original))

    def answer(self, model: ResolvedModel, prompts: Sequence[list[dict]], max_new_tokens: int = 128,
               label: str = "answering", schemas: Sequence[dict | None] | None = None,
               concurrency: int = 32) -> list[str]:
        """Every prompt (chat messages) answered by `model`; `schemas`: per prompt, a JSON schema its answer is
        constrained to (or None)."""
        from tqdm import tqdm

        if not prompts:
            return []
        engine = self._engine_for(model)
        params = replace(GenerationParams.from_settings(self.settings.generation), max_new_tokens=max_new_tokens,
                         temperature=0.0, top_p=1.0)  # greedy

        async def run() -> list[str]:
            with tqdm(total=len(prompts), desc=f"{label} ({model.name})", unit="answer") as bar:
                return await _answer_all(engine, prompts, params, concurrency, bar, schemas)

        return self._runner.run(run())

    def _engine_for(self, model: ResolvedModel):
        from assistant.engines import build_engine

        key = _key(model)
        key = self._copies.get(key, key)
        if self._engine is not None and self._serving == key:
            return self._engine
        self.stop()
        engine = build_engine(answering_settings(self.settings, self.engine_name), model)
        self._runner.run(engine.start())
        self._engine, self._serving = engine, key
        return engine

    def stop(self) -> None:
        """Stop the running engine (before training); the next pass starts one again."""
        if self._engine is not None:
            engine, self._engine, self._serving = self._engine, None, None
            self._runner.run(engine.stop())

    def close(self) -> None:
        try:
            self.stop()
        finally:
            self._runner.close()

    def __enter__(self) -> Answerer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def answer_prompts(settings: Settings, model: ResolvedModel, engine_name: str, prompts: Sequence[list[dict]],
                   max_new_tokens: int = 128, concurrency: int = 32, label: str = "answering",
                   schemas: Sequence[dict | None] | None = None) -> list[str]:
    """Start an engine for `model`, answer every prompt, stop the engine (`Answerer` keeps it for more passes)."""
    if not prompts:
        return []
    with Answerer(settings, engine_name) as answerer:
        return answerer.answer(model, prompts, max_new_tokens, label, schemas, concurrency)
