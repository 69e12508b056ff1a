"""Fine-tuning retrieval on a company's (question, passage) pairs with sentence-transformers' trainers: the
bi-encoder with MultipleNegativesRankingLoss (in-batch negatives plus one hard negative per question), the
cross-encoder reranker with binary cross-entropy on each question's passage and its hard negatives (started from the
tuned encoder's body), and the dense ranker that mines hard negatives. Where the CPU multiplies
bfloat16 in hardware, training runs in bfloat16 mixed precision."""

from __future__ import annotations

import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alignment.retrieval_pairs import PairError, PairSet, RetrievalPair, text_key
from retrieval.rerank import bfloat16_is_fast


@dataclass(frozen=True)
class EncoderTrainingConfig:
    epochs: int = 2
    batch_size: int = 32
    learning_rate: float = 3e-5
    warmup_ratio: float = 0.1
    max_seq_length: int = 128  # tokens per text while training (the model keeps its own limit for searching)
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
    searched_length = model.max_seq_length
    model.max_seq_length = min(searched_length or config.max_seq_length, config.max_seq_length)
    prompts = model.prompts or {}
    query, passage = prompts.get("query") or "", prompts.get("passage") or prompts.get("document") or ""
    with tempfile.TemporaryDirectory() as scratch:
        arguments = SentenceTransformerTrainingArguments(
            output_dir=scratch, num_train_epochs=config.epochs, per_device_train_batch_size=config.batch_size,
            learning_rate=config.learning_rate, warmup_steps=config.warmup_ratio, seed=config.seed,  # a share
            batch_sampler=BatchSamplers.NO_DUPLICATES, save_strategy="no", report_to=[], logging_steps=10,
            use_cpu=True, dataloader_num_workers=0, bf16=bfloat16_is_fast(),
            prompts={"anchor": query, "positive": passage, "negative": passage} if query or passage else None)
        trainer = SentenceTransformerTrainer(model=model, args=arguments,
                                             train_dataset=Dataset.from_dict(training_rows(pairs, known,
                                                                                           config.seed)),
                                             loss=MultipleNegativesRankingLoss(model))
        trainer.train()
    model.max_seq_length = searched_length
    model.save(str(out))
    return Path(out)


@dataclass(frozen=True)
class RerankerTrainingConfig:
    epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.1
    negatives: int = 3  # hard negatives per question, each a label-0 row next to the question's passage
    layers: int | None = None  # keep only the body's first layers: a faster reranker (None: all of them)
    max_seq_length: int = 128  # question and passage together, in tokens (training and reranking)
    seed: int = 13


def reranker_rows(pairs: list[RetrievalPair], known: PairSet, negatives: int) -> dict[str, list]:
    """(question, passage, label) columns: each pair's passage (1) and up to `negatives` hard negatives (0)."""
    rows: dict[str, list] = {"question": [], "passage": [], "label": []}
    done: set[str] = set()
    for pair in pairs:
        rows["question"].append(pair.question)
        rows["passage"].append(pair.passage)
        rows["label"].append(1.0)
        key = text_key(pair.question)
        if key in done:
            continue
        done.add(key)
        for negative in (known.negatives.get(key) or [])[:negatives]:
            rows["question"].append(pair.question)
            rows["passage"].append(negative)
            rows["label"].append(0.0)
    return rows


def fine_tune_reranker(start: Path, pairs: list[RetrievalPair], known: PairSet, out: Path,
                       config: RerankerTrainingConfig = RerankerTrainingConfig()) -> Path:
    """Train a cross-encoder from `start` (a reranker folder, or an encoder folder whose body gets a new scoring
    head) and save it to `out`."""
    import torch
    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    model = CrossEncoder(str(start), num_labels=1, max_length=config.max_seq_length, device="cpu",
                         local_files_only=True,
                         config_kwargs={"num_hidden_layers": config.layers} if config.layers else None)
    rows = reranker_rows(pairs, known, config.negatives)
    share = sum(rows["label"]) / len(rows["label"])
    with tempfile.TemporaryDirectory() as scratch:
        arguments = CrossEncoderTrainingArguments(
            output_dir=scratch, num_train_epochs=config.epochs, per_device_train_batch_size=config.batch_size,
            learning_rate=config.learning_rate, warmup_steps=config.warmup_ratio, seed=config.seed,
            save_strategy="no", report_to=[], logging_steps=10, use_cpu=True, dataloader_num_workers=0,
            bf16=bfloat16_is_fast())
        # positives are weighted up to as many as the negatives, so "no" is not the easy answer
        loss = BinaryCrossEntropyLoss(model, pos_weight=torch.tensor((1 - share) / share if share < 1 else 1.0))
        CrossEncoderTrainer(model=model, args=arguments, train_dataset=Dataset.from_dict(rows), loss=loss).train()
    model.save(str(out))
    return Path(out)


class DenseRanker:
    """Dense search over a fixed list of passages with one encoder (its query/passage prompts, `retrieval`'s
    `Encoder`); the passages are encoded once, for mining hard negatives."""

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

