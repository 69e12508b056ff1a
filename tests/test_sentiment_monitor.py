"""Scoring customer messages on arrival, conversation rules and handoff, feed ingestion, trends, alerts, the view."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from assistant.cli import main
from assistant.config import SentimentSettings
from assistant.sentiment.feeds import FeedError, ingest_feed, read_feed
from assistant.sentiment.lexicon import LexiconScorer
from assistant.sentiment.monitor import SentimentMonitor
from assistant.sentiment.trends import distribution, feed_alerts, window_table
from assistant.store import Store


@pytest.fixture
def store(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    yield store
    store.close()


def say(store: Store, conversation_id: str, *texts: str) -> None:
    for text in texts:
        store.conversations.add_message(conversation_id, "user", text)
        store.conversations.add_message(conversation_id, "assistant", "Let me check that for you.")


def test_messages_are_scored_in_batches_and_rules_hand_off(store, tmp_path):
    monitor = SentimentMonitor(store, SentimentSettings(batch_size=3), tmp_path / "home")
    calm = store.conversations.create_conversation().id
    angry = store.conversations.create_conversation().id
    say(store, calm, "How do I change my delivery address?", "Thanks, that was really helpful!")
    say(store, angry, "Hi, my parcel is great fun to track", "This is terrible, the parcel is late again.",
        "Awful service, I am furious and disappointed.")
    assert monitor.run_once() == 3 and monitor.run_once() == 2 and monitor.run_once() == 0
    assert [t.label for t in store.sentiment.sentiment_trajectory(calm)] == ["neutral", "positive"]
    trajectory = store.sentiment.sentiment_trajectory(angry)
    assert [t.label for t in trajectory] == ["positive", "negative", "negative"]
    assert trajectory[2].score < -0.5 and trajectory[0].text.startswith("Hi, my parcel")
    alerts = store.sentiment.sentiment_alerts(scope="conversation")
    assert {a.rule for a in alerts} == {"negative_turns", "sharp_drop"}
    assert {a.conversation_id for a in alerts} == {angry}
    assert store.conversations.get_conversation(angry).status == "waiting_human"
    assert store.conversations.get_conversation(calm).status == "bot"
    assert monitor.check_conversation(angry) == []  # each rule fires once per conversation


def test_churn_words_alert_without_handoff_when_disabled(store, tmp_path):
    settings = SentimentSettings(handoff_on_alert=False, churn_words=["cancel my", "投诉"])
    monitor = SentimentMonitor(store, settings, tmp_path / "home")
    english = store.conversations.create_conversation().id
    chinese = store.conversations.create_conversation().id
    say(store, english, "Please cancel my subscription today.")
    say(store, chinese, "我要投诉你们的快递")
    monitor.run_once()
    alerts = {a.conversation_id: a for a in store.sentiment.sentiment_alerts()}
    assert alerts[english].rule == alerts[chinese].rule == "churn_words"
    assert "cancel my" in alerts[english].detail and "投诉" in alerts[chinese].detail
    assert store.conversations.get_conversation(english).status == "bot"


def test_api_scores_messages_as_they_arrive(make_client):
    client = make_client(**{"sentiment.enabled": True, "sentiment.interval_s": 0.05})
    conversation = client.post("/api/conversations").json()["id"]
    for text in ("The app keeps crashing, this is awful.", "Still broken. Terrible, I am so angry!"):
        client.post(f"/api/conversations/{conversation}/messages", json={"content": text, "stream": False})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        body = client.get(f"/api/sentiment/conversations/{conversation}").json()
        status = client.get(f"/api/conversations/{conversation}").json()["status"]
        if len(body["trajectory"]) == 2 and body["alerts"] and status != "bot":
            break
        time.sleep(0.1)
    assert [t["label"] for t in body["trajectory"]] == ["negative", "negative"]
    assert body["alerts"][0]["rule"] == "negative_turns"
    assert status == "waiting_human"
    trends = client.get("/api/sentiment/trends", params={"window": "1h"}).json()["rows"]
    assert trends[0]["items"] == 2 and trends[0]["negative_share"] == 1.0
    assert client.get("/api/sentiment/trends", params={"window": "fortnightly"}).status_code == 400
    assert client.get("/api/sentiment/conversations/nope").status_code == 404


def feed_rows(day: datetime, entity: str, negatives: int, positives: int) -> list[dict]:
    rows = [{"timestamp": (day + timedelta(minutes=i)).isoformat(), "entity": entity,
             "text": f"{entity} shares crash after terrible losses, investors furious ({i})"} for i in range(negatives)]
    rows += [{"timestamp": (day + timedelta(hours=2, minutes=i)).isoformat(), "entity": entity,
              "text": f"{entity} reports great results, strong growth and happy customers ({i})"}
             for i in range(positives)]
    return rows


def test_feed_ingestion_scores_stores_deduplicates_and_alerts(store, tmp_path):
    start = datetime(2026, 11, 1, 9, tzinfo=UTC)
    rows = []
    for day in range(5):  # a calm baseline week for ACME, then a bad day
        rows += feed_rows(start + timedelta(days=day), "ACME", 1, 5)
    rows += feed_rows(start + timedelta(days=5), "ACME", 6, 1)
    rows += feed_rows(start, "Globex", 0, 6)
    path = tmp_path / "news.jsonl"
    lines = [json.dumps(r) for r in rows]
    lines += ['{"text": "no time here"}', '{"timestamp": "yesterday", "text": "bad time"}',
              '{"timestamp": "2026-11-02", "text": ""}', "not json"]
    path.write_bytes("\n".join(lines).encode() + b'\n{"timestamp": "2026-11-02", "text": "caf\xe9"}\n')
    settings = SentimentSettings(feed_window="1D", feed_negative_share=0.6, feed_jump=0.4, feed_min_items=5)
    report = ingest_feed(store, LexiconScorer(), path, settings, {"source": "news"}, progress=False)
    assert report.read == len(rows) and report.added == len(rows) and report.duplicates == 0
    assert len(report.errors) == 5 and all(e.startswith(f"{path}:") for e in report.errors)
    assert "no time" in report.errors[0] and "'yesterday' is not a date" in report.errors[1]
    assert "not UTF-8" in report.errors[-1]
    assert report.labels["negative"] == 5 + 6 and report.labels["positive"] == 25 + 1 + 6
    alerts = store.sentiment.sentiment_alerts(scope="feed")
    bad_day = start.replace(hour=0) + timedelta(days=5)
    assert {(a.rule, a.entity, a.window_start) for a in alerts if a.entity} == {
        ("negative_share", "ACME", bad_day), ("negative_jump", "ACME", bad_day)}
    again = ingest_feed(store, LexiconScorer(), path, settings, {"source": "news"}, progress=False)
    assert again.added == 0 and again.duplicates == len(rows) and again.alerts == []
    stored = store.sentiment.feed_items(entity="ACME")
    assert len(stored) == 37 and stored[0].source == "news" and stored[0].time == start
    table = window_table(store.sentiment.feed_items(), "1D", by="entity")
    acme = table[table["group"] == "ACME"]
    assert list(acme["items"]) == [6, 6, 6, 6, 6, 7] and acme["negative_share"].iloc[-1] == pytest.approx(6 / 7, 1e-3)
    assert set(table["group"]) == {"ACME", "Globex"}


def test_csv_feeds_and_bad_files(store, tmp_path):
    path = tmp_path / "posts.csv"
    path.write_text("time,text,entity\n2026-11-03 10:00,\"Love the new app, great work\",ACME\n"
                    "1793613600,\"Worst update ever, everything is broken\",\n"
                    ",missing time,ACME\n", encoding="utf-8")
    read = read_feed(path, {"entity": "Default Co"})
    assert [i["entity"] for i in read.items] == ["ACME", "Default Co"]
    assert read.items[1]["published_at"] == datetime.fromtimestamp(1793613600, UTC)
    assert read.errors == [f"{path}:4: no time: give one of timestamp, time, date, published_at, created_at"]
    with pytest.raises(FeedError, match=f"{path}:4"):
        read_feed(path, strict=True)
    headless = tmp_path / "wrong.csv"
    headless.write_text("when,body\n2026-11-03,hello\n")
    with pytest.raises(FeedError, match="'text' column"):
        read_feed(headless)
    with pytest.raises(FeedError, match="unknown feed format"):
        read_feed(tmp_path / "feed.xlsx")


def test_feed_alert_rules_need_enough_items_and_a_baseline():
    base = datetime(2026, 11, 1, tzinfo=UTC)

    def rows(day: int, negative: int, neutral: int) -> list[dict]:
        return ([{"time": base + timedelta(days=day), "label": "negative", "score": -0.8, "text": "x", "entity": "A"}]
                * negative + [{"time": base + timedelta(days=day), "label": "neutral", "score": 0.0, "text": "y",
                               "entity": "A"}] * neutral)

    few = rows(0, 3, 0)  # 100% negative but only 3 items
    assert feed_alerts(few, "1D", 0.5, 0.2, 7, min_items=5) == []
    steady = rows(0, 2, 8) + rows(1, 2, 8) + rows(2, 3, 7)  # 20%, 20%, 30%: no threshold, no jump
    assert feed_alerts(steady, "1D", 0.5, 0.2, 7, min_items=5) == []
    jump = steady + rows(3, 5, 5)  # 50% against a 23% baseline
    [alert] = feed_alerts(jump, "1D", 0.6, 0.2, 7, min_items=5)
    assert alert.rule == "negative_jump" and alert.window_start == base + timedelta(days=3) and "23%" in alert.detail


def test_view_data_functions_and_page(store, tmp_path):
    from assistant.sentiment.trends import texts_between
    from ui.sentiment_view import alerts_frame, selection_bounds, trend_frame

    base = datetime(2026, 11, 2, 8, tzinfo=UTC)
    rows = [{"time": base + timedelta(hours=h), "label": label, "score": score, "text": text, "source": "news",
             "entity": entity}
            for h, label, score, text, entity in [(0, "negative", -0.9, "awful", "A"),
                                                  (1, "positive", 0.8, "great", "A"),
                                                  (30, "neutral", 0.0, "okay", "B")]]
    table = trend_frame(rows, "1D", "entity")
    # one window per group: each drawn flat across its day (a line needs two points)
    assert list(table["group"]) == ["A", "A", "B", "B"] and list(table["negative %"]) == [50.0, 50.0, 0.0, 0.0]
    assert [str(t) for t in table["time"][:2]] == ["2026-11-02 00:00:00", "2026-11-02 23:59:59"]
    assert len(trend_frame(rows, "1h", "entity")) == 2 + 2  # A has two hourly windows; B one, drawn flat
    assert list(distribution(rows)["items"]) == [1, 1, 1]
    start, end = selection_bounds([base.timestamp() * 1000, (base + timedelta(hours=2)).timestamp() * 1000])
    assert start == base
    picked = texts_between(rows, start, end, "1D")
    assert list(picked["text"]) == ["awful", "great"]  # the whole day behind the point, most negative first
    assert selection_bounds(None) is None
    store.sentiment.add_alert("k1", "feed", "negative_share", "A: 80% negative", entity="A")
    frame = alerts_frame(store.sentiment.sentiment_alerts())
    assert list(frame.columns) == ["raised", "scope", "rule", "where", "detail"] and frame["where"][0] == "A"
    assert window_table([], "1D").empty and texts_between([], start, end, "1D").empty


@pytest.mark.views("sentiment")
def test_sentiment_page_needs_an_operator_sign_in(client):
    client.app.state.service.store.operators.create_operator("maria", "correct horse battery")
    first = client.get("/sentiment/", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/operator/login?next=%2Fsentiment%2F"
    assert 'name="next" value="/sentiment/"' in client.get(first.headers["location"]).text
    signed_in = client.post("/operator/login", follow_redirects=False, data={
        "username": "maria", "password": "correct horse battery", "next": "/sentiment/"})
    assert signed_in.headers["location"] == "/sentiment/"  # back where they were going
    page = client.get("/sentiment/")
    assert page.status_code == 200 and "sentiment" in page.text.lower()
    elsewhere = client.post("/operator/login", follow_redirects=False, data={
        "username": "maria", "password": "correct horse battery", "next": "//evil.example/"})
    assert elsewhere.headers["location"] == "/operator/"  # never to another site


def test_monitor_cli_ingests_and_reports(tmp_path, capsys):
    home = str(tmp_path / "home")
    path = tmp_path / "headlines.csv"
    path.write_text("date,text\n2026-11-03,Company posts record profit and strong growth\n"
                    "2026-11-03,Regulator fines company after fraud scandal\n"
                    "2026-11-04,\n", encoding="utf-8")
    assert main(["monitor", "ingest", str(path), "--source", "news", "--entity", "ACME", "--home", home]) == 0
    out = capsys.readouterr()
    assert "2 rows read, 2 stored, 0 already stored, 1 skipped" in out.out and f"{path}:4" in out.err
    assert main(["monitor", "trends", "--feeds", "--by", "entity", "--json", "--home", home]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["group"] == "ACME" and row["items"] == 2 and row["negative_share"] == 0.5
    assert main(["monitor", "alerts", "--json", "--home", home]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["monitor", "ingest", str(tmp_path / "none.jsonl"), "--home", home]) == 2
    assert "cannot be read" in capsys.readouterr().err


def test_demo_feed_is_ingested_once_at_start(store, tmp_path):
    monitor = SentimentMonitor(store, SentimentSettings(), tmp_path / "home")
    monitor.prepare()
    items = store.sentiment.feed_items()
    assert len(items) > 50 and {i.entity for i in items} == {"Lumen Outfitters", "Trailhead Gear"}
    alerts = store.sentiment.sentiment_alerts(scope="feed")
    assert any(a.entity == "Lumen Outfitters" for a in alerts)  # the delay spike
    monitor.prepare()
    assert len(store.sentiment.feed_items()) == len(items)
    quiet = Store(f"sqlite:///{tmp_path / 'other.sqlite'}")
    SentimentMonitor(quiet, SentimentSettings(feeds=[]), tmp_path / "home").prepare()
    assert quiet.sentiment.feed_items() == []
    quiet.close()


def test_a_running_server_scores_with_a_newly_promoted_classifier(make_client, tmp_path):
    """`assistant sentiment train` promotes a classifier while the server runs: the next messages are scored by it."""
    import json
    import random

    from assistant.cli import main

    client = make_client(**{"sentiment.enabled": True, "sentiment.interval_s": 0.05, "sentiment.feeds": []})
    home = client.app.state.service.settings.home_dir

    def scored(text: str) -> str:
        cid = client.post("/api/conversations", json={}).json()["id"]
        client.post(f"/api/conversations/{cid}/messages", json={"content": text, "stream": False})
        for _ in range(400):
            turns = client.get(f"/api/sentiment/conversations/{cid}").json()["trajectory"]
            if turns and turns[0].get("label"):
                return turns[0]["label"]
            time.sleep(0.05)
        raise AssertionError("the message was never scored")

    # words no lexicon knows: the packaged scorer calls them neutral; the company's labelled data says otherwise
    assert scored("my zorbly parcel is glimpish") == "neutral"
    rng = random.Random(3)
    words = {"negative": ["zorbly", "glimpish", "vrunk"], "positive": ["quendly", "plimsy", "fabbo"],
             "neutral": ["order", "parcel", "today"]}
    rows = [{"text": " ".join([*rng.sample(pool, 2), "my", "the"]), "label": label}
            for label, pool in words.items() for _ in range(120)]
    train, dev = tmp_path / "train.jsonl", tmp_path / "dev.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows[::2]))
    dev.write_text("".join(json.dumps(r) + "\n" for r in rows[1::2]))
    assert main(["sentiment", "train", "--train", str(train), "--eval", str(dev), "--encoder", "none",
                 "--home", str(home)]) == 0
    assert scored("my zorbly parcel is glimpish") == "negative"  # the same words, the promoted classifier
