"""The Insights view in a real browser: outcome plots render for the period, topics are found, drilled into down to a
conversation and renamed, a knowledge gap opens beside what the agent answered, publishing it makes the next answer
cite it, and a curated answer is added and listed. Screenshots go to test-artifacts/."""

from __future__ import annotations

import pytest

from tests.test_chat_page_browser import ARTIFACTS, CHROMIUM, browser, page  # noqa: F401  (fixtures)

pytestmark = pytest.mark.skipif(not __import__("pathlib").Path(CHROMIUM).exists(),
                                reason="chromium is not installed (.ci/run installs it)")


@pytest.fixture
def live_app(make_settings, tmp_path):
    from assistant.api.app import create_app
    from assistant.api.background import BackgroundServer
    from assistant.runtime import build_service

    docs = tmp_path / "help"
    docs.mkdir()
    (docs / "refunds.md").write_text("# Refunds\n\nRefunds reach your card within five business days after the "
                                     "warehouse receives your return.\n")
    service = build_service(make_settings(**{"retrieval.enabled": True, "retrieval.sources": [str(docs)]}))
    service.store.operators.create_operator("maria", "correct horse battery")
    with BackgroundServer(create_app(service)) as url:
        yield url, service


def test_insights_view_outcomes_gaps_publish_and_curated(live_app, page):  # noqa: F811
    import httpx

    url, service = live_app
    store = service.store

    def ask(text: str) -> str:
        conversation = httpx.post(f"{url}/api/conversations", json={}).json()["id"]
        httpx.post(f"{url}/api/conversations/{conversation}/messages", json={"content": text, "stream": False},
                   timeout=60)
        return conversation

    settled = ask("How long do refunds take?")
    store.conversations.close_conversation(settled, csat=5)
    failed = ask("Do you offer gift wrapping?")
    store.handoffs.take_over(failed, "maria")
    store.handoffs.add_agent_message(failed, "maria", "Yes: gift wrapping costs 5 dollars; choose it at checkout.")
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(f"{url}/insights/")  # signing in first, as operators do
    page.locator("input[type=text]").first.fill("maria")
    page.locator("input[type=password]").fill("correct horse battery")
    page.get_by_role("button", name="Login").click()
    page.locator("#outcome-bars .vega-embed").first.wait_for(timeout=60_000)
    page.wait_for_function("() => document.querySelector('#insights-summary').innerText.includes('conversations')",
                           timeout=60_000, polling=250)
    summary = page.locator("#insights-summary").inner_text()
    assert "2 conversations" in summary and "50% resolved by the assistant alone" in summary
    page.locator("#topics-find").click()  # topics: found, drilled into, a conversation opened, renamed
    page.wait_for_function("() => document.querySelector('#topics').innerText.includes('refunds')",
                           timeout=60_000, polling=250)
    page.locator("#topic-bars .vega-embed").first.wait_for(timeout=60_000)
    page.locator("#topics [role=gridcell]", has_text="refunds").first.click()
    page.wait_for_function(
        "() => document.querySelector('#topic-conversations').innerText.includes('How long do refunds take')",
        timeout=60_000, polling=250)
    assert "resolved alone" in page.locator("#topic-conversations").inner_text()
    page.locator("#topic-conversations [role=gridcell]", has_text="How long do refunds take").first.click()
    page.wait_for_function(
        "() => document.querySelector('#topic-transcript').innerText.includes('How long do refunds take')",
        timeout=60_000, polling=250)
    page.locator("#topic-name textarea, #topic-name input").first.fill("Refund timing")
    page.locator("#topic-rename").click()
    page.wait_for_function("() => document.querySelector('#topics').innerText.includes('Refund timing')",
                           timeout=60_000, polling=250)
    page.screenshot(path=str(ARTIFACTS / "insights_view_topics.png"), full_page=True)
    page.wait_for_function("() => document.querySelector('#knowledge-gaps').innerText.includes('gift wrapping')",
                           timeout=60_000, polling=250)
    page.locator("#knowledge-gaps [role=gridcell]", has_text="gift wrapping").first.click()
    page.wait_for_function("() => document.querySelector('#gap-questions').innerText.includes('5 dollars')",
                           timeout=60_000, polling=250)  # what the agent answered, beside the question
    assert "gift wrapping" in page.locator("#article-title textarea, #article-title input").first.input_value()
    page.screenshot(path=str(ARTIFACTS / "insights_view_gap.png"), full_page=True)
    page.locator("#article-publish").click()
    page.get_by_text("Published:").wait_for(timeout=60_000)
    later = ask("Do you offer gift wrapping?")
    answer = store.conversations.messages(later)[-1]
    assert answer.sources and "gift wrapping" in answer.sources[0]["title"].lower()
    page.locator("#article-curate").click()  # the same text, served word for word from now on
    page.wait_for_function("() => document.querySelector('#curated-answers').innerText.includes('5 dollars')",
                           timeout=60_000, polling=250)
    assert [a.source for a in store.curated.listed()] == ["gap"]

    page.locator("#curated-question textarea, #curated-question input").first.fill("Do you ship to Canada?")
    page.locator("#curated-answer textarea").fill("Yes: parcels to Canada take eight business days.")
    page.locator("#curated-add").click()
    page.wait_for_function("() => document.querySelector('#curated-answers').innerText.includes('eight business')",
                           timeout=60_000, polling=250)
    page.screenshot(path=str(ARTIFACTS / "insights_view_curated.png"), full_page=True)
    curated = ask("Do you ship to Canada?")
    assert store.conversations.messages(curated)[-1].metadata["reason"] == "curated"
