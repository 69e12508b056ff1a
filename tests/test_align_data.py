"""Alignment data: transcripts and store feedback -> SFT examples, preference pairs and KTO rows, built with the
serving prompt; redaction, de-duplication, held-out split; answer metrics."""

from __future__ import annotations

import json

import pytest

from alignment.evaluation import EvalCase, score
from alignment.examples import PromptBuilder, deduplicate, from_preferences, from_transcripts, split_heldout
from alignment.feedback import from_store
from alignment.metrics import rouge_l, token_f1
from alignment.transcripts import Preference, Transcript
from assistant.grounding import Source
from assistant.prompt import GROUNDING_RULES, build_chat_messages
from assistant.redaction import Redactor
from assistant.store import MessageNotFoundError, Store

SYSTEM = "You are the support assistant of Lumen."
REFUND = Source(1, "Refunds", "returns/refunds.md", None, None,
                "Refunds reach your card within five business days after we receive the parcel.", 0.9)
SHIPPING = Source(2, "Shipping", "shipping/times.md", None, None, "Parcels ship within two business days.", 0.8)


def retrieve(question: str):
    return [REFUND, SHIPPING] if "refund" in question.lower() else [SHIPPING]


def builder(**kwargs) -> PromptBuilder:
    return PromptBuilder(SYSTEM, retrieve, **kwargs)


def test_sft_prompt_is_exactly_the_serving_prompt_with_history_and_passages():
    transcript = Transcript("c1", [
        {"role": "user", "content": "Hi, where is my parcel?"},
        {"role": "agent", "content": "It ships within two business days."},
        {"role": "user", "content": "And how long does a refund take?"},
        {"role": "agent", "content": "Refunds reach your card within five business days after we receive the parcel."},
    ])
    examples = from_transcripts([transcript], builder(), Redactor())
    assert len(examples.sft) == 2
    second = examples.sft[1]
    history = transcript.messages[:3]
    serving = [{"role": m.role, "content": m.content} for m in build_chat_messages(SYSTEM, history, [REFUND, SHIPPING])]
    assert second.prompt == serving  # same builder as serving: system + rules + passages + shared history
    assert GROUNDING_RULES in second.prompt[0]["content"] and "five business days" in second.prompt[0]["content"]
    assert [m["role"] for m in second.prompt] == ["system", "user", "assistant", "user"]  # agent -> assistant
    # the reply restates source 1, so it is taught to cite it as serving expects
    assert second.completion == [{"role": "assistant", "content": transcript.messages[3]["content"] + " [1]"}]
    assert second.source_ids == ("returns/refunds.md", "shipping/times.md")


def test_corrected_bot_reply_becomes_a_pair_and_the_correction_a_target():
    transcript = Transcript("c2", [
        {"role": "user", "content": "Can I return sale items?"},
        {"role": "assistant", "content": "No, sale items can never be returned."},
        {"role": "agent", "content": "Yes: sale items can be returned within 30 days like any other item."},
    ])
    examples = from_transcripts([transcript], builder(), Redactor())
    [target] = examples.sft  # the agent's answer, learnt for the same prompt; the wrong one never is
    assert target.reference.startswith("Yes: sale items")
    assert target.prompt[-1] == {"role": "user", "content": "Can I return sale items?"}
    [pair] = examples.pairs
    assert pair.prompt[-1] == {"role": "user", "content": "Can I return sale items?"}
    assert pair.chosen[0]["content"].startswith("Yes: sale items")
    assert pair.rejected == [{"role": "assistant", "content": "No, sale items can never be returned."}]


def test_pii_is_redacted_in_prompts_targets_and_pairs_with_counts():
    transcript = Transcript("c3", [
        {"role": "user", "content": "I'm anna.berg@example.com, call me on +49 151 2345 6789"},
        {"role": "agent", "content": "Thanks, we wrote to anna.berg@example.com. Our line is +49 40 0000 1234."},
    ])
    redactor = Redactor(keep=("+49 40 0000 1234",))
    examples = from_transcripts([transcript], builder(), redactor)
    text = json.dumps([e.row() for e in examples.sft])
    assert "anna.berg" not in text and "2345 6789" not in text
    assert "[EMAIL]" in text and "[PHONE]" in text
    assert "+49 40 0000 1234" in text  # the company's own line is kept
    assert redactor.counts == {"email": 2, "phone": 1}


def test_preference_without_system_prompt_gets_the_serving_one():
    pref = Preference([{"role": "user", "content": "refund time?"}], [{"role": "assistant", "content": "5 days"}],
                      [{"role": "assistant", "content": "a month"}], "p.jsonl:1")
    [pair] = from_preferences([pref], builder(), Redactor())
    assert pair.prompt[0]["role"] == "system" and SYSTEM in pair.prompt[0]["content"]
    assert pair.origin == "p.jsonl:1"


def test_duplicates_dropped_and_heldout_split_keeps_conversations_whole():
    transcripts = [Transcript(f"c{i}", [{"role": "user", "content": f"question {i % 10}"},
                                        {"role": "agent", "content": f"answer {i % 10}"},
                                        {"role": "user", "content": f"follow-up {i}"},
                                        {"role": "agent", "content": f"more {i}"}]) for i in range(20)]
    examples = deduplicate(from_transcripts(transcripts, builder(), Redactor()))
    assert examples.duplicates == 10  # the first turns of c10..c19 repeat c0..c9
    train, heldout = split_heldout(examples.sft, 0.2, 100, seed=1)
    assert heldout and train
    assert not {e.group for e in train} & {e.group for e in heldout}
    assert split_heldout(examples.sft, 0.2, 100, seed=1)[1] == heldout  # stable across runs


def test_store_feedback_becomes_pairs_and_kto_rows(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    # 1. an operator corrects a bot answer in a multi-turn conversation
    c1 = store.conversations.create_conversation().id
    store.conversations.add_message(c1, "user", "Hi, do you ship to Norway?")
    store.conversations.add_message(c1, "assistant", "Yes, we ship to Norway.")
    store.conversations.add_message(c1, "user", "How long does a refund take?")
    wrong = store.conversations.add_message(c1, "assistant", "Refunds take two months.")
    store.conversations.add_feedback(wrong, rating=-1,
                                     corrected_text="Refunds reach your card within five business days.")
    # 2. thumbs-down, the customer asks for a human, an agent answers
    c2 = store.conversations.create_conversation().id
    store.conversations.add_message(c2, "user", "My parcel is late")
    bad = store.conversations.add_message(c2, "assistant", "I cannot help with that.")
    store.conversations.add_feedback(bad, rating=-1, comment="useless")
    store.conversations.add_message(c2, "user", "I want a human")
    store.handoffs.request_human(c2, "customer_request")
    store.conversations.add_message(c2, "agent",
                                    "Sorry! Your parcel left our warehouse yesterday; tracking is in your email.")
    # 3. a lone thumbs-up
    c3 = store.conversations.create_conversation().id
    store.conversations.add_message(c3, "user", "When do parcels ship?")
    good = store.conversations.add_message(c3, "assistant", "Within two business days.")
    store.conversations.add_feedback(good, rating=1)
    with pytest.raises(MessageNotFoundError):
        store.conversations.add_feedback(999, rating=1)

    examples = from_store(store.conversations.conversations_for_alignment(), builder(), Redactor())
    pairs = {p.rejected[0]["content"]: p for p in examples.pairs}
    correction = pairs["Refunds take two months."]
    assert correction.chosen[0]["content"].startswith("Refunds reach your card within five business days")
    # the shared history stays in the prompt
    assert [m["content"] for m in correction.prompt[1:]] == [
        "Hi, do you ship to Norway?", "Yes, we ship to Norway.", "How long does a refund take?"]
    handoff = pairs["I cannot help with that."]
    assert handoff.chosen[0]["content"].startswith("Sorry! Your parcel left")
    assert handoff.prompt[-1]["content"] == "My parcel is late"
    [kto] = examples.kto
    assert kto.label is True and kto.completion[0]["content"] == "Within two business days."
    # the bot's own answers are never SFT targets
    assert not any(e.reference == "Yes, we ship to Norway." for e in examples.sft)
    # a later run only sees what is new
    cursor = store.conversations.alignment_cursor()
    assert store.conversations.conversations_for_alignment(cursor) == []
    store.conversations.add_feedback(good, rating=-1)
    assert [c["id"] for c in store.conversations.conversations_for_alignment(cursor)] == [c3]
    store.close()


def test_answer_metrics():
    assert token_f1("Refunds take five days [1]", "refunds take five days") == 1.0
    assert token_f1("the cat", "a dog") == 0.0
    assert 0 < token_f1("refunds take five business days", "refunds take five days") < 1
    assert rouge_l("w x y z", "w y z") == pytest.approx(2 * (3 / 4) * 1 / (3 / 4 + 1))  # LCS 3 of 4 and 3
    assert token_f1("退款五天到账", "退款五天内到账") > 0.9  # Chinese compared per character
    cases = [EvalCase("q1", "refunds take five days", ("d1",), [], ("d2", "d1")),
             EvalCase("q2", "parcels ship in two days", ("d3",), None, (), canned="I don't know")]
    metrics = score(cases, ["Refunds take five days [2]", "I don't know"])
    assert metrics["gold_citation_rate"] == 0.5  # [2] is d1, the gold document of q1
    assert metrics["dont_know_rate"] == 0.5
    assert metrics["gold_retrieved_rate"] == 0.5


def test_replay_rows_are_mixed_in_by_fraction():
    from alignment.examples import SFTExample, mix_replay

    domain = [SFTExample([{"role": "user", "content": f"q{i}"}], [{"role": "assistant", "content": "a"}], f"d{i}")
              for i in range(10)]
    general = [SFTExample([{"role": "user", "content": f"g{i}"}], [{"role": "assistant", "content": "b"}], f"g{i}")
               for i in range(50)]
    mixed = mix_replay(domain, general, 0.3, seed=0)
    assert mixed[:10] == domain and len(mixed) == 13 and all(e in general for e in mixed[10:])
    assert mix_replay(domain, general, 0.0, seed=0) == domain


def test_correction_of_an_empty_or_broken_answer_is_a_plain_target(tmp_path):
    from assistant.store import Store

    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    conversation = store.conversations.create_conversation().id
    store.conversations.add_message(conversation, "user", "How long does a refund take?")
    broken = store.conversations.add_message(conversation, "assistant", "Refunds ta", "partial")
    store.conversations.add_feedback(broken, corrected_text="Refunds reach your card within five business days.",
                                     author="li")
    examples = from_store(store.conversations.conversations_for_alignment(), builder(), Redactor())
    assert examples.pairs == []  # nothing to prefer it over
    [target] = [e for e in examples.sft if e.group == f"store:{conversation}"]
    assert target.completion[0]["content"].startswith("Refunds reach your card within five business days.")
    assert target.prompt[-1]["content"] == "How long does a refund take?"
    store.close()
