"""What retrieval works on: documents read from files, and the passages they are cut into."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Document:
    """One readable unit of a source file: a whole article, or one FAQ entry."""

    source: str  # the file it came from (path relative to the ingested root, or absolute)
    title: str
    text: str
    kind: str = "article"  # article | faq
    url: str | None = None
    section: str | None = None


@dataclass(frozen=True)
class Passage:
    """A retrievable piece of a document; `id` is stable for the same source and text."""

    id: str
    source: str
    title: str
    text: str
    kind: str = "article"
    section: str | None = None
    url: str | None = None
    meta: dict = field(default_factory=dict)

    @staticmethod
    def make(doc: Document, text: str, section: str | None, ordinal: int) -> Passage:
        digest = hashlib.sha1(f"{doc.source}\0{ordinal}\0{text}".encode()).hexdigest()[:16]
        return Passage(id=digest, source=doc.source, title=doc.title, text=text, kind=doc.kind,
                       section=section, url=doc.url)

    def as_dict(self) -> dict:
        return asdict(self)

    def indexed_text(self) -> str:
        """What the encoders and BM25 see: title and section give short passages their context."""
        heading = self.title
        if self.section and self.section != self.title:
            heading = f"{self.title} — {self.section}" if self.title else self.section
        return f"{heading}\n{self.text}" if heading else self.text
