"""The company's catalogue as files (the README's contract): one item a row, CSV with a header or JSONL.

Fields: `id` and `title` (required), `description`, `category`, `price` (a number), `currency` (default EUR),
`attributes` (JSON object, or `key=value; key=value` in CSV), `available` (true/false, yes/no, 1/0, in stock/out of
stock; default true), `url`, `image`. A duplicate id, a price that is not a number or a missing title is an error with
its file and line; nothing of a file with errors is stored.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from assistant.errors import AssistantError
from assistant.recommend.interactions import InteractionDataError, table_rows
from retrieval.loaders import BadLine

FIELDS = ("id", "title", "description", "category", "price", "currency", "attributes", "available", "url", "image")
TRUE_WORDS = {"true", "yes", "1", "in stock", "available", "y"}
FALSE_WORDS = {"false", "no", "0", "out of stock", "unavailable", "n", "sold out"}
MAX_ID_CHARS = 128


class CatalogDataError(AssistantError, ValueError):
    """A catalogue file cannot be used; the message lists each bad row as `file:line: field: reason`."""


@dataclass(frozen=True)
class CatalogItem:
    id: str
    title: str
    description: str = ""
    category: str = ""
    price: float | None = None
    currency: str = "EUR"
    attributes: dict[str, str] = field(default_factory=dict)
    available: bool = True
    url: str = ""
    image: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def content_hash(self) -> str:
        return hashlib.sha1(json.dumps(self.as_dict(), sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    def indexed_text(self) -> str:
        """What search reads: title, category, attributes and description."""
        attributes = " ".join(f"{k} {v}" for k, v in self.attributes.items())
        return " \n".join(p for p in (self.title, self.category, attributes, self.description) if p)

    def facts(self, price: bool = True) -> list[str]:
        """Short catalogue facts a recommendation may cite (`price`: with the price)."""
        facts = [f"{k}: {v}" for k, v in self.attributes.items()]
        if price and self.price is not None:
            facts.append(f"price: {self.price:.2f} {self.currency}")
        facts.append("in stock" if self.available else "out of stock")
        return facts


def _attributes(value: object) -> dict[str, str]:
    if value in (None, ""):
        return {}
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    text = str(value).strip()
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"attributes: not a JSON object ({exc.msg})") from None
        if not isinstance(parsed, dict):
            raise ValueError("attributes: expected a JSON object")
        return {str(k): str(v) for k, v in parsed.items()}
    result = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        key, sep, val = part.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"attributes: {part.strip()!r} is not key=value")
        result[key.strip()] = val.strip()
    return result


def _available(value: object) -> bool:
    if value in (None, ""):
        return True
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise ValueError(f"available: {value!r} is not true/false")


def _price(value: object) -> float | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        raise ValueError(f"price: {value!r} is not a number")
    try:
        price = float(str(value).replace(",", "").strip()) if not isinstance(value, (int, float)) else float(value)
    except ValueError:
        raise ValueError(f"price: {value!r} is not a number") from None
    if price < 0 or price != price or price == float("inf"):
        raise ValueError(f"price: {value!r} must be a number of zero or more")
    return price


def parse_item(row: dict) -> CatalogItem:
    unknown = sorted(set(row) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)}; the fields are {', '.join(FIELDS)}")
    item_id = str(row.get("id") or "").strip()
    title = str(row.get("title") or "").strip()
    if not item_id:
        raise ValueError("id: missing")
    if len(item_id) > MAX_ID_CHARS:
        raise ValueError(f"id: longer than {MAX_ID_CHARS} characters")
    if not title:
        raise ValueError("title: missing")
    return CatalogItem(
        id=item_id, title=title, description=str(row.get("description") or "").strip(),
        category=str(row.get("category") or "").strip(), price=_price(row.get("price")),
        currency=str(row.get("currency") or "EUR").strip().upper(), attributes=_attributes(row.get("attributes")),
        available=_available(row.get("available")), url=str(row.get("url") or "").strip(),
        image=str(row.get("image") or "").strip(),
    )


def load_catalog(path: Path) -> list[CatalogItem]:
    """Every item of the file, or `CatalogDataError` listing every bad row (up to 20) and nothing else."""
    path = Path(path)
    items: list[CatalogItem] = []
    errors: list[str] = []
    first_line: dict[str, int] = {}
    try:
        rows = list(table_rows(path))
    except InteractionDataError as exc:
        raise CatalogDataError(str(exc)) from exc
    for line_no, row in rows:
        try:
            if isinstance(row, BadLine):
                raise ValueError(row.reason)
            item = parse_item(row)
        except ValueError as exc:
            errors.append(f"{path}:{line_no}: {exc}")
            continue
        if item.id in first_line:
            errors.append(f"{path}:{line_no}: id: {item.id!r} is already used on line {first_line[item.id]}")
            continue
        first_line[item.id] = line_no
        items.append(item)
    if errors:
        more = f"\n... and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise CatalogDataError(f"{len(errors)} bad row(s); nothing was stored:\n" + "\n".join(errors[:20]) + more)
    if not items:
        raise CatalogDataError(f"{path}: no items (an empty catalogue): each row needs at least id and title")
    return items


def read_movielens_items(folder: Path) -> dict[str, CatalogItem]:
    """The titles and genres of a MovieLens-100K-style folder (`u.item`, `u.genre`) as catalogue items; {} without."""
    folder = Path(folder)
    if not (folder / "u.item").is_file():
        return {}
    genres = [line.split("|")[0] for line in (folder / "u.genre").read_text(encoding="latin-1").splitlines()
              if line.strip()] if (folder / "u.genre").is_file() else []
    items = {}
    for line in (folder / "u.item").read_text(encoding="latin-1").splitlines():
        parts = line.split("|")
        if len(parts) < 5 or not parts[0].strip():
            continue
        flags = parts[5:]
        kinds = [g for g, flag in zip(genres, flags, strict=False) if flag.strip() == "1" and g != "unknown"]
        items[parts[0]] = CatalogItem(parts[0], parts[1].strip() or parts[0], category=", ".join(kinds),
                                      available=True)
    return items
