"""Text from customers, agents, documents and the model in Gradio's markdown: `literal` shows it as typed,
`safe_markdown` keeps formatting but no image and no link except to our pages and the company's hosts. The pen-test
payloads first as strings, then rendered by Gradio in a real browser (Debian's chromium driven by Playwright)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from assistant.citations import linked_answer
from ui.text import ZWSP, literal, safe_markdown

HOSTS = ["help.example.com"]
BEACON, PHISH = "![pixel](http://host/beacon.png)", "[my receipt](http://host/phish)"
SOURCES = [{"number": 1, "title": "Returns", "source": "returns/how-to-return.md", "section": "Free returns",
            "url": None},
           {"number": 2, "title": "Shipping", "source": "faq.jsonl", "section": None,
            "url": "https://help.example.com/shipping#norway"}]


def no_live_markup(shown: str) -> None:
    """Nothing `marked` reads as an image, an inline link, a definition, raw HTML or an autolink."""
    unescaped = re.sub(r"\\.", "", shown)  # a sign after a backslash is text
    assert not re.search(r"!\[|\]\(|\]:|<[A-Za-z/!?]|(?i:https?|ftp)://|www\.|\w@\w", unescaped), shown


@pytest.mark.parametrize("typed", [
    BEACON, PHISH, "<img src=http://host/x>", "<http://host/auto>", "see http://host/phish now",
    "www.evil.com", "mail me@evil.com or mailto:me@evil.com", "[receipt][r]\n\n[r]: http://host/phish",
    "![i][img]\n\n[img]: http://host/i.png", "[x](javascript:alert(1))", "[![a](http://h/i.png)](http://h)",
    "**bold** _it_ ~~gone~~ `code` # title", "1. one\n- two\n> quote\n| a | b |\n---", "$$x^2$$ %%%LATEX_BLOCK_0%%%",
])
def test_literal_leaves_no_markup(typed):
    shown = literal(typed)
    no_live_markup(shown)
    assert not re.search(r"[\\`*_~\[\]|<>&]", re.sub(r"\\.|&(?:amp|lt|gt|nbsp|#37);", "", shown))  # escaped


def test_literal_keeps_the_text_and_its_line_breaks():
    assert literal("订单 12345 还没到，怎么办？") == "订单 12345 还没到，怎么办？"  # Chinese text unchanged
    assert literal("line one\nline two") == "line one\nline two"
    assert literal("a < b & c > d") == "a &lt; b &amp; c &gt; d"
    assert literal("C:\\temp") == "C:\\\\temp"
    assert literal("    code\n\tmore\n  two") == "&nbsp;" * 4 + "code\n" + "&nbsp;" * 4 + "more\n  two"  # no code block
    assert literal("") == ""
    # what support teams copy (order numbers, prices, dates) stays as typed: only markup is escaped
    typed = "Hi, Maria here. Order #4471 (A-1234), 50% off: $5 on 2026-12-01? Yes! \"ok\" = fine; a/b {c} ^d"
    assert literal(typed) == typed


def test_safe_markdown_drops_images_whatever_their_url():
    assert safe_markdown(BEACON) == "pixel"
    assert safe_markdown("![logo](/sources/logo.png) ![ref][i]\n\n[i]: http://host/i.png", HOSTS) == "logo ref\n\n"
    assert safe_markdown("![ok](https://help.example.com/i.png)", HOSTS) == "ok"
    assert safe_markdown("<img src=http://host/x>") == f"&lt;img src=http{ZWSP}://host/x>"


@pytest.mark.parametrize(("written", "shown"), [
    (PHISH, f"my receipt (http{ZWSP}://host/phish)"),
    ("see http://host/phish.", f"see http{ZWSP}://host/phish."),
    ("www.evil.com", f"www{ZWSP}.evil.com"),
    ("<http://host/auto>", f"http{ZWSP}://host/auto"),
    ("[receipt][r]\n\n[r]: http://host/phish", f"receipt (http{ZWSP}://host/phish)\n\n"),
    ("[receipt]\n\n[Receipt]: <http://host/phish> \"title\"", f"receipt (http{ZWSP}://host/phish)\n\n"),
    ("[x](javascript:alert(1))", "x (javascript:alert(1))"),
    ("[x](data:text/html,hi)", "x (data:text/html,hi)"),
    ("[![a](http://h/i.png)](http://h)", f"a (http{ZWSP}://h)"),
    ("[x](//evil.com/p)", "x (//evil.com/p)"),
    ("[x](/\\evil.com)", "x (/\\evil.com)"),
    ("[x](https://help.example.com.evil.com/)", f"x (https{ZWSP}://help.example.com.evil.com/)"),
    ("[x](https://help.example.com@evil.com/)", f"x (https{ZWSP}://help.example.com{ZWSP}@evil.com/)"),
    ("[x](https://evil.com&#47;.help.example.com)", f"x (https{ZWSP}://evil.com&amp;#47;.help.example.com)"),
    ("write to me@evil.com", f"write to me{ZWSP}@evil.com"),
    ("[1]: http://host/x", ""),  # a definition alone is removed
    ("see [1]: below", f"see [1]{ZWSP}: below"),
])
def test_safe_markdown_defuses_foreign_links(written, shown):
    assert safe_markdown(written, HOSTS) == shown
    no_live_markup(shown)


def test_safe_markdown_keeps_our_links_and_the_formatting():
    assert safe_markdown("[refunds](/sources/refunds.md#x)") == "[refunds](/sources/refunds.md#x)"
    assert safe_markdown("[help](https://help.example.com/a?x=1&y=2 \"t\")", HOSTS) == \
        "[help](https://help.example.com/a?x=1&amp;y=2)"
    assert safe_markdown("[help](https://help.example.com/a)") == f"help (https{ZWSP}://help.example.com/a)"
    assert safe_markdown("[faq][f]\n\n[f]: https://docs.help.example.com/faq", HOSTS) == \
        "[faq](https://docs.help.example.com/faq)\n\n"  # a subdomain
    assert safe_markdown("Go to https://help.example.com/b.", HOSTS) == \
        "Go to [https\\://help.example.com/b](https://help.example.com/b)."
    assert safe_markdown("[a (b)](/sources/a%20(b).md)") == "[a (b)](/sources/a%20%28b%29.md)"
    formatted = "**Refunds** take `5` days:\n\n- card\n- *bank*\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n> note"
    assert safe_markdown(formatted) == formatted
    assert safe_markdown("退款需要 5 天 [1]。") == "退款需要 5 天 [1]。"


def test_citation_markers_survive_and_linked_answers_pass_through():
    said = safe_markdown("Returns are free [1] ![x](http://host/i.png) [2][1].\n\nSources: [1] Returns", HOSTS)
    assert said == "Returns are free [1] x [2][1].\n\nSources: [1] Returns"
    answer = linked_answer(said, SOURCES)
    assert "[\\[1\\]](/sources/returns/how-to-return.md#free-returns)" in answer
    assert "[\\[2\\]](https://help.example.com/shipping#norway)" in answer
    assert safe_markdown(answer, HOSTS) == answer  # the company's URL is on an allowed host
    assert "https://help.example.com" not in safe_markdown(answer)  # ... and only then


# --- in the browser: what Gradio's renderer makes of it --------------------------------------------------------

CHROMIUM = __import__("shutil").which("chromium") or "/usr/bin/chromium"
FOREIGN = "evil.test"
TYPED = [  # what customers and agents type: shown exactly as typed
    f"![pixel](http://{FOREIGN}/beacon.png)", f"[my receipt](http://{FOREIGN}/phish)",
    f"<img src=http://{FOREIGN}/x.png> <a href=http://{FOREIGN}/a>a</a>",
    f"see http://{FOREIGN}/phish, www.{FOREIGN} or me@{FOREIGN} <http://{FOREIGN}/auto>",
    f"[r][1] ![i][1]\n\n[1]: http://{FOREIGN}/ref.png", f"    indented http://{FOREIGN}/code",
    "**not bold** _x_ ~~y~~ `code` # no title\n1. one\n- two\n> quote | a | b |",
    f"$$\\href{{http://{FOREIGN}/k}}{{x}}$$ %%%LATEX_BLOCK_0%%% &lt; &amp; C:\\temp\\",
    "订单 12345 还没到，怎么办？\nline two",
]
WRITTEN = [  # what the model and documents write: formatting kept, foreign links and images defused
    *TYPED, f"[![a](http://{FOREIGN}/i.png)](http://{FOREIGN}/n) [x](javascript:alert(1)) [y](//{FOREIGN}/p)",
    f"**Refunds** [refunds](/sources/refunds.md#x), [help](https://help.example.com/a), https://help.example.com/b"
    f" and $$\\includegraphics{{http://{FOREIGN}/k.png}}$$ %%%LATEX_BLOCK_0%%%",
    linked_answer(safe_markdown("Free returns [1].\n\nSources: [1] Returns"), SOURCES),
]


def normal(text: str) -> str:
    return " ".join(text.replace("\xa0", " ").replace(ZWSP, "").split())


@pytest.fixture
def rendered_page(tmp_path):
    """Every payload through `literal` and `safe_markdown` in gr.Markdown and gr.Chatbot, and raw in a
    gr.Dataframe (as the sentiment view shows feed texts), served on a free port."""
    import gradio as gr
    from fastapi import FastAPI

    from assistant.api.background import BackgroundServer

    with gr.Blocks() as demo:
        for i, typed in enumerate(TYPED):
            gr.Markdown(literal(typed), elem_id=f"typed-{i}", elem_classes="typed")
        for i, written in enumerate(WRITTEN):
            gr.Markdown(safe_markdown(written, HOSTS), elem_id=f"written-{i}")
        gr.Chatbot([message for i, written in enumerate(WRITTEN) for message in (
            *([{"role": "user", "content": literal(TYPED[i])}] if i < len(TYPED) else []),
            {"role": "assistant", "content": safe_markdown(written, HOSTS)})], elem_id="chat")
        gr.Dataframe(value=[[t] for t in TYPED], headers=["text"], wrap=True, interactive=False, elem_id="feed")
    app = gr.mount_gradio_app(FastAPI(), demo, path="/t", footer_links=[])
    with BackgroundServer(app) as url:
        yield f"{url}/t/"


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed (.ci/run installs it)")
def test_gradio_renders_the_payloads_inert(rendered_page):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        page.route("**/*", lambda route: route.continue_() if urlsplit(route.request.url).hostname == "127.0.0.1"
                   else route.abort())  # offline: the theme's web fonts are not fetched either
        page.goto(rendered_page)
        page.wait_for_function(
            "n => document.querySelector(`#written-${n - 1}`)?.innerText.includes('Free returns')"
            " && document.querySelector('#chat')?.innerText.includes('Free returns')", arg=len(WRITTEN),
            timeout=60_000)
        page.wait_for_timeout(1500)  # images, KaTeX
        images = page.eval_on_selector_all("img", "els => els.map(e => e.src)")
        links = page.eval_on_selector_all(
            "[id^=typed-] a[href], [id^=written-] a[href], #chat a[href], #feed a[href]", "els => els.map(e => e.href)")
        typed_text = [page.locator(f"#typed-{i}").inner_text() for i in range(len(TYPED))]
        written_text = [normal(page.locator(f"#written-{i}").inner_text()) for i in range(len(WRITTEN))]
        chat_users = page.locator("#chat [data-testid='user']").all_inner_texts()
        feed_text = page.locator("#feed").inner_text()
        bold = page.locator("#written-10 strong").count()
        browser.close()
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(rendered_page))
    assert not [url for url in requested if FOREIGN in url], requested  # no beacon, no fetched link
    assert not [src for src in images if not src.startswith(origin)], images
    ours = [f"{origin}/sources/refunds.md#x", "https://help.example.com/a", "https://help.example.com/b",
            *[f"{origin}/sources/returns/how-to-return.md#free-returns"] * 2]  # a cited marker, its source
    assert sorted(links) == sorted(ours * 2)  # ours only, in gr.Markdown and in the chat
    assert [normal(t) for t in typed_text] == [normal(t) for t in TYPED]  # as typed
    assert [normal(t) for t in chat_users] == [normal(t) for t in TYPED]
    assert "line two" in chat_users[-1].split("\n")[-1]  # a chat keeps the customer's line breaks
    assert all(normal(t) in normal(feed_text) for t in TYPED)  # a Dataframe shows feed text as text
    assert written_text[:2] == ["pixel", f"my receipt (http://{FOREIGN}/phish)"]  # alt text; the URL as text
    assert written_text[10].endswith("%%%LATEX_BLOCK_0%%%") and bold == 1  # the model's formatting renders
