"""Insights: topics of customer questions, and curated answers served before the model."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from assistant.cli import main

QUESTIONS = {
    "refund": ["How long does a refund take?", "When will I get my money back?", "My refund has not arrived yet",
               "How many days until the refund reaches my card?", "Is my refund on its way?",
               "I returned the boots, where is my refund?"],
    "delivery": ["Where is my parcel?", "My order has not been delivered", "When will my package arrive?",
                 "The courier has not delivered my order yet", "Can you track my delivery?",
                 "My package is late, where is it?"],
    "password": ["I forgot my password", "How do I reset my password?", "I cannot log in to my account",
                 "The password reset email never came", "How can I change my password?",
                 "My login does not work, I need a new password"],
}


def labelled() -> tuple[list[str], list[str]]:
    texts = [q for qs in QUESTIONS.values() for q in qs]
    return texts, [label for label, qs in QUESTIONS.items() for _ in qs]


def test_questions_are_grouped_by_what_they_ask_and_topics_are_named_by_their_words():
    from sklearn.metrics import adjusted_rand_score

    from assistant.insights.topics import group_questions

    texts, labels = labelled()
    groups, names = group_questions(texts, "default")
    assert adjusted_rand_score(labels, groups) >= 0.6
    named = " ".join(names)
    assert "refund" in named and "password" in named  # a support lead reads what a topic is about


def test_a_new_question_joins_its_topic_and_the_topics_survive_a_restart(tmp_path):
    from assistant.insights.topics import TopicModel
    from retrieval.embeddings import load_encoder

    encoder = load_encoder("default")
    texts, _ = labelled()
    model, groups = TopicModel.find(texts, encoder)
    refund_topic = groups[0]
    model.save(tmp_path)
    again = TopicModel.load(tmp_path)
    (topic, similarity), = again.assign(encoder, ["Has my refund been sent to my card?"])
    assert topic == refund_topic and similarity > 0.3
    assert [t.label for t in again.topics] == [t.label for t in model.topics]
    assert np.allclose(again.centre_rows, model.centre_rows)


def test_eval_topics_reports_agreement_and_names_the_bad_lines(tmp_path, capsys):
    texts, labels = labelled()
    file = tmp_path / "topics.jsonl"
    rows = [json.dumps({"text": t, "label": label}) for t, label in zip(texts, labels, strict=True)]
    file.write_text("\n".join([*rows, '{"text": "", "label": "x"}', "not json"]) + "\n")
    assert main(["eval", "topics", str(file), "--json", "--home", str(tmp_path / "home")]) == 0
    out = capsys.readouterr()
    metrics = json.loads(out.out)
    assert metrics["texts"] == 18 and metrics["labels"] == 3 and metrics["nmi"] >= 0.6
    assert metrics["assign_ms_p95"] is not None
    assert f"{file}:line 19: field 'text' must be a non-empty string" in out.err
    assert f"{file}:line 20" in out.err
    assert main(["eval", "topics", str(file), "--strict", "--home", str(tmp_path / "home")]) == 2
    assert "line 19" in capsys.readouterr().err


def test_eval_curated_reports_precision_per_threshold_on_labelled_questions(tmp_path, capsys):
    texts, labels = labelled()
    file = tmp_path / "questions.jsonl"
    file.write_text("\n".join(json.dumps({"text": t, "label": label}) for t, label in zip(texts, labels, strict=True)))
    assert main(["eval", "curated", str(file), "--per-label", "2", "--json", "--home", str(tmp_path / "home")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["curated"] == 6 and result["questions"] == 12
    rows = result["runs"]["labelled"]
    assert rows[0]["matched"] >= rows[-1]["matched"]  # a higher threshold answers fewer questions
    assert rows[0]["precision"] >= 0.8  # questions of one topic find a curated question of their own topic


@pytest.mark.usefixtures("database_url")
def test_curated_answers_are_versioned_withdrawn_and_never_doubled(make_settings):
    from assistant.insights.curated import curated_answers
    from assistant.store import CuratedAnswerError, Store

    settings = make_settings().settings
    store = Store(settings.effective_database_url)
    curated = curated_answers(store, settings)
    first = curated.add("How long does a refund take?", "Refunds reach your card within 5 working days.", "ana")
    with pytest.raises(CuratedAnswerError, match=f"curated answer {first.id} already answers this question"):
        curated.add("How long does a refund take", "Ten days.", "bo")  # the same question, another answer
    second = curated.add("How long does a refund take?", "Refunds reach your card within 3 working days.", "ana",
                         replaces=first.id)
    assert second.version == 2 and second.previous_id == first.id
    assert [a.id for a in store.curated.listed()] == [second.id]  # exactly one version served
    assert curated.match("how long does a refund take").answer.id == second.id
    with pytest.raises(CuratedAnswerError, match="was withdrawn"):
        curated.add("Do you ship to Canada?", "Yes.", "ana", replaces=first.id)  # an old version
    with pytest.raises(CuratedAnswerError, match="cannot be empty"):
        curated.add("Do you ship to Canada?", "  ", "ana")
    curated.withdraw(second.id, "bo")
    assert curated.match("How long does a refund take?") is None
    with pytest.raises(CuratedAnswerError, match="already withdrawn"):
        curated.withdraw(second.id, "bo")
    assert len(store.curated.listed(include_withdrawn=True)) == 2  # kept for the record
    store.close()


def test_a_question_between_two_curated_answers_that_differ_gets_neither(make_settings):
    from assistant.insights.curated import curated_answers
    from assistant.store import Store

    settings = make_settings(**{"insights.curated_min_similarity": 0.85}).settings
    store = Store(settings.effective_database_url)
    curated = curated_answers(store, settings)
    gold = curated.add("What should I do about a void transaction on my Gold debit card?",
                       "Fax the void slip to the Gold card desk.", "ana")
    curated.add("What should I do about a void transaction on my Titanium debit card?",  # a product variant: kept
                "Bring the void slip to a branch.", "ana")
    assert curated.match("void transaction on my gold debit card, what now?").answer.id == gold.id
    # as close to both (within the margin), and they disagree: no curated answer, the model answers
    assert curated.match("What should I do about a void transaction on my debit card?") is None
    store.close()


def test_a_matching_question_gets_the_curated_answer_before_the_model(make_client):
    from assistant.insights.curated import curated_answers

    client = make_client()
    service = client.app.state.service
    answer = "Refunds reach your card within 5 working days of our receiving the return."
    record = service.curated.add("How long does a refund take?", answer, "ana")  # as the console and API do
    asked = len(service.engine.current.prompts)
    cid = client.post("/api/conversations").json()["id"]
    reply = client.post(f"/api/conversations/{cid}/messages",
                        json={"content": "How long do refunds take?", "stream": False}).json()
    assert reply["answer"] == answer
    assert len(service.engine.current.prompts) == asked  # the model was not asked
    stored = service.store.conversations.messages(cid)[-1]
    assert stored.metadata["reason"] == "curated" and stored.metadata["curated"]["id"] == record.id
    assert service.store.curated.get(record.id).served == 1
    other = client.post(f"/api/conversations/{cid}/messages",
                        json={"content": "Do you sell tents?", "stream": False}).json()
    assert other["answer"] != answer and len(service.engine.current.prompts) == asked + 1
    service.curated.withdraw(record.id, "ana")  # withdrawn: the model answers again, at once
    again = client.post(f"/api/conversations/{cid}/messages",
                        json={"content": "How long do refunds take?", "stream": False}).json()
    assert again["answer"] != answer
    # one curated by another process (`assistant curated add`, another replica) is served within a second
    elsewhere = curated_answers(service.store, service.settings)
    elsewhere.add("Do you sell tents?", "We do not sell tents.", "bo")
    time.sleep(service.curated.recheck_s)
    tents = client.post(f"/api/conversations/{cid}/messages",
                        json={"content": "Do you sell tents?", "stream": False}).json()
    assert tents["answer"] == "We do not sell tents."


def _at(day: int, hour: int, minute: int = 0, second: int = 0):
    from datetime import UTC, datetime

    return datetime(2026, 11, day, hour, minute, second, tzinfo=UTC)


def _fill_outcomes_store(store):
    """Six conversations with known fates (times set as if they happened in November 2026)."""
    from sqlalchemy import update

    from assistant.store.schema import Conversation, Handoff, Message

    def conversation(customer, day, hour, first, answer_after=None):
        cid = store.conversations.create_conversation(customer, "widget").id
        user = store.conversations.add_message(cid, "user", first)
        answer = store.conversations.add_message(cid, "assistant", "an answer") if answer_after is not None else None
        with store.session() as session, session.begin():  # as if it happened then: the messages and the facts
            answered = _at(day, hour, 0, answer_after) if answer else None
            session.execute(update(Conversation).where(Conversation.id == cid).values(
                created_at=_at(day, hour), first_user_at=_at(day, hour), first_answer_at=answered))
            session.execute(update(Message).where(Message.id == user).values(created_at=_at(day, hour)))
            if answer:
                session.execute(update(Message).where(Message.id == answer).values(created_at=answered))
        return cid, answer

    def closed(cid, when, csat=None):
        store.conversations.close_conversation(cid, csat)
        with store.session() as session, session.begin():
            session.execute(update(Conversation).where(Conversation.id == cid).values(closed_at=when))

    def handed(cid, reason, requested, accepted=None):
        store.handoffs.request_human(cid, reason)
        if accepted:
            store.handoffs.take_over(cid, "ana")
        with store.session() as session, session.begin():
            session.execute(update(Handoff).where(Handoff.conversation_id == cid)
                            .values(requested_at=requested, accepted_at=accepted))

    c1, a1 = conversation("ann", 2, 10, "Where is my order?", answer_after=4)
    closed(c1, _at(2, 10, 5), csat=5)  # resolved by the assistant alone
    c2, a2 = conversation("bob", 2, 12, "I want a human", answer_after=2)
    handed(c2, "customer_asked", _at(2, 12, 1), _at(2, 12, 3))
    closed(c2, _at(2, 12, 30), csat=2)
    c3, _ = conversation("cai", 3, 9, "Do you ship to Canada?")
    closed(c3, _at(3, 9, 10), csat=3)
    conversation("cai", 3, 15, "Still about shipping to Canada")  # back within a day: c3 was not settled
    c5, _ = conversation("dai", 4, 8, "我的退款什么时候到账？")
    handed(c5, "no_relevant_source", _at(4, 8, 1))
    conversation("eve", 1, 8, "An old question")  # before the period
    with store.session() as session, session.begin():
        session.execute(update(Conversation).where(Conversation.customer_id == "eve")
                        .values(created_at=_at(1, 8).replace(month=10)))
    store.conversations.add_feedback(a1, rating=1)
    store.conversations.add_feedback(a2, rating=-1)


@pytest.mark.usefixtures("database_url")
def test_outcomes_count_each_conversation_once_by_the_definitions(make_settings):
    from assistant.insights.outcomes import OutcomeFilter, OutcomeQueryError, outcomes, series_csv
    from assistant.store import Store

    store = Store(make_settings().settings.effective_database_url)
    _fill_outcomes_store(store)
    november = OutcomeFilter(_at(1, 0), _at(30, 0))
    result = outcomes(store, november)
    totals = result["totals"]
    assert (totals["conversations"], totals["resolved_alone"], totals["handed_off"], totals["open"]) == (5, 1, 2, 2)
    assert totals["resolution_rate"] == 0.2
    assert totals["handoff_reasons"] == {"customer_asked": 1, "no_relevant_source": 1}
    assert totals["csat"] == {"rated": 3, "mean": 3.33}
    assert totals["thumbs"] == {"up": 1, "down": 1}
    assert totals["first_response_s"]["bot"] == {"p50": 3.0, "p90": 3.8, "count": 2}
    assert totals["first_response_s"]["human"] == {"p50": 120.0, "p90": 120.0, "count": 1}
    assert totals["languages"] == {"en": 4, "zh": 1}
    assert [(s["period"], s["conversations"], s["resolved_alone"], s["handed_off"]) for s in result["series"]] == [
        ("2026-11-02", 2, 1, 1), ("2026-11-03", 2, 0, 0), ("2026-11-04", 1, 0, 1)]
    weekly = outcomes(store, OutcomeFilter(_at(1, 0), _at(30, 0), bucket="week"))
    assert [(s["period"], s["conversations"]) for s in weekly["series"]] == [("2026-11-02", 5)]  # a Monday
    chinese = outcomes(store, OutcomeFilter(_at(1, 0), _at(30, 0), language="zh"))["totals"]
    assert (chinese["conversations"], chinese["handed_off"]) == (1, 1)
    assert series_csv(result).splitlines()[1] == "2026-11-02,2,1,1,0,3.5"
    empty = outcomes(store, OutcomeFilter(_at(20, 0), _at(21, 0)))
    assert empty["totals"]["conversations"] == 0 and "no conversations" in empty["note"]
    with pytest.raises(OutcomeQueryError, match="the period is empty"):
        outcomes(store, OutcomeFilter(_at(21, 0), _at(20, 0)))
    store.close()


@pytest.mark.usefixtures("database_url")
def test_topics_are_stored_counted_renamed_merged_and_new_conversations_join_them(make_settings):
    from sqlalchemy import update

    from assistant.insights.gaps import knowledge_gaps
    from assistant.insights.outcomes import OutcomeFilter
    from assistant.insights.stored_topics import assign_new, find_topics, topic_conversations, topic_outcomes
    from assistant.store import Store, TopicError
    from assistant.store.schema import Conversation

    store = Store(make_settings().settings.effective_database_url)
    ids = {}
    for topic, questions in QUESTIONS.items():
        for i, question in enumerate(questions):
            cid = store.conversations.create_conversation(f"{topic}{i}", "widget").id
            store.conversations.add_message(cid, "user", question)
            if topic == "refund":
                store.conversations.close_conversation(cid, 4)  # resolved by the assistant alone
            if topic == "delivery":
                store.handoffs.request_human(cid, "customer_asked")
            # refunds: 2 in the first half of November, 4 in the second; the others all in the first
            day = 3 + i if topic != "refund" else (5 if i < 2 else 20 + i)
            with store.session() as session, session.begin():
                session.execute(update(Conversation).where(Conversation.id == cid).values(created_at=_at(day, 9)))
            ids.setdefault(topic, []).append(cid)
    november = OutcomeFilter(_at(1, 0), _at(30, 0))
    assert topic_outcomes(store, november)["note"].startswith("no topics yet")
    found = find_topics(store, "default", november.since, november.until)
    assert len(found) == 3
    result = {r["label"].split(" · ")[0]: r for r in topic_outcomes(store, november)["topics"]}
    refund, delivery, password = result["refund"], result["delivered"], result["password"]
    assert (refund["conversations"], refund["resolved_alone"], refund["csat"]) == (6, 6, 4.0)
    assert (refund["earlier"], refund["later"], refund["trend"]) == (2, 4, 1.0)
    assert (delivery["handed_off"], delivery["resolution_rate"], password["handed_off"]) == (6, 0.0, 0)

    store.topics.rename(refund["id"], "  Refund timing ")
    assert store.topics.merge(password["id"], delivery["id"]).id == delivery["id"]
    with pytest.raises(TopicError, match="nothing to merge"):
        store.topics.merge(password["id"], delivery["id"])
    with pytest.raises(TopicError, match="no topic 999"):
        store.topics.rename(999, "x")
    with pytest.raises(TopicError, match="cannot be empty"):
        store.topics.rename(refund["id"], "  ")
    merged = {r["topic"]: r for r in topic_outcomes(store, november)["topics"]}
    assert merged["Refund timing"]["conversations"] == 6 and merged[delivery["topic"]]["conversations"] == 12
    gaps = knowledge_gaps(store, "default", _at(1, 0), _at(1, 0).replace(year=2027))  # handed off (today), by topic
    assert [(g.label, len(g.questions)) for g in gaps] == [(delivery["topic"], 6)]

    new = store.conversations.create_conversation("zoe", "widget").id  # arrives after the topics were found
    store.conversations.add_message(new, "user", "Has my refund been sent back to my card yet?")
    late = store.conversations.create_conversation("yan", "widget").id
    store.conversations.add_message(late, "user", "I forgot my password again")  # joins the merged topic
    assert assign_new(store, "default") == 2 and assign_new(store, "default") == 0
    now = OutcomeFilter(_at(1, 0), _at(1, 0).replace(year=2027))
    after = {r["topic"]: r for r in topic_outcomes(store, now)["topics"]}
    assert after["Refund timing"]["conversations"] == 7 and after[delivery["topic"]]["conversations"] == 13
    drill = topic_conversations(store, now, refund["id"])
    assert drill[0]["conversation"] == new and drill[0]["outcome"] == "open"
    assert {d["conversation"] for d in drill[1:]} == set(ids["refund"])
    assert {d["outcome"] for d in drill[1:]} == {"resolved alone"}

    again = find_topics(store, "default", now.since, now.until)  # found again: the name and the merge carry over
    assert "Refund timing" in [t.title for t in again]
    assert len([t for t in again if t.merged_into is None]) == 2
    with pytest.raises(TopicError, match="no customer questions"):
        find_topics(store, "default", _at(1, 0).replace(year=2020), _at(2, 0).replace(year=2020))
    store.close()


def test_the_insights_api_needs_an_admin_key_and_answers_in_json_and_csv(make_client):
    client = make_client(**{"auth.required": True})
    assert client.get("/api/insights/outcomes").status_code == 401
    service = client.app.state.service
    assert client.get("/api/insights/outcomes", headers={
        "Authorization": f"Bearer {service.store.keys.create_api_key('api')}"}).status_code == 403
    admin = service.store.keys.create_api_key("admin", "lead")
    headers = {"Authorization": f"Bearer {admin}"}
    report = client.get("/api/insights/outcomes?days=7", headers=headers).json()
    assert report["totals"]["conversations"] == 0 and report["note"]
    csv = client.get("/api/insights/outcomes?days=7&format=csv", headers=headers)
    assert csv.headers["content-type"].startswith("text/csv") and csv.text.startswith("period,conversations")
    added = client.post("/api/insights/curated", headers=headers,
                        json={"question": "Do you ship to Canada?", "answer": "Yes, in 5-8 days.", "author": "lead"})
    assert added.status_code == 201
    clash = client.post("/api/insights/curated", headers=headers,
                        json={"question": "Do you ship to Canada", "answer": "No.", "author": "lead"})
    assert clash.status_code == 409 and "already answers" in clash.json()["error"]["message"]
    gone = client.delete(f"/api/insights/curated/{added.json()['id']}?author=lead", headers=headers)
    assert gone.status_code == 200 and gone.json()["withdrawn_by"] == "lead"
    assert client.get("/api/insights/curated", headers=headers).json()["curated"] == []

    nothing = client.post("/api/insights/topics/find", headers=headers, json={"days": 7})
    assert nothing.status_code == 400 and "no customer questions" in nothing.json()["error"]["message"]
    for question in ("Where is my parcel?", "My package has not arrived", "When will my order be delivered?",
                     "Where is my package?", "My parcel is late, where is it?"):
        conversation = client.post("/api/conversations", headers=headers).json()["id"]
        client.post(f"/api/conversations/{conversation}/messages", headers=headers,
                    json={"content": question, "stream": False})
    found = client.post("/api/insights/topics/find", headers=headers, json={"days": 7}).json()["topics"]
    assert len(found) == 1 and found[0]["size"] == 5
    topic = found[0]["id"]
    renamed = client.patch(f"/api/insights/topics/{topic}", headers=headers, json={"name": "Late parcels"})
    assert renamed.json()["name"] == "Late parcels"
    assert client.patch("/api/insights/topics/999", headers=headers, json={"name": "x"}).status_code == 404
    assert client.patch(f"/api/insights/topics/{topic}", headers=headers, json={}).status_code == 400
    listed = client.get("/api/insights/topics?days=7", headers=headers).json()["topics"]
    assert [(t["topic"], t["conversations"]) for t in listed] == [("Late parcels", 5)]
    table = client.get("/api/insights/topics?days=7&format=csv", headers=headers).text
    assert table.splitlines()[1].startswith(f"{topic},Late parcels,")
    drill = client.get(f"/api/insights/topics/{topic}/conversations?days=7", headers=headers).json()
    assert len(drill["conversations"]) == 5 and drill["conversations"][0]["outcome"] == "open"


def test_the_insights_view_draws_outcomes_for_the_period():
    from ui.insights_view import headline, outcome_bars, reason_bars

    result = {"series": [{"period": "2026-11-02", "resolved_alone": 1, "handed_off": 1, "open": 0}],
              "totals": {"conversations": 2, "resolution_rate": 0.5, "handed_off": 1, "open": 0,
                         "handoff_reasons": {"customer_asked": 1}, "csat": {"rated": 1, "mean": 5.0},
                         "thumbs": {"up": 1, "down": 0},
                         "first_response_s": {"bot": {"p50": 3.0}, "human": {"p50": 120.0}}}, "note": None}
    bars = outcome_bars(result)
    assert bars.to_dict("records")[:2] == [
        {"period": "2026-11-02", "outcome": "resolved by the assistant", "conversations": 1},
        {"period": "2026-11-02", "outcome": "handed to a human", "conversations": 1}]
    assert reason_bars(result).to_dict("records") == [{"reason": "customer asked", "conversations": 1}]
    line = headline(result)
    assert "**50%** resolved by the assistant alone" in line and "2.0 min" in line
    # nothing to draw: no frame at all (a Gradio plot first given an empty frame never draws bars after it)
    quiet = {**result, "series": [], "totals": {**result["totals"], "handoff_reasons": {}}}
    assert outcome_bars(quiet) is None and reason_bars(quiet) is None


def test_a_knowledge_gap_is_fixed_by_publishing_what_the_agent_said(make_client, tmp_path):
    from datetime import UTC, datetime, timedelta

    from assistant.insights.gaps import extractive_draft

    docs = tmp_path / "help"
    docs.mkdir()
    (docs / "refunds.md").write_text("# Refunds\n\nRefunds reach your card within five business days after the "
                                     "warehouse receives your return.\n")
    client = make_client(**{"retrieval.enabled": True, "retrieval.sources": [str(docs)]})
    service = client.app.state.service

    def ask(text: str, conversation: str | None = None) -> tuple[str, dict]:
        conversation = conversation or client.post("/api/conversations").json()["id"]
        reply = client.post(f"/api/conversations/{conversation}/messages", json={"content": text, "stream": False})
        return conversation, reply.json()

    first, reply = ask("Do you offer gift wrapping?")
    assert "couldn't find the answer" in reply["answer"]
    ask("Do you have gift wrapping?")
    service.store.handoffs.take_over(first, "ana")
    service.store.handoffs.add_agent_message(first, "ana", "Yes: gift wrapping costs 5 dollars; choose it at checkout.")
    now = datetime.now(UTC)
    gaps = asyncio_run(service.insights.gaps(now - timedelta(days=1), now + timedelta(minutes=1)))
    assert len(gaps) == 1 and {q.text for q in gaps[0].questions} == {"Do you offer gift wrapping?",
                                                                      "Do you have gift wrapping?"}
    assert {q.why for q in gaps[0].questions} == {"no_source"}
    assert gaps[0].human_replies == ["Yes: gift wrapping costs 5 dollars; choose it at checkout."]
    listed = client.get("/api/insights/gaps?days=1").json()["gaps"]
    assert listed[0]["human_replies"] == gaps[0].human_replies
    draft = extractive_draft(gaps[0])
    assert client.post("/api/insights/articles", json={"title": "Gift wrapping", "text": " "}).status_code == 400
    published = client.post("/api/insights/articles", json={"title": "Gift wrapping", "text": draft})
    assert published.status_code == 201 and published.json()["passages_added"] >= 1
    later, again = ask("Do you offer gift wrapping?")  # the next customer gets a cited answer
    assert "couldn't find the answer" not in again["answer"]
    stored = client.get(f"/api/conversations/{later}").json()["messages"][-1]
    assert any(s["title"] == "Gift wrapping" for s in stored["sources"])


def asyncio_run(awaitable):
    import asyncio

    return asyncio.new_event_loop().run_until_complete(awaitable)


def test_bench_insights_fills_a_store_and_times_every_section(tmp_path, capsys):
    texts, _ = labelled()
    questions = tmp_path / "questions.txt"
    questions.write_text("\n".join(texts))
    args = ["bench", "insights", "--conversations", "300", "--store", str(tmp_path / "big.db"), "--questions",
            str(questions), "--days", "30", "--repeats", "1", "--json", "--out", str(tmp_path / "results"),
            "--home", str(tmp_path / "home")]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["conversations"] == 300 and result["topics"] >= 2
    sections = result["periods"]["30 days"]["sections"]
    assert set(sections) == {"outcomes", "topics", "topic drill-down", "knowledge gaps", "curated answers"}
    assert result["periods"]["30 days"]["page_s"] > 0
    assert main(args) == 0  # the store is kept: the second run only times
    assert json.loads(capsys.readouterr().out)["conversations"] == 300
    assert len(list((tmp_path / "results").glob("insights-*.json"))) >= 1
