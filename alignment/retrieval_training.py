"""Fine-tuning retrieval on a company's (question, passage) pairs with sentence-transformers' trainers: the
bi-encoder with MultipleNegativesRankingLoss (in-batch negatives plus the question's hard negatives), the
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

LARGE_VOCABULARY = 100_000


@dataclass(frozen=True)
class EncoderTrainingConfig:
    epochs: int = 2
    batch_size: int = 32
    learning_rate: float = 3e-5
    warmup_ratio: float = 0.1
    max_seq_length: int = 128  # tokens per text while training (the model keeps its own limit for searching)
    hard_negatives: int = 1  # per question, next to the in-batch ones
    # None: frozen when the vocabulary is large (multilingual e5's 250k tokens: a third faster per step, and the
    # few words a company's pairs use do not drag their embeddings away from the rest)
    freeze_word_embeddings: bool | None = None
    seed: int = 13


def training_rows(pairs: list[RetrievalPair], known: PairSet, negatives: int = 1,
                  seed: int = 13) -> dict[str, list[str]]:
    """(anchor, positive, negative_1..n) columns: a question's hardest known negatives, topped up with other
    questions' passages."""
    rng = random.Random(seed)
    passages = [p.passage for p in pairs]
    if len({text_key(p) for p in passages}) < 2:
        raise PairError("every pair has the same passage: there is nothing to tell apart")
    columns = [f"negative_{i + 1}" for i in range(negatives)]
    rows: dict[str, list[str]] = {"anchor": [], "positive": [], **{c: [] for c in columns}}
    for index, pair in enumerate(pairs):
        hard = known.negatives.get(text_key(pair.question)) or []
        for n, column in enumerate(columns):
            negative = hard[(index + n) % len(hard)] if len(hard) > n else None
            while negative is None or text_key(negative) == text_key(pair.passage):
                negative = rng.choice(passages)
            rows[column].append(negative)
        rows["anchor"].append(pair.question)
        rows["positive"].append(pair.passage)
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
    words = model[0].auto_model.get_input_embeddings().weight
    if config.freeze_word_embeddings or (config.freeze_word_embeddings is None and words.shape[0] > LARGE_VOCABULARY):
        words.requires_grad_(False)
    searched_length = model.max_seq_length
    model.max_seq_length = min(searched_length or config.max_seq_length, config.max_seq_length)
    rows = training_rows(pairs, known, config.hard_negatives, config.seed)
    prompts = model.prompts or {}
    query, passage = prompts.get("query") or "", prompts.get("passage") or prompts.get("document") or ""
    with tempfile.TemporaryDirectory() as scratch:
        arguments = SentenceTransformerTrainingArguments(
            output_dir=scratch, num_train_epochs=config.epochs, per_device_train_batch_size=config.batch_size,
            learning_rate=config.learning_rate, warmup_steps=config.warmup_ratio, seed=config.seed,  # a share
            batch_sampler=BatchSamplers.NO_DUPLICATES, save_strategy="no", report_to=[], logging_steps=10,
            use_cpu=True, dataloader_num_workers=0, bf16=bfloat16_is_fast(),
            prompts={"anchor": query, "positive": passage, **{c: passage for c in rows if c.startswith("negative")}}
            if query or passage else None)
        trainer = SentenceTransformerTrainer(model=model, args=arguments, train_dataset=Dataset.from_dict(rows),
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
        vectors = self.encoder.encode(questions, kind="query")
        depth = min(depth, len(self.corpus))
        rows = []
        for start in range(0, len(questions), 1024):  # a block of scores at a time: memory stays small
            scores = vectors[start:start + 1024] @ self.vectors.T
            best = np.argpartition(-scores, depth - 1, axis=1)[:, :depth]
            order = np.argsort(-np.take_along_axis(scores, best, axis=1), axis=1)
            rows.append(np.take_along_axis(best, order, axis=1))
        return np.concatenate(rows) if rows else np.empty((0, depth), dtype=np.int64)

    def search(self, questions: list[str], depth: int) -> list[list[str]]:
        """Each question's `depth` best passages, best first (questions encoded in batches)."""
        return [[self.corpus[i] for i in row] for row in self.top(questions, depth)]

