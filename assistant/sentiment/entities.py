"""Entity-level (target-dependent) sentiment: the entity a text is scored for is marked in the classifier's input,
so one headline about two companies can be good news for one and bad news for the other."""

from __future__ import annotations

import contextlib
import json

MAX_ENTITY_CHARS = 128


def mark_entity(text: str, entity: str | None) -> str:
    """The classifier's input for `text` judged from `entity`'s side: `[entity] text` (the text itself without one)."""
    return f"[{entity.strip()}] {text}" if entity and entity.strip() else text


def marked(texts: list[str], entities: list[str | None] | None) -> list[str]:
    if entities is None:
        return list(texts)
    if len(entities) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(entities)} entities")
    return [mark_entity(text, entity) for text, entity in zip(texts, entities, strict=True)]


def split_entities(value) -> list[str]:
    """The entities a feed row names: one name, `A; B`, or a JSON list ["A", "B"] (each at most 128 characters)."""
    if value in (None, ""):
        return []
    if isinstance(value, str) and value.strip().startswith("["):
        with contextlib.suppress(json.JSONDecodeError):
            value = json.loads(value)
    names = value if isinstance(value, list) else str(value).split(";")
    seen: list[str] = []
    for name in names:
        name = str(name).strip()[:MAX_ENTITY_CHARS]
        if name and name not in seen:
            seen.append(name)
    return seen
