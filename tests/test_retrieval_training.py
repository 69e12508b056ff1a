"""Fine-tuning retrieval on (question, passage) pairs with hard negatives, on a tiny encoder built in the test: the
tuned bi-encoder ranks the pairs' passages higher than before, the reranker trained from its body scores each
question's passage above its hard negatives; no training row uses a positive as a negative."""

from __future__ import annotations

from dataclasses import replace

from alignment.retrieval_align import judge
from alignment.retrieval_pairs import PairSet, RetrievalPair, mine_negatives, text_key
from alignment.retrieval_training import (
    EncoderTrainingConfig,
    RerankerTrainingConfig,
    fine_tune_encoder,
    fine_tune_reranker,
    reranker_rows,
    training_rows,
)
from retrieval.config import IndexSettings
from retrieval.rerank import Reranker
from tests.tiny_encoder import build_tiny_encoder

WORDS = "refund card parcel shipping store security return money days the a to of".split()


def pairs() -> list[RetrievalPair]:
    """Questions whose passages share no word with them: only training can link them."""
    topics = [("refund days", "money return"), ("card security", "store the a"), ("parcel shipping", "to of days"),
              ("refund card", "security money"), ("shipping store", "return parcel"), ("days of", "card the")]
    return [RetrievalPair(q, p, f"t:{i}") for i, (q, p) in enumerate(topics)]


def test_training_rows_never_use_a_positive_as_negative():
    known = PairSet()
    known.add(pairs())
    known.negatives[text_key("refund days")] = ["money return", "store the a"]  # the first is its positive
    mine_negatives(known, lambda questions, depth: [[] for _ in questions], per_question=1)
    rows = training_rows(known.positives, known, negatives=2)
    for column in ("negative_1", "negative_2"):
        assert all(text_key(p) != text_key(n) for p, n in zip(rows["positive"], rows[column], strict=True))
    assert rows["negative_1"][0] == "store the a"
    labelled = reranker_rows(known.positives, known, negatives=3)
    assert ("refund days", "money return", 1.0) in zip(*labelled.values(), strict=True)
    assert ("refund days", "money return", 0.0) not in zip(*labelled.values(), strict=True)


def test_fine_tuning_ranks_the_pairs_passages_higher(tmp_path):
    base = build_tiny_encoder(tmp_path / "base")
    known = PairSet()
    known.add(pairs())
    corpus = [p.passage for p in known.positives]
    tuned = fine_tune_encoder(base, known.positives, known, tmp_path / "tuned",
                              EncoderTrainingConfig(epochs=30, batch_size=6, learning_rate=5e-3, warmup_ratio=0.0))
    dense_only = IndexSettings(lexical_weight=0.0)  # the passages share words with other questions
    before = judge(replace(dense_only, encoder=str(base)), corpus, known.positives)
    after = judge(replace(dense_only, encoder=str(tuned)), corpus, known.positives)
    assert after["mrr@10"] > before["mrr@10"] + 0.2, (before, after)
    assert (tuned / "modules.json").is_file()


def test_the_reranker_learns_to_put_the_passage_above_its_hard_negatives(tmp_path):
    base = build_tiny_encoder(tmp_path / "base", initializer_range=0.2, hidden_size=64, dropout=0.0)
    known = PairSet()
    known.add(pairs())
    corpus = [p.passage for p in known.positives]
    mine_negatives(known, lambda questions, depth: [corpus for _ in questions], per_question=3)

    def margin(reranker: Reranker) -> float:
        """How often a question's passage scores above each of its hard negatives."""
        wins = [reranker.score(p.question, [p.passage])[0] > score for p in known.positives
                for score in reranker.score(p.question, known.negatives[text_key(p.question)])]
        return sum(wins) / len(wins)

    tuned = fine_tune_reranker(base, known.positives, known, tmp_path / "reranker",
                               RerankerTrainingConfig(epochs=20, batch_size=8, learning_rate=1e-3, warmup_ratio=0.0))
    assert margin(Reranker(str(tuned))) == 1.0  # an untrained scoring head is right about half the time
