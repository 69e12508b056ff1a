"""The trainable sentiment classifier: a pretrained sentence encoder with a softmax head (by default the multilingual
e5 encoder fine-tuned end to end), fused with an n-gram head where that measurably helps, its probabilities
calibrated by temperature scaling. Texts scored for an entity carry it marked in the input (`entities.py`).

Folder layout (a registry version's `model/`): `config.json` (labels, encoder, fusion weight, temperature, training
summary), `encoder_head.npz`, `ngram_head.npz`, and `encoder/` when the encoder itself was fine-tuned.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from assistant.sentiment.calibration import apply_temperature, expected_calibration_error, fit_temperature
from assistant.sentiment.data import LabelledSet, hash_fraction
from assistant.sentiment.encoders import load_encoder
from assistant.sentiment.entities import marked
from assistant.sentiment.labels import LABELS, Sentiment, from_probabilities
from assistant.sentiment.linear import fit_linear, softmax
from assistant.sentiment.ngram_head import NgramHead
from assistant.sentiment.options import TrainingOptions

KIND = "sentiment-classifier"
FUSION_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)


class SentimentClassifier:
    """predict_proba fuses the heads, w * n-gram + (1 - w) * encoder (w = `ngram_weight`), then applies the
    calibration `temperature`."""

    def __init__(self, labels: list[str], encoder=None, encoder_head: tuple[np.ndarray, np.ndarray] | None = None,
                 ngram: NgramHead | None = None, ngram_weight: float = 0.5, info: dict | None = None,
                 temperature: float = 1.0):
        self.labels, self.encoder, self.encoder_head, self.ngram = labels, encoder, encoder_head, ngram
        self.ngram_weight = ngram_weight if encoder is not None else 1.0
        if ngram is None:
            self.ngram_weight = 0.0
        self.temperature = temperature
        self.info = info or {}
        self.name = self.info.get("name", KIND)

    def predict_proba(self, texts: list[str], entities: list[str | None] | None = None,
                      ngram_weight: float | None = None, calibrated: bool = True) -> np.ndarray:
        inputs = marked(texts, entities)
        weight = self.ngram_weight if ngram_weight is None else ngram_weight
        total = np.zeros((len(inputs), len(self.labels)), dtype=np.float32)
        if weight > 0:
            total += weight * self.ngram.predict_proba(inputs)
        if weight < 1:
            total += (1 - weight) * self.encoder_proba(self.encoder.encode(inputs))
        return apply_temperature(total, self.temperature) if calibrated else total

    def encoder_proba(self, embeddings: np.ndarray) -> np.ndarray:
        coef, intercept = self.encoder_head
        return softmax(embeddings @ coef.T + intercept)

    def score(self, texts: list[str], entities: list[str | None] | None = None) -> list[Sentiment]:
        """One result per text; `entities` (one per text, None for none) asks for each text's sentiment about it."""
        if not texts:
            return []
        probabilities = self.predict_proba([t if t.strip() else "." for t in texts], entities)
        return [from_probabilities(dict(zip(self.labels, map(float, row), strict=True))) for row in probabilities]

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        config = {"kind": KIND, "labels": self.labels, "ngram_weight": self.ngram_weight,
                  "temperature": self.temperature, **self.info}
        if self.encoder is not None:
            config["encoder"] = self.encoder.save(folder)
            np.savez(folder / "encoder_head.npz", coef=self.encoder_head[0], intercept=self.encoder_head[1])
        if self.ngram is not None:
            self.ngram.save(folder / "ngram_head.npz")
        (folder / "config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> SentimentClassifier:
        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{folder} is not a sentiment classifier folder ({exc})") from exc
        if config.get("kind") != KIND:
            raise ValueError(f"{folder}/config.json is not a sentiment classifier (kind {config.get('kind')!r})")
        encoder = head = ngram = None
        if config.get("encoder"):
            encoder = load_encoder(config["encoder"], base=folder, quantize=config.get("quantize", False))
            with np.load(folder / "encoder_head.npz", allow_pickle=False) as saved:
                head = (saved["coef"], saved["intercept"])
        if (folder / "ngram_head.npz").is_file():
            ngram = NgramHead.load(folder / "ngram_head.npz")
        own = {"kind", "labels", "ngram_weight", "encoder", "temperature"}
        info = {k: v for k, v in config.items() if k not in own}
        return cls(config["labels"], encoder, head, ngram, config["ngram_weight"], info,
                   config.get("temperature", 1.0))


def _macro_f1(truth: list[str], predicted: list[str]) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(truth, predicted, average="macro"))


def train_classifier(data: LabelledSet, options: TrainingOptions) -> SentimentClassifier:
    """Fit the heads (and fine-tune a trainable encoder, stopping early on the validation share); the fusion weight
    and the temperature are chosen on that share, then the cheap heads are refitted on every row."""
    classes = [label for label in LABELS if label in data.labels]
    if len(classes) < 2:
        raise ValueError(f"training needs at least two labels; the data has only {classes or 'none'}")
    counts = data.counts()
    few_shot = min(counts.values()) < options.few_shot_below
    encoder = None if options.encoder == "none" else load_encoder(options.encoder)
    if encoder is None and few_shot:
        raise ValueError(f"too few examples per label for n-grams alone ({counts}); use an encoder")
    texts, labels = data.inputs(), data.labels
    held = [hash_fraction(t) < options.validation_share and not few_shot for t in texts]
    if len(set(label for label, h in zip(labels, held, strict=True) if not h)) < len(classes):
        held = [False] * len(texts)
    fit_idx = [i for i, h in enumerate(held) if not h]
    val_idx = [i for i, h in enumerate(held) if h]
    pick = lambda seq, idx: [seq[i] for i in idx]  # noqa: E731

    embeddings = head = None
    if encoder is not None:
        if encoder.trainable:
            checked = val_idx[:options.max_validation]
            validation = (pick(texts, checked), pick(labels, checked)) if checked else None
            head = encoder.fine_tune(pick(texts, fit_idx), pick(labels, fit_idx), classes, options, few_shot,
                                     validation)
            if options.quantize:
                encoder.quantize()
        else:
            embeddings = encoder.encode(texts, progress=True)
            head = fit_linear(embeddings[fit_idx], pick(labels, fit_idx), classes, options.encoder_c)
    ngram = None if few_shot else NgramHead.fit(pick(texts, fit_idx), pick(labels, fit_idx), classes,
                                                options.ngram_c)
    info = {"trained_on": counts, "few_shot": few_shot, "options": asdict(options),
            "quantize": bool(encoder is not None and encoder.trainable and options.quantize)}
    model = SentimentClassifier(classes, encoder, head, ngram, 0.5, info)

    if val_idx:
        val_texts, val_truth = pick(texts, val_idx), pick(labels, val_idx)
        parts = {}
        if ngram is not None:
            parts["ngram"] = ngram.predict_proba(val_texts)
        if encoder is not None:
            parts["encoder"] = model.encoder_proba(embeddings[val_idx] if embeddings is not None
                                                   else encoder.encode(val_texts, progress=True))
        if len(parts) == 2:
            scores = {w: _macro_f1(val_truth, [classes[k] for k in
                                               (w * parts["ngram"] + (1 - w) * parts["encoder"]).argmax(1)])
                      for w in FUSION_GRID}
            model.ngram_weight = max(scores, key=scores.__getitem__)
            info["fusion_validation_macro_f1"] = {str(w): round(s, 4) for w, s in scores.items()}
        fused = (model.ngram_weight * parts.get("ngram", 0) + (1 - model.ngram_weight) * parts.get("encoder", 0))
        truth = np.array([classes.index(label) for label in val_truth])
        model.temperature = fit_temperature(fused, truth)
        info["calibration"] = {"validation_rows": len(val_idx), "temperature": model.temperature,
                               "ece_before": expected_calibration_error(fused, truth),
                               "ece_after": expected_calibration_error(
                                   apply_temperature(fused, model.temperature), truth)}
        # refit what is cheap to refit on every row
        if ngram is not None:
            model.ngram = NgramHead.fit(texts, labels, classes, options.ngram_c)
        if embeddings is not None:
            model.encoder_head = fit_linear(embeddings, labels, classes, options.encoder_c)
    info["ngram_weight"] = model.ngram_weight
    return model
