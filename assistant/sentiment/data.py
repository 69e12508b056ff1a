"""Labelled sentiment files (DESIGN.md): JSONL `{"text": str, "label": "negative"|"neutral"|"positive"}`, with an
optional `"entity"` the label is about (entity-level sentiment: the same headline can be good for one company and
bad for another).

A bad line (not JSON, bad encoding, empty or over-long text, unknown label) is reported as `file:line: reason`
and skipped; `strict` stops at the first one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from assistant.errors import AssistantError
from assistant.sentiment.entities import MAX_ENTITY_CHARS, marked
from assistant.sentiment.labels import LABELS
from retrieval.loaders import BadLine, json_object

MAX_TEXT_CHARS = 2000


class SentimentDataError(AssistantError, ValueError):
    """A labelled file cannot be used; the message says which file and line."""


@dataclass
class LabelledSet:
    texts: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # "file:line: reason"
    entities: list[str | None] = field(default_factory=list)  # empty, or one per text (None: about the whole text)

    def __len__(self) -> int:
        return len(self.texts)

    def add(self, text: str, label: str, entity: str | None = None) -> None:
        if entity is not None or self.entities:
            self.entities += [None] * (len(self.texts) - len(self.entities))
            self.entities.append(entity)
        self.texts.append(text)
        self.labels.append(label)

    def extend(self, other: LabelledSet) -> None:
        if other.entities or self.entities:
            self.entities = (self.entities or [None] * len(self.texts)) + (other.entities or [None] * len(other))
        self.texts += other.texts
        self.labels += other.labels
        self.errors += other.errors

    def inputs(self) -> list[str]:
        """The classifier's inputs: each text with its entity marked (`entities.mark_entity`)."""
        return marked(self.texts, self.entities or None)

    def subset(self, indices: list[int]) -> LabelledSet:
        return LabelledSet([self.texts[i] for i in indices], [self.labels[i] for i in indices], [],
                           [self.entities[i] for i in indices] if self.entities else [])

    def counts(self) -> dict[str, int]:
        return {label: self.labels.count(label) for label in LABELS if label in self.labels}


def read_labelled(path: Path, strict: bool = False) -> LabelledSet:
    """Read one labelled JSONL file; bad lines are skipped with their reason unless `strict`."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SentimentDataError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    result = LabelledSet()
    for line_no, line in enumerate(raw.split(b"\n"), 1):
        try:
            text, label, entity = _parse(line, line_no)
        except BadLine as exc:
            message = f"{path}:{line_no}: {exc.reason}"
            if strict:
                raise SentimentDataError(message) from exc
            result.errors.append(message)
            continue
        if text is not None:
            result.add(text, label, entity)
    if not result.texts:
        first = "; ".join(result.errors[:3]) or "the file is empty"
        raise SentimentDataError(f"{path}: no usable labelled lines ({first})")
    return result


def _parse(line: bytes, line_no: int) -> tuple[str | None, str | None, str | None]:
    try:
        decoded = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadLine(line_no, f"not UTF-8 (byte {exc.start})") from exc
    row = json_object(decoded, line_no)
    if row is None:
        return None, None, None
    text, label = row.get("text"), row.get("label")
    if not isinstance(text, str) or not text.strip():
        raise BadLine(line_no, "'text' is missing or empty")
    if len(text) > MAX_TEXT_CHARS:
        raise BadLine(line_no, f"'text' has {len(text)} characters (limit {MAX_TEXT_CHARS})")
    if label not in LABELS:
        raise BadLine(line_no, f"'label' is {label!r}; expected one of {', '.join(LABELS)}")
    entity = row.get("entity")
    if entity is not None and (not isinstance(entity, str) or len(entity.strip()) > MAX_ENTITY_CHARS):
        raise BadLine(line_no, f"'entity' must be a name of at most {MAX_ENTITY_CHARS} characters")
    return text.strip(), label, (entity.strip() or None) if entity else None


def hash_fraction(text: str, part: int = 0) -> float:
    """A stable number in [0, 1] from the text (`part` picks other hash bits, for an independent split)."""
    digest = hashlib.sha1(text.encode()).hexdigest()
    return int(digest[8 * part:8 * part + 8], 16) / 0xFFFFFFFF


def read_many(paths: list[Path], strict: bool = False) -> LabelledSet:
    combined = LabelledSet()
    for path in paths:
        combined.extend(read_labelled(path, strict))
    return combined
