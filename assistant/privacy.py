"""Customers' data rights and PII hygiene: erase one customer everywhere we keep their words (the store, transcript
exports), drop conversations past the retention period, redact PII in exports and log lines (`assistant.redaction`,
the rules alignment uses too)."""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from assistant.redaction import Redactor
from assistant.store.records import ErasureResult

EXPORT_GLOB = "*.jsonl"


def redacted_rows(rows: list[dict]) -> list[dict]:
    """Transcript rows (align format) with PII in every message replaced by placeholders."""
    redactor = Redactor()
    return [{**row, "messages": [{**m, "content": redactor.redact(m["content"])} for m in row["messages"]]}
            for row in rows]


def write_export(rows: list[dict], folder: Path) -> Path:
    """An export of transcripts, redacted, kept under `folder` so a later erasure can reach it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"transcripts-{datetime.now(UTC):%Y%m%d-%H%M%S-%f}.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for row in redacted_rows(rows):
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def scrub_exports(folder: Path, conversation_ids: set[str], customer_id: str | None = None) -> dict[str, int]:
    """Rewrite the exports under `folder` without these conversations (or this customer's); returns counts."""
    files = rows = 0
    for path in sorted(folder.glob(EXPORT_GLOB)) if folder.is_dir() else []:
        lines = path.read_text(encoding="utf-8").splitlines()
        kept = [line for line in lines if not _belongs(line, conversation_ids, customer_id)]
        if len(kept) == len(lines):
            continue
        files, rows = files + 1, rows + len(lines) - len(kept)
        partial = path.with_suffix(".tmp")
        partial.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        os.replace(partial, path)  # all or nothing: a crash leaves the old file or the new one
    return {"export_files": files, "export_rows": rows}


def _belongs(line: str, conversation_ids: set[str], customer_id: str | None) -> bool:
    try:
        row = json.loads(line)
    except ValueError:
        return False
    metadata = row.get("metadata") or {}
    return row.get("id") in conversation_ids or (customer_id is not None and metadata.get("customer_id") == customer_id)


def _counts(deleted: ErasureResult) -> dict[str, int]:
    return {"conversations": deleted.conversations, "messages": deleted.messages, "feedback": deleted.feedback}


def erase_customer(store, exports: Path, customer_id: str) -> dict[str, int]:
    """Everything of one customer: their conversations (messages, ratings, handoffs, alerts, what was recommended
    in them), their item history and export rows."""
    deleted = store.privacy.erase_customer(customer_id)
    interactions = store.interactions.erase_customer(customer_id)
    return {**_counts(deleted), "interactions": interactions,
            **scrub_exports(exports, set(deleted.ids), customer_id)}


def purge_expired(store, exports: Path, days: float, now: datetime | None = None) -> dict[str, int]:
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    deleted = store.privacy.purge_before(cutoff)
    return {**_counts(deleted), **scrub_exports(exports, set(deleted.ids))}


class RedactingFilter(logging.Filter):
    """Log lines keep their meaning, not the customer's email, phone, card or ID number."""

    def __init__(self):
        super().__init__()
        self.redactor = Redactor()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self.redactor.redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


def redact_logs() -> None:
    """Install the filter on every handler of the root logger (call after logging is configured)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
