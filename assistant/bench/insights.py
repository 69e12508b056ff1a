"""`assistant bench insights`: how long the Insights view's sections take to compute on a store of many
conversations (target: the page for 100k stored conversations in <= 2 s).

The store is filled with synthetic conversations over the last 365 days: each starts with a real customer question
(a file of questions, banking77's by default), gets an answer, and then is closed by the bot (some rated), handed to
a human (reasons mixed, an agent replies) or left open; some answers say "I don't know", some get a thumbs down.
Topics are found and every conversation assigned by the product's own code. Then each section the view computes is
timed (median of repeated warm runs), and the page: all its sections one after the other, as on first load.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tqdm.auto import tqdm

from assistant.bench import write_results

DEFAULT_QUESTIONS = Path(__file__).resolve().parents[3] / "shared" / "data" / "banking77" / "train.csv"
REASONS = ("customer_asked", "no_relevant_source", "negative_sentiment", "failed_answers", "action_approval")
CHUNK = 5000


def read_questions(path: Path) -> list[str]:
    """Questions from a CSV with a `text` column, a JSONL of {"text"}, or a text file, one per line."""
    import pandas as pd

    if not path.is_file():
        raise SystemExit(f"error: {path}: no such file (give --questions FILE)")
    if path.suffix == ".csv":
        frame = pd.read_csv(path)
        if "text" not in frame.columns:
            raise SystemExit(f"error: {path}: no 'text' column")
        texts = frame["text"].astype(str).tolist()
    elif path.suffix == ".jsonl":
        texts = pd.read_json(path, lines=True)["text"].astype(str).tolist()
    else:
        texts = path.read_text(encoding="utf-8").splitlines()
    texts = [t.strip() for t in texts if t.strip()]
    if not texts:
        raise SystemExit(f"error: {path}: no questions")
    return texts


def _message(cid: str, role: str, content: str, at: datetime, sentiment_label: str | None = None,
             meta: dict | None = None) -> dict:
    return {"conversation_id": cid, "role": role, "content": content, "status": "complete", "created_at": at,
            "sentiment_label": sentiment_label, "meta": meta or {}}


def fill(store, conversations: int, questions: list[str], seed: int = 0, progress: bool = True) -> None:
    """`conversations` synthetic conversations over the last 365 days (module docstring), inserted in bulk."""
    from assistant.store.schema import Conversation, Feedback, Handoff, Message, new_id
    from retrieval.embeddings import mostly_chinese

    rng = random.Random(seed)
    now = datetime.now(UTC)
    customers = max(1, conversations // 3)
    with tqdm(total=conversations, desc="filling the store", unit="conversation", disable=not progress) as bar:
        for start in range(0, conversations, CHUNK):
            rows = {"conversations": [], "messages": [], "handoffs": [], "feedback": []}
            answers = []
            for _ in range(min(CHUNK, conversations - start)):
                cid, created = new_id(), now - timedelta(seconds=rng.uniform(60, 365 * 86400))
                answered = created + timedelta(seconds=rng.uniform(1, 8))
                question = rng.choice(questions)
                fate = rng.random()
                closed = created + timedelta(minutes=rng.uniform(1, 30)) if fate < 0.6 else None
                rows["conversations"].append({
                    "id": cid, "customer_id": f"c{rng.randrange(customers)}", "channel": rng.choice(
                        ("widget", "widget", "api")), "status": "closed" if closed else "bot" if fate > 0.75 else
                    "human", "created_at": created, "updated_at": closed or created, "closed_at": closed,
                    "csat": rng.choice((3, 4, 5, 5, 2)) if closed and rng.random() < 0.3 else None, "meta": {},
                    "language": "zh" if mostly_chinese(question) else "en", "first_user_at": created,
                    "first_answer_at": answered})
                mood = rng.choice(("positive", "neutral", "neutral", "negative"))
                unknown = rng.random() < 0.1
                rows["messages"] += [
                    _message(cid, "user", question, created, sentiment_label=mood),
                    _message(cid, "assistant", "I don't know." if unknown else "Here is how it works [1].",
                             answered, meta={"reason": "no_relevant_source"} if unknown else {})]
                answers.append((cid, answered, rng.random() < 0.03))
                if 0.6 <= fate < 0.75:
                    requested = answered + timedelta(seconds=30)
                    rows["handoffs"].append({"conversation_id": cid, "reason": rng.choice(REASONS),
                                             "requested_at": requested, "agent": "ana",
                                             "accepted_at": requested + timedelta(minutes=rng.uniform(1, 10))})
                    rows["messages"].append(_message(cid, "agent", "Let me sort this out for you.",
                                                     requested + timedelta(minutes=11), meta={"agent": "ana"}))
            with store.session() as session, session.begin():
                session.execute(Conversation.__table__.insert(), rows["conversations"])
                session.execute(Message.__table__.insert(), rows["messages"])
                if rows["handoffs"]:
                    session.execute(Handoff.__table__.insert(), rows["handoffs"])
                down = [cid for cid, _, thumbs_down in answers if thumbs_down]
                if down:
                    ids = dict(session.execute(Message.__table__.select().with_only_columns(
                        Message.conversation_id, Message.id).where(Message.conversation_id.in_(down),
                                                                   Message.role == "assistant")).all())
                    session.execute(Feedback.__table__.insert(), [
                        {"message_id": ids[cid], "rating": -1, "created_at": now} for cid in down])
            bar.update(len(rows["conversations"]))


def assign_all(store, encoder: str, progress: bool = True) -> None:
    """Find topics in the last 90 days (as the view's button does) and assign every other conversation."""
    from assistant.insights.stored_topics import ASSIGN_BATCH, assign_new, find_topics
    from assistant.store.schema import ConversationTopic

    now = datetime.now(UTC)
    find_topics(store, encoder, now - timedelta(days=90), now)
    with store.session() as session:
        left = _stored(store) - session.query(ConversationTopic).count()
    with tqdm(total=left, desc="assigning topics", unit="conversation", disable=not progress) as bar:
        while assigned := assign_new(store, encoder, ASSIGN_BATCH * 4):
            bar.update(assigned)


def _stored(store) -> int:
    from assistant.store.schema import Conversation

    with store.session() as session:
        return session.query(Conversation).count()


def _timed(run, repeats: int) -> dict:
    run()  # warm: imports, caches, the database's pages
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    return {"median_s": round(statistics.median(seconds), 3), "max_s": round(max(seconds), 3)}


def sections(store, encoder: str, days: int) -> dict:
    """What the view computes on first load for a period of `days`, as callables."""
    from assistant.insights.gaps import knowledge_gaps
    from assistant.insights.outcomes import last_days, outcomes
    from assistant.insights.stored_topics import topic_conversations, topic_outcomes

    period = last_days(days)
    top = next((t["id"] for t in topic_outcomes(store, period)["topics"] if t["id"] >= 0), -1)
    return {"outcomes": lambda: outcomes(store, period),
            "topics": lambda: topic_outcomes(store, period),
            "topic drill-down": lambda: topic_conversations(store, period, top),
            "knowledge gaps": lambda: knowledge_gaps(store, encoder, *period.window),
            "curated answers": lambda: store.curated.listed()}


def run_benchmark(args: argparse.Namespace) -> int:
    from assistant.cli.options import flag_values, load_from_args
    from assistant.store import Store

    settings = load_from_args(args).settings
    encoder = settings.retrieval.encoder
    database = Path(args.store).expanduser() if args.store else None
    default = f"sqlite:///{database or Path(settings.home_dir) / 'bench-insights.db'}"
    url = flag_values(args).get("database_url") or default
    store = Store(url)
    progress = not args.json
    if (stored := _stored(store)) < args.conversations:
        fill(store, args.conversations - stored, read_questions(Path(args.questions)), progress=progress)
        assign_all(store, encoder, progress)
    elif not store.topics.current():
        assign_all(store, encoder, progress)
    stored = _stored(store)
    result = {"store": store.engine.url.render_as_string(hide_password=True), "conversations": stored,
              "topics": len(store.topics.current()), "repeats": args.repeats, "periods": {}}
    for days in args.days:
        timed = {name: _timed(run, args.repeats) for name, run in sections(store, encoder, days).items()}
        page = sum(t["median_s"] for name, t in timed.items() if name != "topic drill-down")
        result["periods"][f"{days} days"] = {"sections": timed, "page_s": round(page, 3)}
    store.close()
    lines = [f"# Insights on {stored} conversations ({result['store']})", "",
             "| period | outcomes | topics | drill-down | gaps | curated | page (all but drill-down) |",
             "|---|---|---|---|---|---|---|"]
    for period, part in result["periods"].items():
        s = part["sections"]
        lines.append(f"| {period} | " + " | ".join(f"{s[k]['median_s']:.2f} s" for k in s) + f" | "
                     f"**{part['page_s']:.2f} s** |")
    markdown = "\n".join(lines) + "\n"
    path = write_results(args.out, "insights", result, markdown)
    if args.json:
        import json

        print(json.dumps(result))
    else:
        print(markdown + f"\nwritten: {path}")
    return 0
