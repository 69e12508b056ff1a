"""Knowledge gaps: the customer questions the assistant could not answer, grouped, with what the human agents
answered instead, a draft article written from those answers, and its publication into the knowledge base (ingested
at once, so the next customer who asks gets a cited answer).

A question failed when the answer to it said "I don't know" (no relevant source), got a thumbs-down, was corrected
by an operator, or when the conversation went to a human after it (the last customer message before the handoff).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from assistant.errors import AssistantError
from assistant.store.records import utc
from assistant.store.schema import Feedback, Handoff, Message

WHY = ("no_source", "thumbs_down", "corrected", "handoff")
GAP_QUESTIONS = 5000  # the most recent failed questions grouped into gaps (a year of a large deployment is more)


class GapError(AssistantError, ValueError):
    """An article that cannot be published (empty, no title); the message says what to fix."""


@dataclass(frozen=True)
class FailedQuestion:
    conversation_id: str
    message_id: int
    text: str
    why: str  # one of WHY
    human_reply: str | None  # what a human answered instead: the agent's next reply, or the operator's correction
    at: datetime


@dataclass
class KnowledgeGap:
    label: str
    questions: list[FailedQuestion] = field(default_factory=list)

    @property
    def human_replies(self) -> list[str]:
        return list(dict.fromkeys(q.human_reply for q in self.questions if q.human_reply))


def failed_questions(store, since: datetime, until: datetime) -> list[FailedQuestion]:
    """Every customer question of the period the assistant failed (module docstring), oldest first, once each."""
    with store.session() as session:
        no_source = {(cid, mid) for mid, cid in session.execute(select(Message.id, Message.conversation_id).where(
            Message.role == "assistant", Message.created_at >= since, Message.created_at < until,
            Message.meta["reason"].as_string() == "no_relevant_source")).all()}
        rated = session.execute(
            select(Message.id, Message.conversation_id, Feedback.rating, Feedback.corrected_text)
            .join(Feedback, Feedback.message_id == Message.id)
            .where(Message.created_at >= since, Message.created_at < until)).all()
        handoffs = session.execute(select(Handoff.conversation_id, Handoff.requested_at).where(
            Handoff.requested_at >= since, Handoff.requested_at < until)).all()
        wanted = {cid for cid, _ in no_source} | {cid for _, cid, _, _ in rated} | {cid for cid, _ in handoffs}
        rows = session.execute(
            select(Message.id, Message.conversation_id, Message.role, Message.content, Message.created_at)
            .where(Message.conversation_id.in_(wanted)).order_by(Message.id)).all() if wanted else []
    by_conversation: dict[str, list] = defaultdict(list)
    for row in rows:
        by_conversation[row.conversation_id].append(row)

    def question_before(cid: str, message_id: int | None = None, when: datetime | None = None):
        before = [m for m in by_conversation[cid] if m.role == "user"
                  and (message_id is None or m.id < message_id) and (when is None or utc(m.created_at) <= when)]
        return before[-1] if before else None

    def agent_after(cid: str, message_id: int) -> str | None:
        return next((m.content for m in by_conversation[cid] if m.role == "agent" and m.id > message_id), None)

    found: dict[int, FailedQuestion] = {}

    def add(question, why: str, reply: str | None = None) -> None:
        if question is None or question.id in found:
            return
        found[question.id] = FailedQuestion(question.conversation_id, question.id, question.content, why,
                                            reply or agent_after(question.conversation_id, question.id),
                                            utc(question.created_at))

    for cid, mid in sorted(no_source, key=lambda pair: pair[1]):
        add(question_before(cid, mid), "no_source")
    for mid, cid, rating, corrected in rated:
        if corrected:
            add(question_before(cid, mid), "corrected", corrected)
        elif rating is not None and rating < 0:
            add(question_before(cid, mid), "thumbs_down")
    for cid, requested in handoffs:
        add(question_before(cid, when=utc(requested)), "handoff")
    return sorted(found.values(), key=lambda q: q.message_id)


def knowledge_gaps(store, encoder_name: str, since: datetime, until: datetime) -> list[KnowledgeGap]:
    """The failed questions (the most recent GAP_QUESTIONS) grouped, the largest group first: by the stored topics
    when there are some (a conversation's first question by its assigned topic, the others joining the nearest
    topic), and the questions no topic takes (or all, without stored topics) grouped as topics are
    (`assistant.insights.topics`)."""
    from assistant.insights.stored_topics import nearest_topics
    from assistant.insights.topics import group_questions

    failed = failed_questions(store, since, until)[-GAP_QUESTIONS:]
    if not failed:
        return []
    gaps: dict[object, KnowledgeGap] = {}
    centres = store.topics.centres()
    left = failed
    if centres:
        titles = {c.topic.id: c.topic.title for c in centres}
        first = store.topics.first_question_topics(sorted({q.conversation_id for q in failed}))
        placed = {q.message_id: first[q.conversation_id][1] for q in failed
                  if q.conversation_id in first and first[q.conversation_id][0] == q.message_id}
        others = [q for q in failed if q.message_id not in placed]
        for q, (topic, _) in zip(others, nearest_topics(centres, [q.text for q in others], encoder_name),
                                 strict=True):
            placed[q.message_id] = topic
        for q in failed:
            topic = placed[q.message_id]
            if topic is not None:
                gaps.setdefault(topic, KnowledgeGap(titles.get(topic, f"topic {topic}"))).questions.append(q)
        left = [q for q in failed if placed[q.message_id] is None]
    if left:
        groups, labels = group_questions([q.text for q in left], encoder_name)
        for question, group in zip(left, groups, strict=True):
            gaps.setdefault(("new", int(group)), KnowledgeGap(labels[group])).questions.append(question)
    return sorted(gaps.values(), key=lambda g: -len(g.questions))


DRAFT_INSTRUCTIONS = (
    "You write help-center articles for {company}. Write a short article (a title line starting with '# ', then "
    "two to five sentences) that answers the customer questions below, using only the facts in the support agents' "
    "replies. Do not add facts that are not in the replies.")


def draft_messages(company: str, gap: KnowledgeGap) -> list[dict]:
    """The prompt of a draft article: the questions and the human replies to them."""
    questions = "\n".join(f"- {q.text}" for q in gap.questions[:8])
    replies = "\n".join(f"- {r}" for r in gap.human_replies[:8]) or "- (no agent replied yet)"
    return [{"role": "system", "content": DRAFT_INSTRUCTIONS.format(company=company)},
            {"role": "user", "content": f"Customer questions:\n{questions}\n\nAgents' replies:\n{replies}"}]


def extractive_draft(gap: KnowledgeGap) -> str:
    """A draft without the model: the most asked question as the title, the human replies as the body."""
    title = gap.questions[0].text.rstrip("?？ ") if gap.questions else gap.label
    return f"# {title}\n\n" + "\n\n".join(gap.human_replies)


def publish_article(folder: Path, title: str, text: str) -> Path:
    """Write the article as a Markdown document of the knowledge base's `published` folder (a new file per title;
    the same title replaces its earlier version) and return its path; the caller ingests the folder."""
    title, text = title.strip(), text.strip()
    if not title:
        raise GapError("an article needs a title")
    body = re.sub(r"^#\s+.*\n*", "", text) if text.startswith("# ") else text
    if not body.strip():
        raise GapError("the article is empty: write what customers should know")
    slug = re.sub(r"[^\w]+", "-", title.lower(), flags=re.UNICODE).strip("-")[:80] or "article"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{slug}.md"
    path.write_text(f"# {title}\n\n{body.strip()}\n", encoding="utf-8")
    return path
