"""In-process engine on transformers' own continuous batching (`init_continuous_batching`), streaming.

Sampling settings (temperature, top_p) are fixed when the batching manager starts: transformers applies one
generation config to the whole batch. `max_new_tokens` is per request.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator

from assistant.config import GenerationSettings, TransformersSettings
from assistant.engines.base import (
    ChatMessage,
    ContextWindow,
    Delta,
    EngineError,
    EngineUnavailableError,
    GenerationParams,
)
from assistant.engines.constraints import json_schema_grammar
from assistant.engines.context import tokenizer_window, transformers_context_tokens


def load_model(path: str, threads: int | None = None):
    """Load tokenizer and float32 model from a folder (or a hub id found in the local cache)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if threads:
        torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    return tokenizer, model


def chat_input_ids(tokenizer, messages: list[ChatMessage]) -> list[int]:
    """Token ids of the conversation rendered with the model's chat template, ready for the answer."""
    encoded = tokenizer.apply_chat_template(
        [{"role": m.role, "content": m.content} for m in messages], add_generation_prompt=True, tokenize=True,
    )
    return list(encoded["input_ids"] if hasattr(encoded, "keys") else encoded)


class TransformersEngine:
    """Serves one model in this process; concurrent requests share batches."""

    name = "transformers"

    def __init__(self, model_path: str, served_name: str, generation: GenerationSettings,
                 batching: TransformersSettings | None = None):
        self.batching = batching or TransformersSettings()
        self.model_path = model_path
        self.served_name = served_name
        self.generation = generation
        self.tokenizer = None
        self._window = None
        self._manager = None
        self._model = None
        self._grammars = None  # xgrammar's compiler for this tokenizer, made on the first constrained request
        self._constrained_lock = threading.Lock()

    async def start(self) -> None:
        await asyncio.to_thread(self._start_sync)

    def _start_sync(self) -> None:
        from transformers import ContinuousBatchingConfig, GenerationConfig

        self.tokenizer, model = load_model(self.model_path)
        self._model = model
        self._window = tokenizer_window(self.tokenizer,
                                        transformers_context_tokens(model.config, self.batching.kv_cache_tokens))
        eos = [t for t in {self.tokenizer.eos_token_id, model.generation_config.eos_token_id} if t is not None]
        sample = self.generation.temperature > 0
        config = GenerationConfig(
            max_new_tokens=self.generation.max_new_tokens,
            do_sample=sample,
            temperature=self.generation.temperature if sample else None,
            top_p=self.generation.top_p if sample else None,
            repetition_penalty=self.generation.repetition_penalty,
            eos_token_id=eos[0] if len(eos) == 1 else eos,
            pad_token_id=self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else eos[0],
        )
        page_size = 256
        batching = ContinuousBatchingConfig(
            page_size=page_size,
            num_blocks=max(2, self.batching.kv_cache_tokens // page_size),
            max_batch_tokens=self.batching.max_batch_tokens,
        )
        self._manager = model.init_continuous_batching(generation_config=config, continuous_batching_config=batching)
        self._manager.start()

    async def stop(self) -> None:
        if self._manager is not None:
            manager, self._manager = self._manager, None
            await asyncio.to_thread(manager.stop, True)

    async def health(self) -> bool:
        return self._manager is not None and self._manager.is_running()

    def model_names(self) -> list[str]:
        return [self.served_name]

    def context_window(self) -> ContextWindow:
        if self._window is None:
            raise EngineUnavailableError("the transformers engine is not running")
        return self._window

    async def stream_chat(self, messages: list[ChatMessage], params: GenerationParams) -> AsyncIterator[Delta]:
        if self._manager is None or not self._manager.is_running():
            raise EngineUnavailableError("the transformers engine is not running")
        input_ids = chat_input_ids(self.tokenizer, messages)
        if params.json_schema is not None:
            tokens, text = await asyncio.to_thread(self._constrained, input_ids, params)
            yield Delta(text=text)
            reason = "stop" if len(tokens) < params.max_new_tokens else "length"
            yield Delta(finish_reason=reason, prompt_tokens=len(input_ids), completion_tokens=len(tokens))
            return
        request_id = uuid.uuid4().hex
        outputs: asyncio.Queue = asyncio.Queue()
        self._manager.register_result_handler(request_id, outputs.put_nowait)
        if self._manager.add_request(input_ids, request_id=request_id, max_new_tokens=params.max_new_tokens,
                                     streaming=True) is None:
            raise EngineUnavailableError("the transformers engine is not accepting requests")
        sent = ""
        finished = False
        try:
            while True:
                output = await outputs.get()
                if output.error:
                    raise EngineError(f"generation failed: {output.error}")
                tokens = output.generated_tokens
                text = self.tokenizer.decode(tokens, skip_special_tokens=True)
                cut = _first_stop(text, params.stop)
                if cut is not None:
                    text = text[:cut]
                # hold back a trailing replacement char: the next token may complete the character
                stable = text.rstrip("\ufffd") if not output.is_finished() else text
                if len(stable) > len(sent):
                    yield Delta(text=stable[len(sent):])
                    sent = stable
                if cut is not None or output.is_finished():
                    finished = True
                    reason = "stop" if cut is not None or len(tokens) < params.max_new_tokens else "length"
                    yield Delta(finish_reason=reason, prompt_tokens=len(input_ids), completion_tokens=len(tokens))
                    return
        finally:
            if not finished and self._manager is not None:
                self._manager.cancel_request(request_id)


    def _constrained(self, input_ids: list[int], params: GenerationParams) -> tuple[list[int], str]:
        """Greedy decoding masked by xgrammar to `params.json_schema`, beside the batching manager (one at a time:
        these answers are short)."""
        import torch
        import xgrammar
        from xgrammar.contrib.hf import LogitsProcessor

        with self._constrained_lock:
            if self._grammars is None:
                info = xgrammar.TokenizerInfo.from_huggingface(self.tokenizer, vocab_size=self._model.config.vocab_size)
                self._grammars = xgrammar.GrammarCompiler(info)
            grammar = self._grammars.compile_grammar(json_schema_grammar(params.json_schema))
            prompt = torch.tensor([input_ids])
            with torch.inference_mode():
                out = self._model.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                                           logits_processor=[LogitsProcessor(grammar)],
                                           max_new_tokens=params.max_new_tokens,
                                           pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id)
        tokens = out[0, len(input_ids):].tolist()
        return tokens, self.tokenizer.decode(tokens, skip_special_tokens=True)


def _first_stop(text: str, stops: list[str]) -> int | None:
    positions = [text.find(s) for s in stops if s and s in text]
    return min(positions) if positions else None
