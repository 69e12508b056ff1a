"""Grounding: find the company passages that answer a question, or decide that none does."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from assistant.config import RetrievalSettings
from assistant.prompt import CJK, sentence_pieces

log = logging.getLogger(__name__)
DEMO_HELP_CENTER = Path(__file__).resolve().parent.parent / "data" / "help-center"
SNIPPET_CHARS = 240


@dataclass(frozen=True)
class Source:
    """A passage given to the model, numbered as it is cited: [1], [2]..."""

    number: int
    title: str
    source: str
    section: str | None
    url: str | None
    text: str
    relevance: float

    def as_dict(self) -> dict:
        snippet = self.text if len(self.text) <= SNIPPET_CHARS else self.text[:SNIPPET_CHARS].rsplit(" ", 1)[0] + "…"
        return {"number": self.number, "title": self.title, "source": self.source, "section": self.section,
                "url": self.url, "snippet": snippet, "relevance": round(self.relevance, 3)}


LONG_MESSAGE_CHARS = 400


def search_query(message: str) -> str:
    """What to search for: a short message as it is; from a long one (a story, then the question) its questions,
    else its end, since an encoder reads only the first few hundred tokens and a long story drowns the question."""
    if len(message) <= LONG_MESSAGE_CHARS:
        return message
    asked = [s.strip() for s in sentence_pieces(message) if s.strip().endswith(("?", "？"))]
    query = " ".join(dict.fromkeys(asked))[-LONG_MESSAGE_CHARS:]
    return query or message[-LONG_MESSAGE_CHARS:]


@dataclass(frozen=True)
class Grounding:
    sources: list[Source]
    relevant: bool  # False: nothing relevant enough, the assistant says it does not know
    best_relevance: float = 0.0  # of the best passage found, relevant or not (to measure thresholds)


def index_settings(settings: RetrievalSettings):
    """The knowledge base's settings: every index and search field of the `retrieval:` section, passed whole."""
    from dataclasses import fields

    from retrieval.config import IndexSettings

    return IndexSettings(**{f.name: getattr(settings, f.name) for f in fields(IndexSettings)})


class Grounder:
    """Searches the knowledge base for each question; builds it from `sources` on first use if empty."""

    def __init__(self, settings: RetrievalSettings, folder: Path):
        self.settings = settings
        self.folder = folder
        self._kb = None

    @property
    def knowledge_base(self):
        if self._kb is None:
            from retrieval.knowledge_base import KnowledgeBase

            self._kb = KnowledgeBase(self.folder, index_settings(self.settings))
        return self._kb

    def default_sources(self) -> list[Path]:
        if self.settings.sources is not None:
            return [Path(s).expanduser() for s in self.settings.sources]
        return [DEMO_HELP_CENTER] if DEMO_HELP_CENTER.is_dir() else []

    def prepare(self, progress: bool = True) -> None:
        """Load the models and bring the configured sources in: all of them into an empty knowledge base, and the
        files added, changed or deleted since into one built from them (an index built from other documents is
        left alone: the default sources are the demo company's)."""
        kb = self.knowledge_base
        sources = self.default_sources()
        if sources and (len(kb) == 0 or kb.holds_files_under(sources)):
            report = kb.ingest(sources, progress=progress)  # files unchanged since are only hashed
            if report.files_added or report.files_changed or report.files_deleted:
                log.info("sources: %d files added, %d changed, %d deleted; %d passages", report.files_added,
                         report.files_changed, report.files_deleted, report.passages_total)
        elif kb.encoder_changed():  # `assistant align retrieval` promoted another encoder
            log.warning("re-encoding %d passages with the encoder %s", len(kb), self.settings.encoder)
            kb.reencode(progress=progress)
        kb.check_encoder()
        kb.search("warm-up", 1)

    def switch_retrieval(self, settings: RetrievalSettings, progress: bool = False) -> None:
        """Search with other models from now on (a promoted or rolled-back retrieval version): the knowledge base
        is encoded again into a staging index while the current one keeps answering, then swapped in."""
        from retrieval.knowledge_base import KnowledgeBase

        staged = KnowledgeBase(self.folder, index_settings(settings))
        if staged.encoder_changed():
            log.warning("re-encoding %d passages with the encoder %s", len(staged), settings.encoder)
            staged.reencode(progress=progress)
        staged.check_encoder()
        staged.search("warm-up", 1)
        self.settings, self._kb = settings, staged

    def reload_if_changed(self) -> bool:
        """Search the index on disk when another process changed it (`assistant ingest` while serving): read into
        a new knowledge base while the current one answers, then swapped in. Whether it was."""
        from retrieval.knowledge_base import KnowledgeBase

        if self._kb is None or not self._kb.changed_on_disk():
            return False
        fresh = KnowledgeBase(self.folder, index_settings(self.settings))
        fresh.check_encoder()
        self._kb = fresh
        return True

    def min_relevance(self, question: str) -> float:
        """The bar a passage must reach to answer `question`: set per language from measurements (Chinese
        relevance is lexical only with the default English encoder, so it runs lower)."""
        return self.settings.min_relevance_zh if CJK.search(question) else self.settings.min_relevance

    def ground(self, question: str) -> Grounding:
        hits = self.knowledge_base.search(search_query(question), self.settings.top_k)
        bar = self.min_relevance(question)
        best = max((h.relevance for h in hits), default=0.0)
        if best < bar:
            return Grounding([], False, best)
        # the best hit always goes in; weaker ones only if they are not far below the bar
        kept = [h for i, h in enumerate(hits) if i == 0 or h.relevance >= bar / 2]
        sources = [Source(i, h.passage.title, h.passage.source, h.passage.section, h.passage.url, h.passage.text,
                          h.relevance) for i, h in enumerate(kept, 1)]
        return Grounding(sources, True, best)
