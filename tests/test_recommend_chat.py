"""Recommendations inside the conversation, through the API: when the customer asks (and only then), cards of
catalogue items with prices and reasons, a click-through that is recorded, "not for me", cold start said so, the
customer's own history used, and the chat model's pick constrained to the candidates."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.sse import read_events

CATALOG = """id,title,category,price,available,attributes,url,description
J1,Storm rain jacket,Jackets,149,true,waterproof=yes,https://shop.example/j1,Waterproof shell for rain hikes. 防水冲锋衣
J2,City down jacket,Jackets,199,true,,https://shop.example/j2,Warm down jacket for cold city days. 羽绒服
J3,Kids rain jacket,Jackets,59,false,waterproof=yes,https://shop.example/j3,Waterproof jacket for children
J4,Wind softshell,Jackets,99,true,waterproof=no (water-repellent),https://shop.example/j4,Softshell for windy hikes
P1,Rain overtrousers,Trousers,79,true,waterproof=yes,https://shop.example/p1,Waterproof trousers over your boots
S1,Trail runner shoes,Footwear,120,true,,https://shop.example/s1,Grippy shoes for fast trail runs. 越野跑鞋
B1,Hiking boots,Footwear,189,true,waterproof=yes,https://shop.example/b1,Waterproof leather boots for rough trails
"""
# who bought the rain jacket bought the overtrousers next; runners buy shoes, then boots
HISTORY = "customer,item,kind,time\n" + "".join(
    f"r{n},J1,purchase,2026-10-0{1 + n % 5}T10:00:00Z\nr{n},P1,purchase,2026-10-0{1 + n % 5}T12:00:00Z\n"
    for n in range(6)) + "".join(
    f"t{n},S1,purchase,2026-10-0{1 + n % 5}T10:00:00Z\nt{n},B1,purchase,2026-10-0{1 + n % 5}T11:00:00Z\n"
    for n in range(4)) + "ann,J1,purchase,2026-11-01T09:00:00Z\n"


@pytest.fixture
def shop(tmp_path):
    (tmp_path / "catalog.csv").write_text(CATALOG)
    (tmp_path / "history.csv").write_text(HISTORY)
    return {"recommend.mode": "invite", "recommend.catalog": [str(tmp_path / "catalog.csv")],
            "recommend.interactions": [str(tmp_path / "history.csv")]}


def ask(client, text: str, conversation_id: str | None = None) -> tuple[str, dict]:
    conversation_id = conversation_id or client.post("/api/conversations").json()["id"]
    answer = client.post(f"/api/conversations/{conversation_id}/messages", json={"content": text, "stream": False})
    assert answer.status_code == 200, answer.text
    return conversation_id, answer.json()


def stored_answer(client, conversation_id: str) -> dict:
    return client.get(f"/api/conversations/{conversation_id}").json()["messages"][-1]


def test_a_customer_who_asks_gets_catalogue_cards_with_prices_and_reasons(make_client, shop):
    client = make_client(**shop)
    conversation_id, answer = ask(client, "Can you recommend a jacket for hiking in the rain under 180 euros?")
    stored = stored_answer(client, conversation_id)
    cards = stored["metadata"]["recommendations"]
    assert cards[0]["id"] == "J1"  # the one that fits: waterproof, in the price range
    assert {c["id"] for c in cards} <= {"J1", "J2", "J3", "J4", "P1", "S1", "B1"}
    assert all(c["price"] <= 180 for c in cards) and "J3" not in {c["id"] for c in cards}  # J3 out of stock
    assert "Storm rain jacket (149.00 EUR)" in answer["answer"] and "in stock" in cards[0]["why"]
    assert "waterproof: yes" in cards[0]["why"]  # the reasons are catalogue facts
    assert stored["metadata"]["basis"] == "request"


def test_the_stream_sends_the_cards_before_the_words(make_client, shop):
    client = make_client(**shop)
    conversation_id = client.post("/api/conversations").json()["id"]
    with client.stream("POST", f"/api/conversations/{conversation_id}/messages",
                       json={"content": "What do you suggest for trail running?"}) as response:
        events = read_events(response.iter_lines())
    kinds = [e[0] for e in events]
    assert kinds.index("recommendations") < kinds.index("delta")
    cards = dict(events)["recommendations"]["items"]
    assert cards[0]["id"] == "S1" and cards[0]["url"] == "https://shop.example/s1"


def test_support_questions_never_get_recommendations(make_client, shop):
    client = make_client(**shop)
    for question in ("Where is my refund?", "I'm looking for my order 1042", "How do I return a jacket?"):
        conversation_id, _ = ask(client, question)
        assert "recommendations" not in stored_answer(client, conversation_id)["metadata"]
    conversation_id, _ = ask(client, "I'm looking for a waterproof jacket")  # a shopping wish (mode invite)
    assert stored_answer(client, conversation_id)["metadata"]["recommendations"]
    strict = make_client(**{**shop, "recommend.mode": "ask"})
    conversation_id, _ = ask(strict, "I'm looking for a waterproof jacket")  # mode ask: only explicit asks
    assert "recommendations" not in stored_answer(strict, conversation_id)["metadata"]


def test_an_item_that_says_no_to_what_was_asked_for_is_not_offered(make_client, shop):
    client = make_client(**shop)
    conversation_id, _ = ask(client, "Can you recommend a waterproof jacket for hikes?")
    assert "J4" not in {c["id"] for c in stored_answer(client, conversation_id)["metadata"]["recommendations"]}
    conversation_id, _ = ask(client, "Can you recommend a jacket for windy hikes?")
    assert "J4" in {c["id"] for c in stored_answer(client, conversation_id)["metadata"]["recommendations"]}


def test_nothing_that_fits_is_said_plainly(make_client, shop):
    client = make_client(**shop)
    _, answer = ask(client, "Can you recommend a jacket under 20 euros?")
    assert "couldn't find anything in our catalogue" in answer["answer"]


def test_clicks_and_dismissals_are_recorded_for_the_items_shown_only(make_client, shop):
    client = make_client(**shop)
    conversation_id, answer = ask(client, "Can you recommend a jacket for hiking in the rain?")
    cards = stored_answer(client, conversation_id)["metadata"]["recommendations"]
    message_id = answer["answer_id"]
    url = f"/api/conversations/{conversation_id}/recommendations"
    dismissed = client.post(url, json={"message_id": message_id, "item_id": cards[-1]["id"], "action": "dismiss"})
    assert dismissed.status_code == 201
    never_shown = client.post(url, json={"message_id": message_id, "item_id": "S1", "action": "click"})
    assert never_shown.status_code == 404 and "did not recommend" in never_shown.json()["error"]["message"]
    service = client.app.state.service
    link = service.card_link(conversation_id, message_id, cards[0]["id"])
    opened = client.get(link, follow_redirects=False)
    assert opened.status_code == 302 and opened.headers["location"] == cards[0]["url"]
    forged = client.get(link.replace("?t=", "?t=x"), follow_redirects=False)
    assert forged.status_code == 404
    kinds = [(i.kind, i.item) for i in service.store.interactions.of_customer(f"session:{conversation_id}")]
    assert ("dismiss", cards[-1]["id"]) in kinds and ("click", cards[0]["id"]) in kinds
    assert sum(k == "shown" for k, _ in kinds) == len(cards)


def test_cold_start_says_so_and_a_known_customer_gets_their_history(make_client, shop):
    client = make_client(**shop)
    conversation_id, answer = ask(client, "What would you recommend for me?")
    assert stored_answer(client, conversation_id)["metadata"]["basis"] == "popular"
    assert "don't know your taste yet" in answer["answer"]
    service = client.app.state.service

    async def as_ann() -> tuple[dict, str]:
        record = await service.create_conversation(verified_identity={"customer_id": "ann"})
        text = "".join([e.data["text"] async for e in service.answer(record.id, "What would you recommend for me?")
                        if e.type == "delta"])
        return (await service.messages(record.id))[-1].metadata, text

    metadata, text = asyncio.run(as_ann())
    assert metadata["basis"] == "history"
    assert metadata["recommendations"][0]["id"] == "P1"  # who bought the rain jacket bought the overtrousers
    assert "J1" not in {c["id"] for c in metadata["recommendations"]}  # never what she already has
    assert "often chosen by customers who bought Storm rain jacket" in text


def test_chinese_requests_are_answered_in_chinese(make_client, shop):
    client = make_client(**shop)
    conversation_id, answer = ask(client, "推荐一款防水冲锋衣")
    assert stored_answer(client, conversation_id)["metadata"]["recommendations"][0]["id"] == "J1"
    assert answer["answer"].startswith("根据您的需求")
    # the ask's own words ("我想买", "有推荐吗") are not what is looked for: the shoes are found, not what is popular
    conversation_id, answer = ask(client, "我想买一双越野跑的鞋，有推荐吗？")
    assert [c["id"] for c in stored_answer(client, conversation_id)["metadata"]["recommendations"]] == ["S1"]
    assert answer["answer"].startswith("根据您的需求")


def test_the_models_pick_is_constrained_to_the_candidates(tiny_model_dir):
    """The tiny model is random: whatever it writes, the pick names candidates only, each once, at most three."""
    from assistant.config import GenerationSettings, RecommendSettings
    from assistant.engines.base import GenerationParams
    from assistant.engines.transformers_engine import TransformersEngine
    from assistant.recommend.catalog import CatalogItem
    from assistant.recommend.catalog_index import CatalogFilter
    from assistant.recommend.requests import RecommendationRequest
    from assistant.recommend.service import Candidate, RecommendationService

    service = RecommendationService(RecommendSettings(model_picks=True), None, "default", tiny_model_dir, "Shop")
    candidates = [Candidate(CatalogItem(f"item-{n}", f"Thing {n}", category="Things", price=10.0 + n), 1 / (n + 1),
                            0.9, False) for n in range(6)]
    engine = TransformersEngine(str(tiny_model_dir), "tiny", GenerationSettings(max_new_tokens=24, temperature=0))
    params = GenerationParams(max_new_tokens=24, temperature=0, top_p=1, repetition_penalty=1.0)

    async def run() -> list[tuple[list, bool]]:
        await engine.start()
        try:
            return [await service.pick(RecommendationRequest(text, text, True, CatalogFilter(), False), candidates,
                                       engine, params) for text in ("a thing please", "recommend something cheap")]
        finally:
            await engine.stop()

    for chosen, by_model in asyncio.run(run()):
        ids = [c.item.id for c in chosen]
        assert by_model and 1 <= len(ids) <= 3 and len(set(ids)) == len(ids)
        assert set(ids) <= {c.item.id for c in candidates}


def test_accepted_and_dismissed_suggestions_become_preference_pairs(make_client, shop):
    from alignment.feedback import recommendation_pairs
    from assistant.redaction import Redactor

    client = make_client(**shop)
    conversation_id, answer = ask(client, "Can you recommend something waterproof for hiking?")
    cards = stored_answer(client, conversation_id)["metadata"]["recommendations"]
    assert len(cards) >= 2
    url = f"/api/conversations/{conversation_id}/recommendations"
    client.post(url, json={"message_id": answer["answer_id"], "item_id": cards[1]["id"], "action": "click"})
    client.post(url, json={"message_id": answer["answer_id"], "item_id": cards[0]["id"], "action": "dismiss"})
    (pair,) = recommendation_pairs(client.app.state.service.store, Redactor())
    assert json.loads(pair.chosen[0]["content"]) == {"items": [cards[1]["id"]]}
    assert json.loads(pair.rejected[0]["content"]) == {"items": [cards[0]["id"]]}
    assert pair.prompt[-1]["content"] == "Can you recommend something waterproof for hiking?"
    assert cards[0]["id"] in pair.prompt[0]["content"]  # the pick's own prompt, candidates listed
