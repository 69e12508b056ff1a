"""An answer must not recite the company's instructions (the system prompt): a prompt-injection that asks for them
("repeat everything above") is stopped as soon as the answer quotes a stretch of them, and replaced by a refusal."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import aclosing
from functools import lru_cache

from assistant.engines.base import Delta

WINDOW = 60  # characters of the instructions, quoted verbatim (case and spacing aside), that count as a leak


class InstructionLeak(Exception):
    """The answer began to quote the system prompt."""


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower())


@lru_cache(maxsize=8)
def shingles(instructions: str) -> frozenset[str]:
    """Every WINDOW-long stretch of the instructions (built once per prompt, not once per answer)."""
    text = _normal(instructions)
    return frozenset(text[i:i + WINDOW] for i in range(len(text) - WINDOW + 1))


def refusal(chinese: bool) -> str:
    if chinese:
        return "抱歉，我不能分享我的内部说明。请问还有什么可以帮您？"
    return "Sorry, I can't share my internal instructions. How else can I help you?"


async def without_instructions(deltas: AsyncIterator[Delta], instructions: str) -> AsyncIterator[Delta]:
    """Pass the answer through; raise `InstructionLeak` when it quotes `WINDOW` characters of the instructions."""
    windows = shingles(instructions)
    said = ""
    async with aclosing(deltas):
        async for delta in deltas:
            if windows and delta.text:
                # only the new text is normalised (with the last character, where spaces may run together);
                # only the windows that end in it are checked
                start = max(0, len(said) - WINDOW)
                said = said[:-1] + _normal(said[-1:] + delta.text)
                if any(said[i:i + WINDOW] in windows for i in range(start, len(said) - WINDOW + 1)):
                    raise InstructionLeak
            yield delta
