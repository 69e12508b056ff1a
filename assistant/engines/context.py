"""How much a model can read: its context length (prompt and answer together) and how to count a prompt's tokens.

Every engine reports one (`LLMEngine.context_window()`); the prompt builder fits each prompt into it, so the engine
never refuses a prompt for its length. Where the model's tokenizer is on this machine the count is exact (the chat
template included); for an external server a conservative estimate is used, unless `llm_tokenizer` names a local
folder with its tokenizer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

from assistant.engines.base import ChatMessage, ContextWindow


def estimated_tokens(text: str) -> int:
    """An upper estimate for byte-level BPE tokenizers: a token per 3 ASCII characters, one per other UTF-8 byte."""
    ascii_chars = sum(1 for c in text if c < "\x80")
    return math.ceil(ascii_chars / 3) + len(text.encode("utf-8")) - ascii_chars


def estimated_window(tokens: int) -> ContextWindow:
    return ContextWindow(tokens, estimated_tokens)


def tokenizer_window(tokenizer, tokens: int) -> ContextWindow:
    """Exact counts with the model's own tokenizer and chat template."""

    def count_text(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False))

    def count_messages(messages: Sequence[ChatMessage]) -> int:
        encoded = tokenizer.apply_chat_template([{"role": m.role, "content": m.content} for m in messages],
                                                add_generation_prompt=True, tokenize=True)
        return len(encoded["input_ids"] if hasattr(encoded, "keys") else encoded)

    # without a chat template, ContextWindow.count estimates the template's tokens per message
    return ContextWindow(tokens, count_text, count_messages if getattr(tokenizer, "chat_template", None) else None)


def transformers_context_tokens(model_config, kv_cache_tokens: int) -> int:
    """What one request may use on the transformers engine: the whole paged cache, never more than the model's
    positions."""
    return min(getattr(model_config, "max_position_embeddings", None) or 2048, kv_cache_tokens)


@lru_cache(maxsize=4)
def folder_window(model_path: str, tokens: int) -> ContextWindow:
    """The window of a model folder on this machine (its tokenizer loaded once)."""
    from transformers import AutoTokenizer

    return tokenizer_window(AutoTokenizer.from_pretrained(model_path), tokens)
