"""The check before anything is sent: every sentence of an answer must be supported by the sources it was
grounded in, and the answer must be in the customer's language.

A sentence is supported when
- every fact it states (numbers, amounts, durations, dates, times, e-mail addresses, URLs: `assistant.quantities`)
  is stated by the sources, and
- enough of its content words (stemmed English words; Chinese words and character pairs) occur in one source
  sentence or two neighbouring ones (`min_overlap`, measured: see `assistant eval support`).
Sentences without content words ("Sure!") state nothing and pass; our own fixed phrases (the source list, the offer of
a human) are not the model's claims and pass.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from itertools import pairwise

from assistant.passage_blocks import units
from assistant.prompt import CITATION, CJK, sentence_pieces
from assistant.quantities import quantities, unsupported_quantities

MIN_OVERLAP = 0.6  # share of a sentence's content terms found in its best source window (measured: DESIGN notes)
_MARKUP = re.compile(r"\*\*|__|`|^#+\s*|^\s*[-*•]\s+|^\s*\|", re.MULTILINE)
_LETTERS = re.compile(r"[A-Za-z]")
_OWN_PHRASES = re.compile(
    r"^\s*(sources?:|来源[:：])|connect you with a human|human agent|转接人工|人工客服|\bi don'?t know\b|不知道",
    re.IGNORECASE)


def language_of(text: str) -> str:
    """'zh' when Chinese characters make up a third or more of the letters, else 'en'."""
    text = CITATION.sub("", text)
    cjk, latin = len(CJK.findall(text)), len(_LETTERS.findall(text))
    if cjk == 0 and latin == 0:
        return "und"
    return "zh" if cjk >= (cjk + latin / 4) / 3 else "en"  # a Chinese character carries about 4 letters' worth


# the words that connect and adapt an answer without claiming anything ("Sure! Happy to help.")
CONNECTING_WORDS = (
    "sure yes yeah okay ok hello hi hey thanks thank welcome glad happy help helps helping sorry certainly course "
    "great good question questions anything else let know please note also just here following answer customer "
    "sources source according article help center 您好 你好 谢谢 好的 当然 请 注意 以下 根据 帮助 中心"
)


@lru_cache(maxsize=1)
def _connecting() -> frozenset[str]:
    from retrieval.lexical import tokenize

    return frozenset(tokenize(CONNECTING_WORDS))


def content_terms(text: str) -> frozenset[str]:
    """The words a claim is made of: stemmed English words and Chinese words/character pairs, stop words and
    connecting words out."""
    from retrieval.lexical import tokenize

    return frozenset(tokenize(_MARKUP.sub(" ", CITATION.sub(" ", text)))) - _connecting()


@dataclass(frozen=True)
class SentenceVerdict:
    """One sentence of an answer and whether the sources support it (`reason` says why not)."""

    text: str
    supported: bool
    overlap: float  # share of its content terms found in the best source window
    source: int | None = None  # the number of the source that supports it best
    reason: str | None = None


@dataclass(frozen=True)
class AnswerVerdict:
    """The check of a whole answer: its sentences, and whether it is in the customer's language."""

    sentences: tuple[SentenceVerdict, ...]
    language: str
    expected_language: str

    @property
    def cut(self) -> list[SentenceVerdict]:
        return [s for s in self.sentences if not s.supported]

    @property
    def kept_text(self) -> str:
        return "".join(s.text for s in self.sentences if s.supported).strip()

    @property
    def supported_share(self) -> float:
        claims = [s for s in self.sentences if s.text.strip()]
        return sum(s.supported for s in claims) / len(claims) if claims else 1.0

    @property
    def language_matches(self) -> bool:
        return self.language in (self.expected_language, "und") or self.expected_language == "und"

    def as_dict(self) -> dict:
        return {"supported_share": round(self.supported_share, 3), "checked": len(self.sentences),
                "language": self.language,
                "expected_language": self.expected_language,
                "cut": [{k: v for k, v in asdict(s).items() if k != "supported"} for s in self.cut]}


@dataclass(frozen=True)
class _Window:
    source: int
    terms: frozenset[str]


class SupportChecker:
    """Checks answer sentences against a fixed set of sources (anything with `number` and `text`)."""

    def __init__(self, sources: Sequence, question: str = "", min_overlap: float = MIN_OVERLAP):
        self.min_overlap = min_overlap
        self.expected_language = language_of(question) if question.strip() else "und"
        self.facts: set[str] = set()
        self.windows: list[_Window] = []
        for source in sources:
            self.facts |= quantities(source.text) | quantities(getattr(source, "title", "") or "")
            sentences = [content_terms(p) for p in units(source.text)]
            sentences = [terms for terms in sentences if terms]
            self.windows += [_Window(source.number, terms) for terms in sentences]
            self.windows += [_Window(source.number, a | b) for a, b in pairwise(sentences)]
            title = content_terms(getattr(source, "title", "") or "")
            if title and sentences:
                self.windows.append(_Window(source.number, title | sentences[0]))

    def check_sentence(self, sentence: str) -> SentenceVerdict:
        terms = content_terms(sentence)
        if _OWN_PHRASES.search(sentence) and not quantities(sentence, loose_words=False):
            return SentenceVerdict(sentence, True, 1.0)
        if not terms:
            invented = unsupported_quantities(sentence, self.facts)
            if invented:
                return SentenceVerdict(sentence, False, 0.0, None, _facts_reason(invented))
            return SentenceVerdict(sentence, True, 1.0)
        best, best_source = 0.0, None
        for window in self.windows:
            overlap = len(terms & window.terms) / len(terms)
            if overlap > best:
                best, best_source = overlap, window.source
        invented = unsupported_quantities(sentence, self.facts)
        if invented:
            return SentenceVerdict(sentence, False, best, best_source, _facts_reason(invented))
        if best < self.min_overlap:
            return SentenceVerdict(sentence, False, best, best_source,
                                   f"not in the sources (only {best:.0%} of its words are)")
        return SentenceVerdict(sentence, True, best, best_source)

    def check(self, answer: str) -> AnswerVerdict:
        return AnswerVerdict(tuple(self.check_sentence(s) for s in sentence_pieces(answer) if s.strip()),
                             language_of(answer), self.expected_language)


def _facts_reason(invented: set[str]) -> str:
    listed = ", ".join(sorted(invented)[:3])
    return f"states {listed}, which no source does"
