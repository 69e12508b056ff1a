"""What customers did with catalogue items, as files (the README's contract) and as ordered histories.

A row (CSV with a header, or JSONL): `customer`, `item`, `kind` (view | cart | purchase | rating, and the kinds the
product records itself: shown | click | dismiss), `time` (ISO-8601 or unix seconds), optional `rating` (1-5).
A MovieLens folder (`u.data`: user, item, rating, unix time, tab-separated) reads as rating rows.

Histories order each customer's positive interactions by time; ties (MovieLens has many ratings in one second) keep
the order of the file, so the same file always gives the same histories.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from assistant.errors import AssistantError
from retrieval.loaders import BadLine, json_object

IMPORTED_KINDS = ("view", "cart", "purchase", "rating")
RECORDED_KINDS = ("shown", "click", "dismiss")
KINDS = IMPORTED_KINDS + RECORDED_KINDS
POSITIVE_KINDS = frozenset({"view", "cart", "purchase", "rating", "click"})  # what a recommender learns from
LOW_RATING = 2.0  # a rating at or below this says "not for me": kept, but not a positive


class InteractionDataError(AssistantError, ValueError):
    """An interactions file cannot be used; the message says which file and line."""


@dataclass(frozen=True)
class Interaction:
    customer: str
    item: str
    kind: str
    time: float  # unix seconds
    rating: float | None = None

    @property
    def positive(self) -> bool:
        if self.kind not in POSITIVE_KINDS:
            return False
        return self.rating is None or self.rating > LOW_RATING


@dataclass
class InteractionSet:
    rows: list[Interaction] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # "file:line: reason"
    stored: int = 0  # of `rows`, how many were new to the store (set by the import)

    def __len__(self) -> int:
        return len(self.rows)


def table_rows(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, row) for each data row of a CSV (header first) or JSONL file; `BadLine` for a broken one."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InteractionDataError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    except OSError as exc:
        raise InteractionDataError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if path.suffix.lower() == ".jsonl":
        for line_no, line in enumerate(text.splitlines(), 1):
            try:
                row = json_object(line, line_no)
            except BadLine as exc:
                yield line_no, exc  # type: ignore[misc]
                continue
            if row is not None:
                yield line_no, row
        return
    if path.suffix.lower() != ".csv":
        raise InteractionDataError(f"{path}: expected a .csv or .jsonl file")
    reader = csv.DictReader(io.StringIO(text))
    for row in reader:
        yield reader.line_num, {str(k).strip().lower(): (v.strip() if isinstance(v, str) else v)
                                for k, v in row.items() if k is not None}


def parse_time(value: object) -> float:
    """Unix seconds from unix seconds or an ISO-8601 date/time (no zone: UTC)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value or "").strip()
    if not text:
        raise ValueError("'time' is missing")
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"'time' {text!r} is neither unix seconds nor an ISO-8601 date") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _interaction(row: dict, known_items: set[str] | None) -> Interaction:
    customer = str(row.get("customer") or "").strip()
    item = str(row.get("item") or "").strip()
    kind = str(row.get("kind") or "").strip().lower()
    if not customer:
        raise ValueError("'customer' is missing")
    if not item:
        raise ValueError("'item' is missing")
    if kind not in KINDS:
        raise ValueError(f"'kind' {kind!r} is not one of {', '.join(KINDS)}")
    if known_items is not None and item not in known_items:
        raise ValueError(f"item {item!r} is not in the catalogue")
    rating = row.get("rating")
    if rating in (None, ""):
        rating = None
    else:
        try:
            rating = float(rating)
        except (TypeError, ValueError):
            raise ValueError(f"'rating' {rating!r} is not a number") from None
    return Interaction(customer, item, kind, parse_time(row.get("time")), rating)


def load_interactions(path: Path, known_items: set[str] | None = None, strict: bool = False) -> InteractionSet:
    """Read an interactions file; bad rows (and items missing from `known_items`) are reported and skipped."""
    path = Path(path)
    result = InteractionSet()
    for line_no, row in table_rows(path):
        try:
            if isinstance(row, BadLine):
                raise ValueError(row.reason)
            result.rows.append(_interaction(row, known_items))
        except ValueError as exc:
            message = f"{path}:{line_no}: {exc}"
            if strict:
                raise InteractionDataError(message) from exc
            result.errors.append(message)
    return result


def read_movielens(folder: Path) -> list[Interaction]:
    """The ratings of a MovieLens-100K-style folder (`u.data`), in file order."""
    path = Path(folder) / "u.data"
    if not path.is_file():
        raise InteractionDataError(f"{folder}: no u.data (a MovieLens folder: user, item, rating, time per line)")
    rows = []
    for line_no, line in enumerate(path.read_text(encoding="latin-1").splitlines(), 1):
        parts = line.split("\t")
        if not line.strip():
            continue
        if len(parts) != 4:
            raise InteractionDataError(f"{path}:{line_no}: expected 4 tab-separated fields, found {len(parts)}")
        try:
            rows.append(Interaction(parts[0], parts[1], "rating", float(parts[3]), float(parts[2])))
        except ValueError as exc:
            raise InteractionDataError(f"{path}:{line_no}: rating and time must be numbers") from exc
    return rows


def histories(interactions: list[Interaction], positive_only: bool = True) -> dict[str, list[str]]:
    """Each customer's items in time order (ties: file order), repeats after the first dropped."""
    ordered = sorted(range(len(interactions)), key=lambda i: (interactions[i].time, i))
    result: dict[str, list[str]] = {}
    seen: dict[str, set[str]] = {}
    for i in ordered:
        row = interactions[i]
        if positive_only and not row.positive:
            continue
        items = seen.setdefault(row.customer, set())
        if row.item in items:
            continue
        items.add(row.item)
        result.setdefault(row.customer, []).append(row.item)
    return result
