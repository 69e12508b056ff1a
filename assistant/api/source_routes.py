"""The articles citations point to: `/sources/{source}` shows a knowledge-base document as the assistant read it,
section by section (each section has an anchor, so `#section` opens at the cited part)."""

from __future__ import annotations

import html

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from markdown_it import MarkdownIt

from assistant.citations import anchor

router = APIRouter(tags=["sources"])
_markdown = MarkdownIt("commonmark", {"html": False})  # raw HTML in a document is shown as text, never run

PAGE = """<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>
body {{font: 16px/1.6 system-ui, sans-serif; color: #1f2328; max-width: 760px; margin: 2rem auto; padding: 0 1rem;}}
header {{color: #59636e; font-size: .9rem; border-bottom: 1px solid #d1d9e0; padding-bottom: .5rem;}}
section {{padding: .25rem 1rem; margin: 0 -1rem; border-radius: 6px;}}
section:target {{background: #fff8c5;}}
h1 {{font-size: 1.8rem;}} h2 {{font-size: 1.25rem; margin-top: 1.5rem;}}
</style></head><body><header>{company} help center</header><h1 id="{title_id}">{title}</h1>{sections}</body></html>"""


def _without_overlap(previous: str, text: str, longest: int = 400) -> str:
    """Consecutive chunks of one long section repeat a little text; show it once."""
    for size in range(min(longest, len(previous), len(text)), 20, -1):
        if previous.endswith(text[:size]):
            return text[size:].lstrip()
    return text


def _faq_sections(passages: list) -> list[str]:
    return [f'<section id="{anchor(p.title)}"><h2>{html.escape(p.title)}</h2>{_markdown.render(p.text)}</section>'
            for p in passages]


def _article_sections(passages: list, title: str) -> list[str]:
    parts: list[str] = []
    current, previous = "", ""
    for passage in passages:
        section = passage.section if passage.section != title else None
        if section != current or not parts:
            if parts:
                parts.append("</section>")
            parts.append(f'<section id="{anchor(section)}"><h2>{html.escape(section)}</h2>' if section
                         else "<section>")
            current, previous = section, ""
        parts.append(_markdown.render(_without_overlap(previous, passage.text)))
        previous = passage.text
    return [*parts, "</section>"]


def render_source(passages: list, company: str) -> str:
    faq = passages[0].kind == "faq"
    title = "Frequently asked questions" if faq else passages[0].title or passages[0].source
    sections = _faq_sections(passages) if faq else _article_sections(passages, title)
    lang = "zh" if any("\u4e00" <= ch <= "\u9fff" for ch in title) else "en"
    return PAGE.format(lang=lang, title=html.escape(title), title_id=anchor(title), company=html.escape(company),
                       sections="".join(sections))


@router.get("/sources/{source:path}", response_class=HTMLResponse)
async def show_source(request: Request, source: str) -> HTMLResponse:
    """One knowledge-base document, as the assistant cites it."""
    service = request.app.state.service
    grounder = service.grounder
    passages = [p for p in grounder.knowledge_base.passages if p.source == source] if grounder else []
    if not passages:
        raise HTTPException(404, f"no document '{source}' in the knowledge base")
    return HTMLResponse(render_source(passages, service.settings.company_name))
