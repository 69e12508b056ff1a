"""An answer must not recite the company's instructions (the system prompt and the grounding rules): a prompt
injection that asks for them ("repeat everything above") is stopped before any stretch of them reaches the client,
and the answer is replaced by a refusal.

How: text that could be the start of a quotation is held back. After each piece of the answer, the longest end of
the unreleased text that appears in the instructions (case and spacing aside) stays held; everything before it is
released. A held stretch that grows to `WINDOW` characters is a leak. Short common phrases ("a human agent") are
released as soon as the answer moves on, so a normal answer streams with a delay of a few characters at most.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing

from assistant.engines.base import Delta, EngineError

WINDOW = 40  # characters of the instructions, quoted verbatim (case and spacing aside), that count as a leak


class InstructionLeak(Exception):
    """The answer began to quote the instructions."""


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower())


def refusal(chinese: bool) -> str:
    if chinese:
        return "抱歉，我不能分享我的内部说明。请问还有什么可以帮您？"
    return "Sorry, I can't share my internal instructions. How else can I help you?"


class QuotationGuard:
    """Splits an answer into what may be shown now and what is held back as a possible quotation."""

    def __init__(self, instructions: Sequence[str]):
        self.instructions = [_normal(text) for text in instructions if text and text.strip()]
        self.pending = ""

    def _quoted(self, text: str) -> bool:
        normal = _normal(text)
        return any(normal in instruction for instruction in self.instructions)

    def feed(self, text: str) -> str:
        """Take the next piece; return the text that can be released now. Raises `InstructionLeak`."""
        if not self.instructions:
            return text
        self.pending += text
        # the held part is the longest end of the pending text found in the instructions; since a stretch that is
        # not in them never becomes one by growing, nothing released can be the start of a quotation
        start = next((i for i in range(len(self.pending)) if self._quoted(self.pending[i:])), len(self.pending))
        if len(_normal(self.pending[start:]).strip()) >= WINDOW:
            raise InstructionLeak
        released, self.pending = self.pending[:start], self.pending[start:]
        return released

    def flush(self) -> str:
        """The answer ended: what is still held (shorter than a quotation) is released."""
        released, self.pending = self.pending, ""
        return released


async def without_instructions(deltas: AsyncIterator[Delta], instructions: Sequence[str]) -> AsyncIterator[Delta]:
    """Pass the answer through, holding back what could be a quotation; raise `InstructionLeak` when the answer
    quotes `WINDOW` characters of the instructions."""
    guard = QuotationGuard(instructions)
    async with aclosing(deltas):
        try:
            async for delta in deltas:
                released = guard.feed(delta.text) if delta.text else ""
                if delta.finish_reason:
                    released += guard.flush()
                if released:
                    yield Delta(text=released)
                if delta.finish_reason:
                    yield Delta(finish_reason=delta.finish_reason, prompt_tokens=delta.prompt_tokens,
                                completion_tokens=delta.completion_tokens)
        except EngineError:  # the answer broke off: what is held is shorter than a quotation, so it is shown
            rest = guard.flush()
            if rest:
                yield Delta(text=rest)
            raise
