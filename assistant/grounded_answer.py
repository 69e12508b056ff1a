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

from assistant.passage_blocks import Block, blocks, glue, is_list
from assistant.support_check import content_terms, language_of

WHOLE_PASSAGE_CHARS = 600  # a passage up to this long is an answer in itself
ANSWER_CHARS = 700  # what a composed answer may quote at most
_BARE_YES_NO = re.compile(r"^(?:(?:yes|no)\b[,.!]?\s+|(?:是的|不是|可以|不可以|不能)[，。！,]\s*)", re.IGNORECASE)


def _score(question_terms: frozenset[str], block: Block) -> float:
    terms = content_terms(block.text)
    if not question_terms or not terms:
        return 0.0
    return len(question_terms & terms) / len(question_terms)


def joined(parts: Sequence[Block]) -> str:
    """Blocks as text again: sentences that follow each other as one paragraph, a list or table on lines of its
    own, and a gap where blocks were left out."""
    text = ""
    for index, block in enumerate(parts):
        if index:
            previous = parts[index - 1]
            after_gap = block.position != previous.position + 1
            on_lines = "\n" in block.text or "\n" in previous.text or is_list(block.text) or is_list(previous.text)
            text += "\n\n" if after_gap or on_lines else glue(previous.text, block.text)
        text += block.text
    return text


def passage_answer(question: str, text: str, limit: int = ANSWER_CHARS) -> str:
    """The part of one passage that answers the question: all of a short passage, else its best blocks (those
    at least half as good as the best, passage order kept) up to `limit` characters."""
    parts = blocks(text)
    if not parts:
        return ""
    whole = joined(parts)
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
    return joined(sorted(chosen, key=lambda b: b.position))


def _separator(text: str) -> str:
    """Before the citation: a paragraph of its own after a list or table, else a space (none after Chinese)."""
    return "\n\n" if "\n" in text else glue(text, "[")


def compose_answer(question: str, sources: Sequence, limit: int = ANSWER_CHARS) -> str:
    """A grounded answer: from the first source in the customer's language (the first source when none is),
    what answers the question, with its citation."""
    if not sources:
        return ""
    language = language_of(question)
    same = [s for s in sources if language_of(s.text) == language]
    source = (same or list(sources))[0]
    quoted = _without_bare_yes_no(question, source, passage_answer(question, source.text, limit))
    answer = f"{quoted}{_separator(quoted)}[{source.number}]"
    if not same and language == "zh":
        answer = f"以下内容摘自我们的帮助中心（英文）：\n{answer}"
    return answer


def _without_bare_yes_no(question: str, source, quoted: str) -> str:
    """An FAQ answer's opening "Yes," or "No," answers the FAQ's own question. When the customer asked about
    something the passage never mentions ("a store in Berlin" against "Yes, our flagship store is in Hamburg"),
    the bare yes/no would answer the wrong question, so it is left out and the facts stay."""
    opening = _BARE_YES_NO.match(quoted)
    if not opening:
        return quoted
    known = content_terms(f"{source.title} {source.text}")
    if content_terms(question) <= known:
        return quoted
    rest = quoted[opening.end():]
    return rest[:1].upper() + rest[1:]
