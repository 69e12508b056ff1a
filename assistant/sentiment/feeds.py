"""News/comment feeds: read CSV or JSONL of timestamped texts, score them in batches, store them, raise alerts.

Each row: `text`, a time (`timestamp`, `time`, `date`, `published_at` or `created_at`: ISO 8601, `YYYY-MM-DD
[HH:MM[:SS]]`, `YYYY/MM/DD ...` or epoch seconds; no zone = UTC), and optional `source`, `entity`, `topic`.
A row naming several entities (`"BP; Shell"` or a JSON list) becomes one item per entity, each scored for its own
entity (a classifier trained with entities tells "BP wins contract from Shell" apart for the two).
A bad row is reported as `file:line: reason` and skipped (`strict` stops at the first); rows already stored
(same text, time, source and entity) are not stored twice.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tqdm.auto import tqdm

from assistant.errors import AssistantError
from assistant.sentiment.data import MAX_TEXT_CHARS
from assistant.sentiment.entities import split_entities

TIME_FIELDS = ("timestamp", "time", "date", "published_at", "created_at")
OPTIONAL_FIELDS = ("source", "entity", "topic")
_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d")


class FeedError(AssistantError, ValueError):
    """A feed file cannot be read at all (the message names the file)."""


class BadRow(ValueError):
    pass


@dataclass
class FeedRead:
    items: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def parse_time(value) -> datetime:
    if isinstance(value, bool) or value is None or value == "":
        raise BadRow("the time is missing")
    if isinstance(value, int | float) or (isinstance(value, str) and value.strip().replace(".", "", 1).isdigit()
                                          and len(value.strip()) >= 9):
        return datetime.fromtimestamp(float(value), UTC)
    text = str(value).strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        for pattern in _FORMATS:
            try:
                parsed = datetime.strptime(text, pattern)
                break
            except ValueError:
                continue
        else:
            raise BadRow(f"time {text!r} is not a date (use ISO 8601, e.g. 2026-11-28T09:30:00Z)") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _items(row: dict, defaults: dict) -> list[dict]:
    text = row.get("text")
    if not isinstance(text, str) or not text.strip():
        raise BadRow("'text' is missing or empty")
    if len(text) > MAX_TEXT_CHARS:
        raise BadRow(f"'text' has {len(text)} characters (limit {MAX_TEXT_CHARS})")
    present = [name for name in TIME_FIELDS if row.get(name) not in (None, "")]
    if not present:
        raise BadRow(f"no time: give one of {', '.join(TIME_FIELDS)}")
    item = {"text": text.strip(), "published_at": parse_time(row[present[0]])}
    for name in OPTIONAL_FIELDS:
        value = row.get(name) or defaults.get(name)
        item[name] = str(value).strip()[:128] if value not in (None, "") else None
    entities = split_entities(row.get("entity") or defaults.get("entity"))
    return [{**item, "entity": entity} for entity in entities] if entities else [item]


def _decoded_lines(raw: bytes, path: Path, read: FeedRead) -> list[tuple[int, str]]:
    lines = []
    for line_no, line in enumerate(raw.split(b"\n"), 1):
        try:
            lines.append((line_no, line.decode("utf-8-sig" if line_no == 1 else "utf-8").rstrip("\r")))
        except UnicodeDecodeError as exc:
            read.errors.append(f"{path}:{line_no}: not UTF-8 (byte {exc.start}); re-save the file as UTF-8")
    return lines


def read_feed(path: Path, defaults: dict | None = None, strict: bool = False) -> FeedRead:
    """Rows of a .csv or .jsonl feed file; `defaults` fills source/entity/topic where a row has none."""
    path, defaults, read = Path(path), defaults or {}, FeedRead()
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".json", ".ndjson"):
        raise FeedError(f"{path}: unknown feed format '{path.suffix}' (use .csv or .jsonl)")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FeedError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    lines = _decoded_lines(raw, path, read)
    rows = _csv_rows(lines, path) if suffix == ".csv" else _jsonl_rows(lines)
    for line_no, row in rows:
        try:
            if isinstance(row, BadRow):
                raise row
            read.items += _items(row, defaults)
        except BadRow as exc:
            read.errors.append(f"{path}:{line_no}: {exc}")
        if strict and read.errors:
            raise FeedError(read.errors[0])
    prefix = len(str(path)) + 1
    read.errors.sort(key=lambda error: int(error[prefix:].split(":", 1)[0]))
    return read


def _jsonl_rows(lines: list[tuple[int, str]]):
    for line_no, line in lines:
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            yield line_no, BadRow(f"not valid JSON ({exc.msg})")
            continue
        yield line_no, row if isinstance(row, dict) else BadRow("expected a JSON object")


def _csv_rows(lines: list[tuple[int, str]], path: Path):
    numbers = [n for n, _ in lines]
    reader = csv.DictReader(io.StringIO("\n".join(text for _, text in lines)))
    if not reader.fieldnames or "text" not in [f.strip() for f in reader.fieldnames]:
        raise FeedError(f"{path}: the header must name a 'text' column (found {reader.fieldnames})")
    for row in reader:
        line_no = numbers[min(reader.line_num, len(numbers)) - 1]
        yield line_no, {(k or "").strip(): v for k, v in row.items()}


@dataclass
class IngestReport:
    read: int = 0
    added: int = 0
    duplicates: int = 0
    errors: list[str] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)
    alerts: list[str] = field(default_factory=list)


def ingest_feed(store, scorer, path: Path, settings, defaults: dict | None = None, strict: bool = False,
                batch_size: int = 256, progress: bool = True) -> IngestReport:
    """Read, score (in batches), store, then check the feed alert rules over the stored items."""
    read = read_feed(path, defaults, strict)
    report = IngestReport(read=len(read.items), errors=read.errors)
    with tqdm(total=len(read.items), desc=f"scoring {Path(path).name}", unit="text", disable=not progress) as bar:
        for start in range(0, len(read.items), batch_size):
            batch = read.items[start:start + batch_size]
            results = scorer.score([i["text"] for i in batch], [i["entity"] for i in batch])
            for item, result in zip(batch, results, strict=True):
                item["label"], item["score"] = result.label, result.score
                report.labels[result.label] = report.labels.get(result.label, 0) + 1
            bar.update(len(batch))
    report.added, report.duplicates = store.sentiment.add_feed_items(read.items)
    report.alerts = raise_feed_alerts(store, settings)
    return report


def raise_feed_alerts(store, settings) -> list[str]:
    """Check the window rules over all stored feed items, per entity and overall; store the new alerts."""
    from assistant.sentiment.trends import feed_alerts

    rows = store.sentiment.feed_items()
    new = []
    for by in ("entity", None):
        for alert in feed_alerts(rows, settings.feed_window, settings.feed_negative_share, settings.feed_jump,
                                 settings.feed_baseline_windows, settings.feed_min_items, by=by):
            window = f"{settings.feed_window}:{alert.window_start.isoformat()}"
            key = f"feed:{by or 'all'}:{alert.group}:{window}:{alert.rule}"
            entity = alert.group if by == "entity" else None
            if store.sentiment.add_alert(key, "feed", alert.rule, alert.detail, entity=entity,
                                         window_start=alert.window_start):
                new.append(alert.detail)
    return new
