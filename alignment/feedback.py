"""Feedback collected by the product -> training data, with no manual step.

- An operator's correction of a bot answer: pair (chosen = the correction, rejected = the bot's answer); the
  correction of an empty or broken answer is an SFT target.
- A thumbs-down bot answer that a human agent replaced after a handoff: pair (chosen = the agent's reply).
- Human agents' replies in live chats: SFT targets, like transcripts.
- A rating with no better answer: one KTO row (label = thumbs up).
- A recommendation answer where the customer opened one item and dismissed another: pair on the pick itself
  (the pick's prompt; chosen = the opened items, rejected = the dismissed ones), so the model learns what to pick.
Shared history stays in the prompt: every example is built from the conversation up to the rated answer.
"""

from __future__ import annotations

from alignment.examples import Examples, KTOExample, PreferencePair, PromptBuilder, from_transcripts, redact_messages
from alignment.transcripts import Transcript
from assistant.redaction import Redactor


def _as_transcript(conversation: dict) -> tuple[Transcript, list[tuple[list[dict], dict, bool]]]:
    """The conversation rewritten so corrections and handoff replacements follow the answer they replace,
    plus (history, answer, liked) for ratings that have no better answer."""
    messages: list[dict] = []
    lone_ratings = []
    stored = conversation["messages"]
    feedback = conversation["feedback"]
    replaced: set[int] = set()  # agent messages already used as a replacement
    for index, message in enumerate(stored):
        if message["id"] in replaced:
            continue
        messages.append({"role": message["role"], "content": message["content"]})
        verdict = feedback.get(message["id"]) if message["role"] == "assistant" else None
        if verdict is None:
            continue
        if verdict["corrected_text"]:
            if not message["content"].strip() or message.get("status", "complete") != "complete":
                # an empty or broken answer: the correction is a plain target, not preferred over a failure
                messages.pop()
            messages.append({"role": "agent", "content": verdict["corrected_text"]})
            continue
        if verdict["rating"] == -1 and conversation["handoff"]:
            agent = next((m for m in stored[index + 1:] if m["role"] in ("agent", "assistant")), None)
            if agent is not None and agent["role"] == "agent":
                messages.append({"role": "agent", "content": agent["content"]})
                replaced.add(agent["id"])
                continue
        if verdict["rating"] in (1, -1):
            lone_ratings.append((list(messages[:-1]), messages[-1], verdict["rating"] == 1))
    return Transcript(f"store:{conversation['id']}", messages), lone_ratings


def from_store(conversations: list[dict], builder: PromptBuilder, redactor: Redactor) -> Examples:
    """Pairs, SFT examples and KTO rows from stored conversations (`Store.conversations_for_alignment`)."""
    transcripts, ratings = [], []
    for conversation in conversations:
        transcript, lone = _as_transcript(conversation)
        if any(m["role"] in ("assistant", "agent") for m in transcript.messages):
            transcripts.append(transcript)
        ratings.extend((transcript.id, *item) for item in lone)
    examples = from_transcripts(transcripts, builder, redactor, bot_replies=False)  # its own outputs
    for origin, history, answer, liked in ratings:
        history = redact_messages(history, redactor)
        if not history or history[-1]["role"] != "user":
            continue
        prompt = builder.prompt(history, builder.sources(history))
        completion = [{"role": "assistant", "content": redactor.redact(answer["content"])}]
        examples.kto.append(KTOExample(prompt, completion, liked, origin))
    return examples


def recommendation_pairs(store, redactor: Redactor) -> list[PreferencePair]:
    """Preference pairs from what customers did with recommendations (`store.interactions.outcomes`)."""
    from assistant.recommend.service import pick_answer, pick_messages

    pairs = []
    for conversation_id, message_id, clicked, dismissed in store.interactions.outcomes():
        messages = store.conversations.messages(conversation_id)
        at = next((i for i, m in enumerate(messages) if m.id == message_id), None)
        if at is None or not messages[at].metadata.get("candidates"):
            continue
        asked = next((m.content for m in reversed(messages[:at]) if m.role == "user"), "")
        items = store.catalog.get(messages[at].metadata["candidates"])
        shortlist = [items[i] for i in messages[at].metadata["candidates"] if i in items]
        if not asked or not shortlist:
            continue
        most = int(messages[at].metadata.get("most") or 3)
        prompt = [{"role": m.role, "content": redactor.redact(m.content)}
                  for m in pick_messages(asked, shortlist, most)]
        pairs.append(PreferencePair(prompt, [{"role": "assistant", "content": pick_answer(clicked[:most])}],
                                    [{"role": "assistant", "content": pick_answer(dismissed[:most])}],
                                    f"store:{conversation_id}:{message_id}"))
    return pairs
