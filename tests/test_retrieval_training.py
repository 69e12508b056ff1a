"""Fine-tuning the bi-encoder on (question, passage) pairs with hard negatives: on a tiny encoder built in the test,
training on pairs makes it rank their passages higher than before; no training row uses a positive as negative."""

from __future__ import annotations

from alignment.retrieval_pairs import PairSet, RetrievalPair, mine_negatives, text_key
from alignment.retrieval_training import (
    DenseRanker,
    EncoderTrainingConfig,
    fine_tune_encoder,
    held_out_metrics,
    training_rows,
)
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
    mine_negatives(known, lambda q, depth: [], per_question=1)
    rows = training_rows(known.positives, known)
    assert all(text_key(p) != text_key(n) for p, n in zip(rows["positive"], rows["negative"], strict=True))
    assert rows["negative"][0] == "store the a"


def test_fine_tuning_ranks_the_pairs_passages_higher(tmp_path):
    base = build_tiny_encoder(tmp_path / "base")
    known = PairSet()
    known.add(pairs())
    corpus = [p.passage for p in known.positives]
    tuned = fine_tune_encoder(base, known.positives, known, tmp_path / "tuned",
                              EncoderTrainingConfig(epochs=30, batch_size=6, learning_rate=5e-3, warmup_ratio=0.0))
    before = held_out_metrics(DenseRanker(base, corpus), known.positives)
    after = held_out_metrics(DenseRanker(tuned, corpus), known.positives)
    assert after["mrr@10"] > before["mrr@10"] + 0.2, (before, after)
    assert (tuned / "modules.json").is_file()
