"""Answers composed from their sources (`answers.style: grounded`): the sentences of the retrieved passages that
answer the question, verbatim, in passage order, each passage's part followed by its citation.

A passage is cut into blocks: a sentence, or a whole list / table / numbered steps with the line that introduces
it (a list is never cut in the middle). Blocks are ranked by how much of the question they contain; a short
passage (an FAQ answer) is kept whole, a long one gives its best blocks. Facts are never rewritten, so a grounded
answer is true whenever the right passage was found.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from assistant.prompt import CJK, sentence_pieces
from assistant.support_check import content_terms, language_of

WHOLE_PASSAGE_CHARS = 600  # a passage up to this long is an answer in itself
ANSWER_CHARS = 700  # what a composed answer may quote at most
_LIST_LINE = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)]|\|)\s*")
_HEADING = re.compile(r"^\s*#+\s")


@dataclass(frozen=True)
class Block:
    """A quotable piece of a passage: a sentence, or a whole list with its introduction."""

    text: str
    position: int


def blocks(text: str) -> list[Block]:
    """The passage as quotable blocks, in order (headings left out)."""
    lines = text.splitlines()
    result: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if _LIST_LINE.match(line):
            items = []
            while index < len(lines) and (_LIST_LINE.match(lines[index]) or
                                          (items and lines[index].startswith("  ") and lines[index].strip())):
                items.append(lines[index])
                index += 1
            intro = result.pop() if result and result[-1].rstrip().endswith((":", "：")) else None
            result.append("\n".join(([intro] if intro else []) + items))
            continue
        if line.strip() and not _HEADING.match(line):
            result.extend(p.strip() for p in sentence_pieces(line) if p.strip())
        index += 1
    return [Block(b, i) for i, b in enumerate(_joined_wraps(result))]


def _joined_wraps(pieces: list[str]) -> list[str]:
    """Sentences that a hard line wrap cut in two, joined again ("... within" + "7 days.")."""
    joined: list[str] = []
    for piece in pieces:
        previous = joined[-1] if joined else ""
        if previous and "\n" not in previous and not _LIST_LINE.match(piece) and \
                not previous.endswith((".", "!", "?", ":", "。", "！", "？", "：", "；", ";")):
            joined[-1] = f"{previous} {piece}" if not CJK.search(previous[-1:]) else previous + piece
        else:
            joined.append(piece)
    return joined


def _score(question_terms: frozenset[str], block: Block) -> float:
    terms = content_terms(block.text)
    if not question_terms or not terms:
        return 0.0
    return len(question_terms & terms) / len(question_terms)


def passage_answer(question: str, text: str, limit: int = ANSWER_CHARS) -> str:
    """The part of one passage that answers the question: all of a short passage, else its best blocks (those
    at least half as good as the best, passage order kept) up to `limit` characters."""
    parts = blocks(text)
    if not parts:
        return ""
    whole = "\n".join(b.text for b in parts)
    if len(whole) <= WHOLE_PASSAGE_CHARS:
        return whole
    asked = content_terms(question)
    scored = sorted(parts, key=lambda b: (-_score(asked, b), b.position))
    best = _score(asked, scored[0])
    chosen, used = [], 0
    for block in scored:
        if chosen and (_score(asked, block) < best / 2 or used + len(block.text) > limit):
            continue
        chosen.append(block)
        used += len(block.text)
    if best == 0:  # nothing of the question in it: its opening says what it is about
        chosen = parts[:2]
    return "\n".join(b.text for b in sorted(chosen, key=lambda b: b.position))


def _separator(text: str) -> str:
    return "\n" if "\n" in text else " "


def compose_answer(question: str, sources: Sequence, limit: int = ANSWER_CHARS) -> str:
    """A grounded answer: from the first source in the customer's language (the first source when none is),
    what answers the question, with its citation."""
    if not sources:
        return ""
    language = language_of(question)
    same = [s for s in sources if language_of(s.text) == language]
    source = (same or list(sources))[0]
    quoted = passage_answer(question, source.text, limit)
    answer = f"{quoted}{_separator(quoted)}[{source.number}]"
    if not same and language == "zh":
        answer = f"以下内容摘自我们的帮助中心（英文）：\n{answer}"
    return answer
