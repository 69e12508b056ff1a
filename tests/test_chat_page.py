"""The customer chat page without a browser: language routing, citations that link to their source, the source
pages themselves, and what a customer sees of stored messages."""

from __future__ import annotations

import pytest

from assistant.citations import linked_answer, source_href
from retrieval.documents import Passage

SOURCES = [
    {"number": 1, "title": "Returns", "source": "returns/how-to-return.md", "section": "Free returns",
     "url": None},
    {"number": 2, "title": "Do you ship to Norway?", "source": "faq.jsonl", "section": None,
     "url": "https://help.example.com/shipping#norway"},
]


def test_citations_link_to_their_sources():
    shown = linked_answer("Returns are free within 30 days [1].\n\nSources: [1] Returns; [2] Do you ship", SOURCES)
    assert "[\\[1\\]](/sources/returns/how-to-return.md#free-returns)" in shown  # the marker opens the source
    assert "Sources: [1] Returns;" not in shown  # the plain footer gives way to the linked list
    assert shown.endswith("\\[1\\] [Returns — Free returns](/sources/returns/how-to-return.md#free-returns)")
    uncited = linked_answer("We ship to Norway.", SOURCES, "来源")
    assert "**来源**" in uncited and "(https://help.example.com/shipping#norway)" in uncited  # the company's URL
    assert linked_answer("No sources here [1].", []) == "No sources here [1]."
    assert source_href({"source": "a b/c.md", "title": "C", "section": None}) == "/sources/a%20b/c.md#c"


def test_source_page_shows_the_article_at_its_sections_and_never_runs_its_html():
    from assistant.api.source_routes import render_source

    def passage(text, section, ordinal):
        return Passage(id=str(ordinal), source="returns/how-to-return.md", title="Returns", text=text,
                       section=section)

    long_text = "Pack the item. " * 30
    page = render_source([
        passage("Returns are free within **30 days**.", None, 0),
        passage(long_text, "Free returns", 1),
        passage(long_text[-45:] + "Then drop it off. <script>alert(1)</script>", "Free returns", 2),
    ], "Lumen")
    assert '<h1 id="returns">Returns</h1>' in page and '<section id="free-returns"><h2>Free returns</h2>' in page
    assert "<strong>30 days</strong>" in page
    assert page.count("Then drop it off.") == 1 and page.count("Pack the item.") == 30  # chunk overlap shown once
    assert "<script>" not in page and "&lt;script&gt;" in page
    faq = render_source([Passage(id="q", source="faq.jsonl", title="Do you ship to Norway?", text="Yes.",
                                 kind="faq")], "Lumen")
    assert '<section id="do-you-ship-to-norway"><h2>Do you ship to Norway?</h2>' in faq


def test_unknown_source_is_404(client):
    response = client.get("/sources/nothing/here.md")
    assert response.status_code == 404 and "no document 'nothing/here.md'" in response.json()["error"]["message"]


@pytest.mark.views("chat")
def test_chinese_interface_for_chinese_browsers_and_the_widget(client):
    english = client.get("/chat/", headers={"Accept-Language": "en-GB,en;q=0.9"}, follow_redirects=False)
    assert english.status_code == 200
    chinese = client.get("/chat/", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}, follow_redirects=False)
    assert chinese.status_code == 307 and chinese.headers["location"] == "/chat/zh/"
    widget = client.get("/chat/?key=pk_x&lang=zh&embed=1", follow_redirects=False)  # data-lang="zh"
    assert widget.headers["location"] == "/chat/zh/?key=pk_x&lang=zh&embed=1"
    chosen = client.get("/chat/?lang=en", headers={"Accept-Language": "zh-CN"}, follow_redirects=False)
    assert chosen.status_code == 200  # a language picked by the link wins over the browser's
    typed = client.get("/chat/zh", headers={"Accept-Language": "en-GB"}, follow_redirects=False)  # no slash
    assert typed.status_code == 307 and typed.headers["location"] == "/chat/zh/"
    config = client.get("/chat/zh/config").text
    assert "转人工客服" in config and "结束对话" in config and "Talk to a human" not in config
    assert "Talk to a human" in client.get("/chat/config").text


def test_messages_as_the_customer_sees_them():
    from datetime import UTC, datetime

    from assistant.store.records import HandoffState, MessageRecord
    from ui.chat_page import rendered, status_line
    from ui.text import literal

    def message(id_: int, role: str, content: str, metadata: dict) -> MessageRecord:
        now = datetime.now(UTC)
        return MessageRecord(id=id_, role=role, content=content, status="complete", error=None, model=None,
                             sources=metadata.get("sources", []), metadata=metadata, created_at=now, completed_at=now)

    rows = [
        message(1, "user", "Can I return shoes?", {}),
        message(2, "assistant", "Yes [1].", {"sources": SOURCES[:1]}),
        message(3, "assistant", "", {}),  # a placeholder that never got text
        message(4, "agent", "Hi, Maria here.", {"agent": "maria", "agent_name": "Maria"}),
    ]
    shown, answers, newest = rendered(rows, "zh")
    assert [m["role"] for m in shown] == ["user", "assistant", "assistant"]
    assert "/sources/returns/how-to-return.md#free-returns" in shown[1]["content"]
    assert shown[2]["content"] == f"**Maria** (客服): {literal('Hi, Maria here.')}"  # shown as she typed it
    assert answers == {"1": 2} and newest == 4  # only bot answers can be rated
    assert "Maria" in status_line(HandoffState("human", "customer_asked", "maria", "Maria"), "Maria", "en")
    assert status_line(HandoffState("waiting_human", "customer_asked", None, None), lang="zh").startswith("⏳ 已请同事")


def test_asking_for_a_human_from_the_chinese_page_is_answered_in_chinese(client):
    import asyncio

    service = client.app.state.service
    conversation = service.store.conversations.create_conversation(channel="web").id

    async def ask():
        return [e async for e in service.hand_to_human(conversation, None, "customer_asked", lang="zh")]

    events = asyncio.run(ask())
    assert any(e.type == "delta" and "我已请" in e.data["text"] for e in events)
    assert service.store.handoffs.handoff_state(conversation).status == "waiting_human"
