"""The customer chat page in a real browser (Debian's chromium driven by Playwright), on the default model."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest

from assistant.store.records import FeedbackSummary

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed (.ci/run installs it)")


def default_service(home: Path, model_dir: Path):
    """The product as shipped (default model, demo help center) on the transformers engine, answers kept short."""
    from assistant.config import load_settings
    from assistant.runtime import build_service

    return build_service(load_settings(environ={}, flags={
        "home": str(home), "engine": "transformers", "model": str(model_dir), "sentiment.feeds": [],
        "generation.max_new_tokens": 40, "generation.temperature": 0.0, "transformers.kv_cache_tokens": 4096,
    }))


@pytest.fixture
def live_app(tmp_path, default_model_dir, with_demo_knowledge):
    from assistant.api.app import create_app
    from assistant.api.background import BackgroundServer

    with_demo_knowledge(tmp_path)  # the session's copy of the demo index: this test is not about ingesting it
    service = default_service(tmp_path, default_model_dir)
    with BackgroundServer(create_app(service)) as url:
        yield url, service


@pytest.fixture
def browser():
    """Debian's chromium driven by Playwright (Playwright cannot download its own browser here)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    return browser.new_page(viewport={"width": 1100, "height": 900})


def test_question_typed_in_the_page_gets_a_streamed_answer_that_survives_reload(live_app, page):
    url, service = live_app
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(f"{url}/chat/")
    box = page.locator("#message-box textarea")
    box.fill("How do I reset my password?")
    box.press("Enter")
    box.press("Enter")  # a double submit: the question is sent and answered once
    bot = page.locator("#chatbot .message.bot, #chatbot [data-testid='bot']").last
    bot.wait_for(timeout=60_000)
    # streamed: the answer grows while it is generated, then settles
    page.wait_for_function(
        "() => { const m = document.querySelectorAll(\"#chatbot [data-testid='bot']\");"
        " return m.length && m[m.length - 1].innerText.trim().length > 20; }", timeout=90_000)
    from sqlalchemy import select

    from assistant.store.schema import Message

    deadline = time.monotonic() + 120  # the answer is committed when its stream ends
    while True:
        with service.store.session() as session:
            stored = session.scalars(select(Message).order_by(Message.id)).all()
        if stored[-1].status != "streaming" or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    page.wait_for_timeout(1000)
    answer = page.locator("#chatbot [data-testid='bot']").last.inner_text().strip()
    page.screenshot(path=str(ARTIFACTS / "chat_page_answer.png"), full_page=True)
    assert [(m.role, m.status) for m in stored] == [("user", "complete"), ("assistant", "complete")]
    assert stored[0].content == "How do I reset my password?"
    shown = re.sub(r"^\s*(?:\d+\.|[-*])\s+|\*\*", "", stored[1].content.strip(), flags=re.M)  # as markdown renders
    assert shown[:20] in answer

    page.reload()
    page.locator("#chatbot [data-testid='user']").first.wait_for(timeout=30_000)
    assert "How do I reset my password?" in page.locator("#chatbot").inner_text()
    page.screenshot(path=str(ARTIFACTS / "chat_page_after_reload.png"), full_page=True)

    # thumbs-down with a comment on the answer (after the reload: ratings work on restored answers too)
    page.locator("#chatbot button[aria-label='Dislike']").last.click()
    page.locator("#feedback-comment textarea").wait_for(timeout=15_000)
    page.locator("#feedback-comment textarea").fill("It did not say where the reset link is.")
    page.locator("#send-feedback").click()
    deadline = time.monotonic() + 30
    [stored_conversation] = service.store.conversations.conversations_for_alignment()
    while True:  # the rating and the comment are stored by two events: wait for both
        transcript = service.store.conversations.transcript(stored_conversation["id"])
        if (transcript[1].feedback or FeedbackSummary()).comment or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    assert transcript[1].feedback == FeedbackSummary(rating=-1, comment="It did not say where the reset link is.",
                                                     corrected_text=None)
    page.locator("#end-chat").click()
    page.locator("#csat-score").get_by_text("4").click()
    page.locator("#send-csat").click()
    deadline = time.monotonic() + 30
    while service.store.conversations.get_conversation(stored_conversation["id"]).csat != 4:
        assert time.monotonic() < deadline, "the CSAT rating was not stored"
        time.sleep(0.25)
    assert service.store.conversations.get_conversation(stored_conversation["id"]).status == "closed"
    page.screenshot(path=str(ARTIFACTS / "chat_page_rated.png"), full_page=True)

    # writing again after the end starts a new conversation; the closed one keeps what it had
    box.fill("Do you ship to Norway?")
    box.press("Enter")
    page.get_by_text("A new conversation has started").wait_for(timeout=60_000)
    deadline = time.monotonic() + 60
    while len(service.store.handoffs.conversation_overview()) < 2:
        assert time.monotonic() < deadline, "no new conversation was started"
        time.sleep(0.25)
    newer = next(c for c in service.store.handoffs.conversation_overview() if c.id != stored_conversation["id"])
    assert service.store.conversations.messages(newer.id)[0].content == "Do you ship to Norway?"
    assert len(service.store.conversations.messages(stored_conversation["id"])) == 2


def test_recommendation_cards_open_through_our_link_and_dismiss_with_not_for_me(live_app, page):
    """The demo catalogue as shipped: a customer asks for a jacket, sees cards (title, price, why), opens one
    (the click is recorded before the shop's page) and dismisses another (it goes, and is recorded)."""
    url, service = live_app
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(f"{url}/chat/")
    box = page.locator("#message-box textarea")
    box.fill("Can you recommend a waterproof jacket for hiking in the rain?")
    box.press("Enter")
    cards = page.locator("#recommendations .rec-card")
    cards.first.wait_for(timeout=90_000)
    shown = [cards.nth(n).get_attribute("data-item") for n in range(cards.count())]
    assert 1 <= len(shown) <= 3
    first = cards.first.inner_text()
    assert "EUR" in first and "waterproof" in first.lower()
    page.screenshot(path=str(ARTIFACTS / "chat_page_recommendations.png"), full_page=True)
    [conversation] = service.store.handoffs.conversation_overview()

    def recorded(kind: str) -> set[str]:
        deadline = time.monotonic() + 30
        while True:
            found = {i.item for i in service.store.interactions.all() if i.kind == kind}
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.25)

    with page.expect_popup() as opened:  # the shop is not reachable from here: our redirect is what counts
        cards.first.locator("a.rec-title").click()
    opened.value.close()
    assert recorded("click") == {shown[0]}
    assert recorded("shown") >= set(shown)

    page.locator(f"#dismiss-{shown[-1]}").click()
    page.locator(f"#recommendations .rec-card[data-item='{shown[-1]}']").wait_for(state="detached", timeout=30_000)
    assert recorded("dismiss") == {shown[-1]}
    page.reload()  # a dismissed card stays gone
    page.locator("#chatbot [data-testid='user']").first.wait_for(timeout=30_000)
    if len(shown) > 1:
        page.locator("#recommendations .rec-card").first.wait_for(timeout=30_000)
    assert shown[-1] not in [c.get_attribute("data-item") for c in page.locator("#recommendations .rec-card").all()]
    assert service.store.conversations.messages(conversation.id)[-1].metadata["reason"] == "recommendation"
