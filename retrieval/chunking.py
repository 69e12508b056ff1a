"""Cut documents into passages: by Markdown headings first, then by size; one passage per FAQ entry."""

from __future__ import annotations

import re

from retrieval.documents import Document, Passage

HEADINGS = [("#", "h1"), ("##", "h2"), ("###", "h3")]
SEPARATORS = ["\n\n", "\n", "。", "！", "？", ". ", "! ", "? ", "；", "; ", "，", ", ", " ", ""]


def _splitters(chunk_chars: int, overlap_chars: int):
    from langchain_text_splitters import MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter

    by_heading = MarkdownHeaderTextSplitter(headers_to_split_on=HEADINGS, strip_headers=True)
    by_size = RecursiveCharacterTextSplitter(chunk_size=chunk_chars, chunk_overlap=overlap_chars,
                                             separators=SEPARATORS, keep_separator="end")
    return by_heading, by_size


def chunk_document(doc: Document, chunk_chars: int = 900, overlap_chars: int = 120) -> list[Passage]:
    """Passages of one document, in reading order; each keeps the heading path it sits under."""
    if doc.kind == "faq":
        return [Passage.make(doc, doc.text.strip(), doc.section, 0)]
    by_heading, by_size = _splitters(chunk_chars, overlap_chars)
    passages: list[Passage] = []
    for block in by_heading.split_text(doc.text):
        headings = [block.metadata[key] for _, key in HEADINGS if key in block.metadata]
        section = " > ".join(h for h in headings if h != doc.title) or None
        for piece in by_size.split_text(block.page_content):
            text = re.sub(r"[ \t]+\n", "\n", piece).strip()
            if len(text) >= 2:
                passages.append(Passage.make(doc, text, section, len(passages)))
    return passages


def normalized(text: str) -> str:
    """Text compared for de-duplication: case and whitespace do not count."""
    return re.sub(r"\s+", " ", text).strip().lower()
