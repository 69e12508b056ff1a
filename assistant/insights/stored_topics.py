"""The topics of a deployment's conversations, kept in the store (`store.topics`): found in a period's first customer
questions (`topics.py`), new conversations assigned as they arrive, and the outcomes of each topic.

- Finding topics again retires the current ones; an operator's name goes to the new topic nearest the named one
  (cosine similarity of their centres at least the old topic's joining similarity), and so do merges.
- A conversation's topic is that of its first customer question (-1 in the numbers: no topic was close enough;
  not yet assigned conversations are counted under no topic until the assigner reaches them).
- Per topic, with the outcome definitions of `outcomes.py`: conversations, trend (the second half of the period
  against the first), resolved by the assistant alone, handed off, CSAT.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

from assistant.insights.outcomes import OutcomeFilter, classified
from assistant.insights.topics import nearest, split_by_encoder, topics_by_encoder
from assistant.store import TopicError
from assistant.store.records import TopicRecord
from assistant.store.schema import Conversation
from assistant.store.topics import FoundTopic, TopicCentre, first_question_texts

log = logging.getLogger(__name__)

FIND_LIMIT = 20_000  # the most recent questions grouped when topics are found; the others are assigned after
ASSIGN_BATCH = 512
NO_TOPIC = -1


def _root(index: int, merged_into: Sequence[int | None]) -> int:
    while merged_into[index] is not None:
        index = merged_into[index]
    return index


def _carry_over(found: list[FoundTopic], old: list[TopicCentre]) -> list[FoundTopic]:
    """Names and merges of the current topics, given to the new topic nearest each."""
    heir: dict[int, int] = {}
    for o in old:
        same = [i for i, t in enumerate(found) if t.encoder == o.topic.encoder]
        if not same:
            continue
        similarity = np.array([float(found[i].centre @ o.centre) for i in same])
        if similarity.max() >= o.min_similarity:
            heir[o.topic.id] = same[int(similarity.argmax())]
    names: dict[int, str] = {}
    merged: list[int | None] = [None] * len(found)
    for o in old:
        if o.topic.id not in heir:
            continue
        mine = heir[o.topic.id]
        if o.topic.name:
            names.setdefault(mine, o.topic.name)
        target = heir.get(o.topic.merged_into) if o.topic.merged_into is not None else None
        if target is not None and target != mine and _root(target, merged) != mine:
            merged[mine] = target
    return [FoundTopic(t.label, t.encoder, t.centre, t.min_similarity, t.size, t.examples, names.get(i),
                       merged[i]) for i, t in enumerate(found)]


def period_questions(store, since, until, limit: int = FIND_LIMIT) -> list[tuple[str, str]]:
    """(conversation id, first customer question) of the most recent conversations started in the period."""
    query = (first_question_texts().where(Conversation.created_at >= since, Conversation.created_at < until)
             .order_by(Conversation.created_at.desc()).limit(limit))
    with store.session() as session:
        return [(c, text) for c, text in session.execute(query) if text and text.strip()]


def find_topics(store, encoder_name: str, since, until) -> list[TopicRecord]:
    """Group the period's questions into topics and store them (replacing the current ones)."""
    questions = period_questions(store, since, until)
    if not questions:
        raise TopicError(f"no customer questions in the period {since:%Y-%m-%d} to {until:%Y-%m-%d}: nothing to "
                         "group into topics")
    started = time.perf_counter()
    texts = [text for _, text in questions]
    found: list[FoundTopic] = []
    members: list[tuple[str, int]] = []
    for part in topics_by_encoder(texts, encoder_name):
        offset = len(found)
        found += [FoundTopic(t.label, part.encoder.name, part.model.centre_rows[t.id], part.model.min_similarity,
                             t.size, t.examples) for t in part.model.topics]
        members += [(questions[m][0], offset + int(g)) for m, g in zip(part.members, part.groups, strict=True)]
    found = _carry_over(found, store.topics.centres())
    merged = [t.merged_into for t in found]
    stored = store.topics.replace(found, [(c, _root(i, merged), None) for c, i in members])
    log.info("topics: %d found in %d questions in %.1f s", len(stored), len(texts), time.perf_counter() - started)
    return stored


def nearest_topics(centres: list[TopicCentre], texts: Sequence[str], encoder_name: str
                   ) -> list[tuple[int | None, float | None]]:
    """The topic each text joins (its id, merges followed; None when no topic is close enough) and the similarity,
    each text with the encoder of its language (`split_by_encoder`)."""
    index = {c.topic.id: i for i, c in enumerate(centres)}
    merged = [index.get(c.topic.merged_into) for c in centres]
    found: list[tuple[int | None, float | None]] = [(None, None)] * len(texts)
    for encoder, part in split_by_encoder(texts, encoder_name):
        usable = [i for i, c in enumerate(centres) if c.topic.encoder == encoder.name]
        if not usable:
            continue
        best, similarity = nearest(np.stack([centres[i].centre for i in usable]),
                                   encoder.encode([texts[i] for i in part], kind="query"))
        for i, b, s in zip(part, best, similarity, strict=True):
            topic = usable[int(b)]
            close = s >= centres[topic].min_similarity
            found[i] = (centres[_root(topic, merged)].topic.id if close else None, float(s))
    return found


def assign_new(store, encoder_name: str, limit: int = ASSIGN_BATCH) -> int:
    """Assign the topic of up to `limit` conversations that have none yet; how many were assigned."""
    centres = store.topics.centres()
    if not centres:
        return 0
    waiting = store.topics.unassigned(limit)
    if not waiting:
        return 0
    found = nearest_topics(centres, [text for _, text in waiting], encoder_name)
    store.topics.assign([(c, topic, similarity) for (c, _), (topic, similarity) in zip(waiting, found, strict=True)])
    return len(waiting)


def topic_outcomes(store, f: OutcomeFilter) -> dict:
    """Per topic of the period's conversations: volume, trend, outcomes and CSAT (module docstring)."""
    f.check()
    with store.session() as session:
        frame, _ = classified(session, f)
    topics = {t.id: t for t in store.topics.current()}
    if frame.empty:
        return {"topics": [], "conversations": 0, "unassigned": 0,
                "note": "no conversations started in this period (with these filters)"}
    frame["topic"] = frame["topic_id"].fillna(NO_TOPIC).astype(int)
    half = pd.Timestamp(f.since + (f.until - f.since) / 2)
    frame["later"] = frame["created_at"] >= half
    rows = []
    for topic_id, part in frame.groupby("topic"):
        earlier, later = int((~part["later"]).sum()), int(part["later"].sum())
        topic = topics.get(int(topic_id))
        rated = part["csat"].dropna()
        rows.append({"id": int(topic_id), "topic": topic.title if topic else "no topic",
                     "label": topic.label if topic else None, "conversations": len(part),
                     "earlier": earlier, "later": later,
                     "trend": round(later / earlier - 1, 3) if earlier else None,
                     "resolved_alone": int(part["resolved_alone"].sum()),
                     "resolution_rate": round(float(part["resolved_alone"].mean()), 4),
                     "handed_off": int(part["handed_off"].sum()),
                     "csat": round(float(rated.mean()), 2) if len(rated) else None, "rated": len(rated),
                     "examples": list(topic.examples) if topic else []})
    rows.sort(key=lambda r: (r["id"] == NO_TOPIC, -r["conversations"]))
    return {"topics": rows, "conversations": len(frame), "unassigned": int(frame["topic_id"].isna().sum()),
            "note": None if topics else "no topics yet: find them (Insights view or POST /api/insights/topics/find)"}


def topic_conversations(store, f: OutcomeFilter, topic_id: int, limit: int = 200) -> list[dict]:
    """The period's conversations of one topic (NO_TOPIC: of none), newest first, with their outcome."""
    f.check()
    with store.session() as session:
        frame, first_handoff = classified(session, f)
        chosen = frame[frame["topic_id"].fillna(NO_TOPIC).astype(int) == topic_id].sort_values(
            "created_at", ascending=False).head(limit)
        asked = dict(session.execute(first_question_texts(chosen["id"].tolist(), 300)).all()) if len(chosen) else {}
    return [{"conversation": row.id, "started": row.created_at.strftime("%Y-%m-%d %H:%M"),
             "outcome": "handed off" if row.handed_off else "resolved alone" if row.resolved_alone else "open",
             "reason": str(first_handoff["reason"].get(row.id, "")) if row.handed_off else "",
             "csat": None if pd.isna(row.csat) else int(row.csat), "question": asked.get(row.id, "")}
            for row in chosen.itertuples()]


def topics_csv(result: dict) -> str:
    """The per-topic numbers as CSV (one row per topic)."""
    columns = ["id", "topic", "label", "conversations", "earlier", "later", "trend", "resolved_alone",
               "resolution_rate", "handed_off", "csat", "rated"]
    return pd.DataFrame(result["topics"], columns=columns).to_csv(index=False)
