"""How a passage is cut into what can be quoted or checked: sentences (with the ones a hard line wrap cut in two
joined again), and lists / tables / numbered steps kept whole with the line that introduces them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.prompt import sentence_pieces

_LIST_LINE = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)]|\|)\s*")
_HEADING = re.compile(r"^\s*#+\s")
_WIDE = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")  # Chinese characters and punctuation


def glue(before: str, after: str) -> str:
    """What goes between two pieces of running text: nothing between Chinese ones, else a space."""
    return "" if _WIDE.match(before[-1:]) or _WIDE.match(after[:1]) else " "


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
            joined[-1] = previous + glue(previous, piece) + piece
        else:
            joined.append(piece)
    return joined


def is_list(text: str) -> bool:
    """A list item, a table row or a numbered step."""
    return bool(_LIST_LINE.match(text))


def units(text: str) -> list[str]:
    """The smallest claims of a passage: its sentences (wraps joined) and each line of its lists and tables."""
    found = []
    for block in blocks(text):
        found.extend(line.strip() for line in block.text.splitlines() if line.strip())
    return found
