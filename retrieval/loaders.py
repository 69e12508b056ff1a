"""Read source files into documents: Markdown, text, HTML, PDF, and FAQ files (JSONL/CSV with question, answer).

A file that cannot be used raises `SkippedFile` with the reason; the caller skips it and goes on.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from retrieval.documents import Document

ARTICLE_SUFFIXES = {".md", ".markdown", ".txt", ".html", ".htm", ".pdf"}
FAQ_SUFFIXES = {".jsonl", ".csv"}
SUPPORTED_SUFFIXES = ARTICLE_SUFFIXES | FAQ_SUFFIXES
MAX_FILE_BYTES = 20 * 1024 * 1024


class SkippedFile(Exception):
    """This file is not ingested; the message says why (shown in the ingest summary)."""


def discover(paths: list[Path]) -> Iterator[tuple[Path, Path]]:
    """(file, root) for every file under the given files or folders (recursive, hidden files left out)."""
    for path in paths:
        if path.is_file():
            yield path, path.parent
        elif path.is_dir():
            for file in sorted(path.rglob("*")):
                if file.is_file() and not any(part.startswith(".") for part in file.relative_to(path).parts):
                    yield file, path
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        raise SkippedFile("binary content (NUL bytes) in a text file")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise SkippedFile("not valid UTF-8 or GB18030 text")


def _title_from_markdown(text: str, fallback: str) -> str:
    match = re.search(r"^#\s+(.+)$", text, flags=re.MULTILINE)
    return match.group(1).strip() if match else fallback


def _html_to_markdown(html: str) -> tuple[str, str | None]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "nav", "footer", "noscript", "template"]):
        tag.decompose()
    title = soup.title.get_text(strip=True) if soup.title else None
    for level in range(1, 7):
        for heading in soup.find_all(f"h{level}"):
            heading.replace_with(f"\n\n{'#' * level} {heading.get_text(' ', strip=True)}\n\n")
    for item in soup.find_all("li"):
        item.insert_before("\n- ")
    for block in soup.find_all(["p", "div", "br", "tr", "table", "section", "article"]):
        block.insert_after("\n")
    body = soup.body or soup
    text = re.sub(r"[ \t]+", " ", body.get_text())
    text = re.sub(r"\n\s*\n\s*\n+", "\n\n", text)
    return text.strip(), title


def _pdf_text(path: Path) -> tuple[str, str | None]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        pages = [page.extract_text() or "" for page in reader.pages]
        title = (reader.metadata.title if reader.metadata else None) or None
    except (PdfReadError, ValueError, KeyError, OSError) as exc:
        raise SkippedFile(f"unreadable PDF ({exc})") from exc
    return "\n\n".join(p.strip() for p in pages if p.strip()), title


class BadLine(ValueError):
    """A line of a JSONL file that is not a JSON object."""

    def __init__(self, line_no: int, reason: str):
        super().__init__(f"line {line_no}: {reason}")
        self.line_no = line_no
        self.reason = reason


def json_object(line: str, line_no: int) -> dict | None:
    """The JSON object on one line of a JSONL file; None for a blank line."""
    if not line.strip():
        return None
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BadLine(line_no, f"not valid JSON ({exc.msg})") from exc
    if not isinstance(row, dict):
        raise BadLine(line_no, "expected a JSON object")
    return row


def jsonl_objects(lines: Iterable[str]) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a JSONL file."""
    for line_no, line in enumerate(lines, 1):
        row = json_object(line, line_no)
        if row is not None:
            yield line_no, row


def _faq_rows(path: Path, text: str) -> Iterator[tuple[int, dict]]:
    if path.suffix == ".jsonl":
        try:
            yield from jsonl_objects(text.splitlines())
        except BadLine as exc:
            raise SkippedFile(str(exc)) from exc
    else:
        reader = csv.DictReader(io.StringIO(text))
        fields = {f.strip().lower() for f in reader.fieldnames or []}
        if not {"question", "answer"} <= fields:
            raise SkippedFile(f"CSV needs 'question' and 'answer' columns; found {sorted(fields)}")
        for line_no, row in enumerate(reader, 2):
            yield line_no, {k.strip().lower(): v for k, v in row.items() if k}


def load_file(path: Path, source: str) -> list[Document]:
    """The documents in one file; raises `SkippedFile` with the reason when it cannot be used."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise SkippedFile(f"unsupported file type '{suffix or path.name}'")
    size = path.stat().st_size
    if size == 0:
        raise SkippedFile("empty file")
    if size > MAX_FILE_BYTES:
        raise SkippedFile(f"file too large ({size / 1e6:.1f} MB > {MAX_FILE_BYTES / 1e6:.0f} MB)")
    if suffix == ".pdf":
        text, title = _pdf_text(path)
        docs = [Document(source, title or path.stem, text)]
    elif suffix in FAQ_SUFFIXES:
        docs = []
        for line_no, row in _faq_rows(path, _read_text(path)):
            question, answer = str(row.get("question") or "").strip(), str(row.get("answer") or "").strip()
            if not question or not answer:
                raise SkippedFile(f"line {line_no}: 'question' and 'answer' must both be non-empty")
            docs.append(Document(source, question, answer, kind="faq", url=row.get("url")))
    elif suffix in (".html", ".htm"):
        text, title = _html_to_markdown(_read_text(path))
        docs = [Document(source, title or _title_from_markdown(text, path.stem), text)]
    else:
        text = _read_text(path)
        docs = [Document(source, _title_from_markdown(text, path.stem.replace("-", " ")), text)]
    docs = [d for d in docs if d.text.strip()]
    if not docs:
        raise SkippedFile("no text in file")
    return docs
