"""Text for Gradio's markdown (gr.Chatbot, gr.Markdown: `marked` with GFM, then a sanitiser that keeps <img>
and <a>). `literal` shows what customers and agents typed exactly as typed; `safe_markdown` renders what the model
or a document wrote, without images and with links only to our own pages (`/...`) and the company's hosts."""

from __future__ import annotations

import html
import re
from collections.abc import Collection
from urllib.parse import quote, urlsplit

from assistant.citations import linked_answer

# what `marked` (GFM) and Gradio read as markup in typed text, escaped only where it is markup, so that what shows,
# and what a copy button copies, stays as typed as it can
_ALWAYS = re.compile(r"[\\`*_~\[\]|]|\$(?=\$)|(?<=\$)\$")  # emphasis, code, links, tables, Gradio's $$ LaTeX
_LINE_START = re.compile(r"(?m)^[ \t]{0,3}(?:\d{1,9}(?=[.)])|(?=[#+=-]))")  # headings, lists, setext underlines
_AUTOLINK = re.compile(r"(?i)\b(?:https?|ftp|mailto)(?=:)|\bwww(?=\.)|\w(?=@\w)")  # GFM's autolinks and emails
_INDENT = re.compile(r"(?:^|(?<=[\n\r]))[ \t]+(?=\S)")  # 4+ columns would start an indented code block

ZWSP = "\u200b"  # invisible, and it breaks `http` `://`, `!` `[`, `](`, `]:` for `marked`, even in code
_OPEN, _CLOSE = "\ue000", "\ue001"  # private-use marks around a kept link's number while the rest is escaped
_LABEL = r"(?:[^\[\]\\]|\\.|\[(?:[^\[\]\\]|\\.|\[(?:[^\[\]\\]|\\.)*\])*\])*"  # brackets nested twice at most
_DEST = r"<[^<>\n]*>|(?:[^\s()\\]|\\.|\((?:[^\s()\\]|\\.)*\))*"
_TITLE = r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|\((?:[^()\\]|\\.)*\)"
_CONSTRUCT = re.compile(  # an image or a link: inline, reference (full, collapsed, shortcut) or <autolink>
    rf"(?P<bang>!?)\[(?P<label>{_LABEL})\]"
    rf"(?:\(\s*(?P<dest>{_DEST})(?:\s+(?:{_TITLE}))?\s*\)|\[(?P<ref>(?:[^\[\]\\]|\\.)*)\])?"
    r"|<(?P<auto>[A-Za-z][A-Za-z0-9+.-]{1,31}:[^\s<>]*)>", re.S)
_DEFINITION = re.compile(  # `[ref]: url "title"` on its own line (in a list item too); the title may not follow
    rf"^(?P<lead>[ \t]*(?:(?:[-+*]|\d{{1,9}}[.)])[ \t]+)?)\[(?P<ref>(?:[^\[\]\\]|\\.)+)\]:[ \t]*\n?[ \t]*"
    rf"(?P<dest><[^<>\n]*>|\S+)(?:[ \t]+(?:{_TITLE}))?[ \t]*$", re.M)
_BARE = re.compile(rf"(?i)(?:(?:https?|ftp)://|www\.)[^\s<>{_OPEN}{_CLOSE}]+")  # GFM's extended autolinks
_TRAILING = re.compile(r"[?!.,:;*_~'\"]+$")
_UNESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_NETLOC = re.compile(r"[a-z0-9.-]+(?::\d{1,5})?")


def literal(text: str) -> str:
    """Markdown that shows `text` exactly as typed: no formatting, HTML, image or link (autolinks included);
    line breaks stay line breaks. Only what would be markup is escaped."""
    def indent(m: re.Match) -> str:
        width = len(m[0].expandtabs(4))
        return "&nbsp;" * width if width >= 4 else m[0]

    text = html.escape(text, quote=False)  # & < >: no HTML, entity or <autolink>
    text = re.sub(r"%(?=%)|(?<=%)%", "&#37;", text)  # Gradio swaps `%%%LATEX_BLOCK_n%%%` in its HTML
    text = _ALWAYS.sub(lambda m: "\\" + m[0], text)  # a backslash before each sign that would be markup
    text = _LINE_START.sub(lambda m: m[0] + "\\", text)
    text = _AUTOLINK.sub(lambda m: m[0] + "\\", text)
    return _INDENT.sub(indent, text)


def safe_markdown(text: str, allowed_hosts: Collection[str] = ()) -> str:
    """Markdown written by the model or a document, its formatting kept but HTML shown as text, every image reduced
    to its alt text, and every link (inline, reference, <autolink>, bare URL) kept only when it leads to a path of
    ours (`/sources/...`) or to an http(s) URL on one of `allowed_hosts` (or a subdomain); any other link becomes
    its label followed by its (inert) URL. `[1]` citation markers are left for `citations.linked_answer`."""
    names = [allowed_hosts] if isinstance(allowed_hosts, str) else allowed_hosts
    hosts = frozenset(h.strip().lower().lstrip("*.").rstrip(".") for h in names) - {""}
    kept: list[str] = []
    definitions: dict[str, str] = {}

    def define(match: re.Match) -> str:
        definitions.setdefault(_normal(match["ref"]), match["dest"])
        return match["lead"]

    def keep(shown: str, dest: str) -> str | None:
        """A mark standing for the link `[shown](dest)` if `dest` is allowed (`shown` is final markdown)."""
        href = _href(dest, hosts)
        if href is None:
            return None
        kept.append(f"[{shown}]({href})")
        return f"{_OPEN}{len(kept) - 1}{_CLOSE}"

    def resolve(part: str) -> str:
        """Images become their alt text, kept links numbered marks, other links plain text (escaped later)."""

        def construct(m: re.Match) -> str:
            if m["auto"] is not None:
                return keep(literal(m["auto"]), m["auto"]) or m["auto"]
            label, dest = m["label"], m["dest"]
            if dest is None:
                dest = definitions.get(_normal(m["ref"] or label))
                if dest is None:  # `[1]`: not a link, since no definition reaches `marked`
                    ref = "" if m["ref"] is None else f"[{resolve(m['ref'])}]"
                    return f"{m['bang']}[{resolve(label)}]{ref}"
            plain = resolve(label)
            if m["bang"]:
                return plain
            shown = dest.strip().removeprefix("<").removesuffix(">")
            return keep(finish(plain), dest) or (f"{plain} ({shown})" if shown and shown != label else plain)

        return _CONSTRUCT.sub(construct, part)

    def finish(part: str) -> str:
        """Escape what is left, keep allowed bare URLs as links, then put the kept links in."""
        pieces, start = [], 0
        for m in _BARE.finditer(part):
            url = _bare_url(m[0])
            mark = keep(literal(url), url if "://" in url else "https://" + url)
            if mark:
                pieces += [_inert(part[start:m.start()]), mark]
                start = m.start() + len(url)
        pieces.append(_inert(part[start:]))
        return re.sub(f"{_OPEN}(\\d+){_CLOSE}", lambda m: kept[int(m[1])], "".join(pieces))

    text = text.replace("\r\n", "\n").replace(_OPEN, "\ufffd").replace(_CLOSE, "\ufffd")
    return finish(resolve(_DEFINITION.sub(define, text)))


def _normal(label: str) -> str:
    return " ".join(label.split()).casefold()


def _bare_url(url: str) -> str:
    """A bare URL without the trailing punctuation and unbalanced `)` that GFM leaves out of the link."""
    while True:
        trimmed = _TRAILING.sub("", url)
        if trimmed.endswith(")") and trimmed.count(")") > trimmed.count("("):
            trimmed = trimmed[:-1]
        if trimmed == url:
            return url
        url = trimmed


def _inert(text: str) -> str:
    """HTML shown as text, and nothing `marked` could read as an image, a link, a definition or an autolink."""
    text = text.replace("&", "&amp;").replace("<", "&lt;")  # `>` stays: it opens nothing but a blockquote
    text = re.sub(rf"!(?=[\[{_OPEN}]|\Z)", "!" + ZWSP, text)
    text = re.sub(r"\](?=[(:])", "]" + ZWSP, text)
    text = re.sub(r"(?i)(?=://)|(?<=www)(?=\.)|(?=@)|(?<=%)(?=LATEX_BLOCK_)", ZWSP, text)
    return text


def _href(dest: str, hosts: frozenset[str]) -> str | None:
    """The link target as `marked` will write it, when it is a path of ours or on an allowed host; else None."""
    url = html.unescape(_UNESCAPE.sub(r"\1", dest.strip().removeprefix("<").removesuffix(">")))
    if not url or any(c.isspace() or c == "\\" or ord(c) < 32 or ord(c) == 127 for c in url):
        return None
    if url.startswith("/"):
        allowed = not url.startswith("//")
    else:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
        allowed = (parts.scheme in ("http", "https") and _NETLOC.fullmatch(parts.netloc.lower()) is not None
                   and any(host == h or host.endswith("." + h) for h in hosts))
    # entity-free and parenthesis-free, so the browser follows exactly the URL checked here
    return quote(url, safe="/?#[]@!$'*+,;=:%-._~&").replace("&", "&amp;") if allowed else None


def answer_markdown(text: str, sources: list[dict], heading: str, link_domains: Collection[str] = ()) -> str:
    """A bot answer as shown: its [n] markers linked to their sources, listed under it; links only to our source
    pages, the sources' own sites and the company's domains, no images."""
    hosts = {*link_domains, *(urlsplit(s["url"]).hostname for s in sources if s.get("url"))} - {None}
    return safe_markdown(linked_answer(text, sources, heading), hosts)
