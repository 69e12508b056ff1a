"""Fine-tuning the bi-encoder on a company's (question, passage) pairs: sentence-transformers' trainer with
MultipleNegativesRankingLoss (in-batch negatives plus one hard negative per question), and the held-out measure that
judges base against candidate (recall@5, MRR@10 over every passage)."""

from __future__ import annotations

import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alignment.retrieval_pairs import PairError, PairSet, RetrievalPair, text_key
from retrieval.evaluation import ranking_metrics


@dataclass(frozen=True)
class EncoderTrainingConfig:
    epochs: int = 2
    batch_size: int = 32
    learning_rate: float = 3e-5
    warmup_ratio: float = 0.1
    max_seq_length: int = 256
    seed: int = 13


def training_rows(pairs: list[RetrievalPair], known: PairSet, seed: int = 13) -> dict[str, list[str]]:
    """(anchor, positive, negative) columns: a question's hardest known negative, else another question's passage."""
    rng = random.Random(seed)
    passages = [p.passage for p in pairs]
    if len({text_key(p) for p in passages}) < 2:
        raise PairError("every pair has the same passage: there is nothing to tell apart")
    rows: dict[str, list[str]] = {"anchor": [], "positive": [], "negative": []}
    for index, pair in enumerate(pairs):
        hard = known.negatives.get(text_key(pair.question)) or []
        negative = hard[index % len(hard)] if hard else None
        while negative is None or text_key(negative) == text_key(pair.passage):
            negative = rng.choice(passages)
        rows["anchor"].append(pair.question)
        rows["positive"].append(pair.passage)
        rows["negative"].append(negative)
    return rows


def fine_tune_encoder(base: Path, pairs: list[RetrievalPair], known: PairSet, out: Path,
                      config: EncoderTrainingConfig = EncoderTrainingConfig()) -> Path:
    """Train from the encoder folder `base` and save the result to `out` (its prompts kept: e5's "query: " /
    "passage: " are added to anchors and passages as at search time)."""
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers

    model = SentenceTransformer(str(base), device="cpu", local_files_only=True)
    model.max_seq_length = min(model.max_seq_length or config.max_seq_length, config.max_seq_length)
    prompts = model.prompts or {}
    query, passage = prompts.get("query") or "", prompts.get("passage") or prompts.get("document") or ""
    with tempfile.TemporaryDirectory() as scratch:
        arguments = SentenceTransformerTrainingArguments(
            output_dir=scratch, num_train_epochs=config.epochs, per_device_train_batch_size=config.batch_size,
            learning_rate=config.learning_rate, warmup_steps=config.warmup_ratio, seed=config.seed,  # a share
            batch_sampler=BatchSamplers.NO_DUPLICATES, save_strategy="no", report_to=[], logging_steps=10,
            use_cpu=True, dataloader_num_workers=0,
            prompts={"anchor": query, "positive": passage, "negative": passage} if query or passage else None)
        trainer = SentenceTransformerTrainer(model=model, args=arguments,
                                             train_dataset=Dataset.from_dict(training_rows(pairs, known,
                                                                                           config.seed)),
                                             loss=MultipleNegativesRankingLoss(model))
        trainer.train()
    model.save(str(out))
    return Path(out)


class DenseRanker:
    """Dense search over a fixed list of passages with one encoder (its query/passage prompts, `retrieval`'s
    `Encoder`); the passages are encoded once, for mining hard negatives and for judging the encoder."""

    def __init__(self, encoder_folder: Path, corpus: list[str]):
        from retrieval.embeddings import Encoder

        self.encoder = Encoder(str(encoder_folder))
        self.corpus = corpus
        self.vectors = self.encoder.encode(corpus, kind="passage")

    def top(self, questions: list[str], depth: int) -> np.ndarray:
        """The indexes in `corpus` of each question's `depth` best passages, best first."""
        scores = self.encoder.encode(questions, kind="query") @ self.vectors.T
        return np.argsort(-scores, axis=1)[:, :depth]

    def search(self, question: str, depth: int) -> list[str]:
        return [self.corpus[i] for i in self.top([question], depth)[0]]


def held_out_metrics(ranker: DenseRanker, pairs: list[RetrievalPair]) -> dict[str, float]:
    """Dense recall@1/5/10 and MRR@10 of the held-out questions against every passage the ranker holds."""
    ids = {text_key(text): str(i) for i, text in enumerate(ranker.corpus)}
    questions: dict[str, dict[str, int]] = {}
    for pair in pairs:
        questions.setdefault(pair.question, {})[ids[text_key(pair.passage)]] = 1
    texts = list(questions)
    totals: dict[str, float] = {}
    for text, best in zip(texts, ranker.top(texts, 10), strict=True):
        for name, value in ranking_metrics([str(i) for i in best], questions[text]).items():
            totals[name] = totals.get(name, 0.0) + value
    return {name: round(value / len(texts), 4) for name, value in totals.items()}
