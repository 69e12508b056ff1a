"""Citations a customer can open: each numbered source links to the company's own page for it (its `url`) or to the
article as the knowledge base holds it (`/sources/...`, served by `assistant.api.source_routes`)."""

from __future__ import annotations

import re
from urllib.parse import quote

CITED = re.compile(r"\[(\d{1,2})\]")


def anchor(section: str | None) -> str:
    """The HTML id of a section heading on a source page."""
    return re.sub(r"[^\w]+", "-", (section or "").lower(), flags=re.UNICODE).strip("-")


def source_href(source: dict) -> str:
    if source.get("url"):
        return source["url"]
    href = "/sources/" + quote(source["source"])
    section = anchor(source.get("section") or source.get("title"))
    return f"{href}#{section}" if section else href


def _label(source: dict) -> str:
    title = source["title"] or source["source"]
    if source.get("section") and source["section"] != title:
        title = f"{title} — {source['section']}"
    return title.replace("[", "(").replace("]", ")")


def linked_answer(text: str, sources: list[dict], heading: str = "Sources") -> str:
    """Markdown for a grounded answer: its [n] markers link to their sources, and the sources are listed under it."""
    if not sources:
        return text
    by_number = {s["number"]: s for s in sources}

    def link(match: re.Match) -> str:
        source = by_number.get(int(match.group(1)))
        return f"[\\[{match.group(1)}\\]]({source_href(source)})" if source else match.group(0)

    said = text.split("\n\nSources: ")[0]  # the plain footer gives way to the linked list
    body = CITED.sub(link, said)
    cited = {int(n) for n in CITED.findall(said)} & set(by_number)
    listed = [by_number[n] for n in sorted(cited)] or sources
    items = "  \n".join(f"\\[{s['number']}\\] [{_label(s)}]({source_href(s)})" for s in listed)
    return f"{body}\n\n**{heading}**\n\n{items}"
