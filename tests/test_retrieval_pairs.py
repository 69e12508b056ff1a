"""Training pairs for retrieval from every source a company has (FAQ files, BEIR folders, pair files in the shapes
public paraphrase sets come in), hard negatives that are never a positive, a held-out split by question, and bad
input named by file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alignment.retrieval_pairs import (
    PairError,
    PairSet,
    RetrievalPair,
    beir_pairs,
    faq_pairs,
    file_pairs,
    held_out,
    mine_negatives,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_faq_files_give_question_answer_pairs(tmp_path):
    faq = tmp_path / "faq.jsonl"
    faq.write_text("\n".join(json.dumps(r) for r in [
        {"question": "How long do refunds take?", "answer": "We refund within 5 business days."},
        {"question": "退货运费谁承担？", "answer": "30 天内退货免运费。"}]), encoding="utf-8")
    pairs = faq_pairs(faq)
    assert [(p.question, p.passage) for p in pairs] == [
        ("How long do refunds take?", "We refund within 5 business days."), ("退货运费谁承担？", "30 天内退货免运费。")]
    assert pairs[1].origin == f"{faq}:2"
    faq.write_text(json.dumps({"question": "", "answer": "orphan"}), encoding="utf-8")
    with pytest.raises(PairError, match=r"faq\.jsonl"):
        faq_pairs(faq)


@pytest.mark.skipif(not (DATA / "bank_faq_retrieval_en").is_dir(), reason="../shared/data is missing")
def test_a_beir_folder_gives_its_judged_pairs_and_broken_qrels_are_named(tmp_path):
    pairs = beir_pairs(DATA / "bank_faq_retrieval_en")
    assert len(pairs) == 516 and all(p.label == 1 and p.question and p.passage for p in pairs)
    broken = tmp_path / "beir"
    broken.mkdir()
    (broken / "corpus.jsonl").write_text(json.dumps({"_id": "d1", "text": "Refunds take 5 days."}) + "\n")
    (broken / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "refund time?"}) + "\n")
    (broken / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td404\t1\n")
    with pytest.raises(PairError, match="passage d404 is not in the folder"):
        beir_pairs(broken)


@pytest.mark.parametrize(("name", "content"), [
    ("pairs.csv", "sentence1,sentence2,label\n怎么更改花呗手机号码,花呗怎么换手机号,1\n花呗冻结,借呗额度,0\n"),
    ("pairs.tsv", "1\t\ufeff怎么更改花呗手机号码\t花呗怎么换手机号\t1\n2\t花呗冻结\t借呗额度\t0\n"),  # id, a, b, label
    ("pairs.json", '{"sentence1": "怎么更改花呗手机号码", "sentence2": "花呗怎么换手机号", "label": "1"}\n'
                   '{"sentence1": "花呗冻结", "sentence2": "借呗额度", "label": "0"}\n'),
])
def test_pair_files_in_the_shapes_paraphrase_sets_come_in(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    pairs = file_pairs(path)
    assert [(p.question, p.passage, p.label) for p in pairs] == [
        ("怎么更改花呗手机号码", "花呗怎么换手机号", 1), ("花呗冻结", "借呗额度", 0)]
    collected = PairSet()
    collected.add(pairs + pairs)  # the same pairs twice
    assert len(collected.positives) == 1 and collected.dropped == {"duplicate": 1}
    assert collected.negatives == {"花呗冻结": ["借呗额度", "借呗额度"]}
    # the index's best matches for a paraphrase are often paraphrases too: none is mined as a negative
    assert all(p.paraphrase for p in pairs)
    mine_negatives(collected, lambda questions, depth: [["花呗如何更换手机号"] for _ in questions])
    assert "怎么更改花呗手机号码" not in collected.negatives


@pytest.mark.parametrize(("content", "says"), [
    ("question,passage\nhow long?,\n", r"pairs\.csv:2: the passage is empty"),
    ("question,passage,label\nhow long?,5 days,maybe\n", r"pairs\.csv:2: label must be 0 or 1"),
    ("a,b,c,d,e\n", r"pairs\.csv:1: expected two texts and an optional 0/1 label, found 5 columns"),
])
def test_bad_pair_files_name_the_line(tmp_path, content, says):
    path = tmp_path / "pairs.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(PairError, match=says):
        file_pairs(path)


def test_mined_negatives_are_hard_and_never_a_positive():
    collected = PairSet()
    collected.add([RetrievalPair("refund time?", "Refunds take 5 business days.", "t:1"),
                   RetrievalPair("refund time?", "Card refunds show in 3 days.", "t:2"),
                   # a label-0 pair that contradicts a positive: the positive wins
                   RetrievalPair("refund time?", "Card refunds show in 3 days.", "t:3", label=0)])
    ranked = ["refunds take 5  business days.", "Card refunds show in 3 days.", "Shipping costs 4.95.",
              "Returns are free.", "Gift cards never expire."]
    mine_negatives(collected, lambda questions, depth: [ranked[:depth] for _ in questions], per_question=2)
    assert collected.negatives == {"refund time?": ["Shipping costs 4.95.", "Returns are free."]}


def test_held_out_questions_never_appear_in_training_and_too_few_is_a_clear_error():
    pairs = [RetrievalPair(f"question {i}", f"answer {i}", f"t:{i}") for i in range(100)]
    pairs += [RetrievalPair("question 7", "another answer", "t:100")]
    train, kept = held_out(pairs, share=0.2)
    assert len(kept) >= 20 and {p.question for p in train}.isdisjoint({p.question for p in kept})
    assert len(train) + len(kept) == len(pairs)
    assert held_out(pairs, share=0.2) == (train, kept)  # stable
    with pytest.raises(PairError, match="5 distinct questions are too few to hold 20 out"):
        held_out(pairs[:5])


@pytest.fixture
def help_center(tmp_path):
    """A small knowledge base, with the packaged encoder (a reply's support is judged as served)."""
    from retrieval.knowledge_base import KnowledgeBase

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "refunds.md").write_text("# Refunds\n\nRefunds reach your card within five business days of the "
                                     "return arriving at our warehouse.\n")
    (docs / "shipping.md").write_text("# Shipping\n\nParcels ship free above fifty euros and arrive in two days.\n")
    kb = KnowledgeBase(tmp_path / "kb")
    kb.ingest([docs], progress=False)
    return kb


def test_transcripts_pair_a_question_with_the_passage_that_supports_the_agents_reply(tmp_path, help_center):
    from alignment.retrieval_pairs import transcript_pairs

    chats = tmp_path / "chats.jsonl"
    chats.write_text("\n".join(json.dumps({"id": f"c{i}", "messages": m}) for i, m in enumerate([
        [{"role": "user", "content": "where is my money?"},
         {"role": "agent", "content": "Refunds reach your card within five business days of the return arriving."}],
        [{"role": "user", "content": "hello?"}, {"role": "agent", "content": "Let me look into that for you."}],
        [{"role": "user", "content": "is delivery free"}, {"role": "assistant", "content": "Parcels ship free."}],
    ])) + "\n", encoding="utf-8")
    pairs = transcript_pairs(chats, help_center)
    assert [(p.question, p.passage.splitlines()[0]) for p in pairs] == [("where is my money?", "Refunds")]
    assert pairs[0].origin == f"{chats}:1"  # a reply no passage supports, or the bot's own, gives no pair
    chats.write_text('{"id": "x", "messages": [{"role": "customer", "content": "hi"}]}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"chats\.jsonl:1"):
        transcript_pairs(chats, help_center)


def test_the_store_gives_rated_up_citations_and_corrections(tmp_path, help_center):
    from alignment.retrieval_pairs import store_pairs
    from assistant.store import Store

    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    shipping = {"number": 1, "title": "Shipping", "source": "docs/shipping.md", "section": None,
                "snippet": "Parcels ship free above fifty euros and arrive in two days."}
    rated, corrected, disliked = (store.conversations.create_conversation().id for _ in range(3))
    for conversation, question, answer, feedback in [
        (rated, "is delivery free?", "Above fifty euros it is [1].", {"rating": 1}),
        (corrected, "when is my refund?", "Tomorrow.", {"corrected_text": "Refunds reach your card within five "
                                                                          "business days of the return arriving."}),
        (disliked, "can I pay later?", "Yes [1].", {"rating": -1}),
    ]:
        store.conversations.add_message(conversation, "user", question)
        answer_id = store.conversations.add_message(conversation, "assistant", answer,
                                                    metadata={"sources": [shipping]})
        store.conversations.add_feedback(answer_id, **feedback)
    pairs = store_pairs(store.conversations.conversations_for_alignment(), help_center)
    store.close()
    assert sorted((p.question, p.passage.splitlines()[0]) for p in pairs) == [
        ("is delivery free?", "Shipping"), ("when is my refund?", "Refunds")]
