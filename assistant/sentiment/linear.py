"""A linear softmax head fitted by cross-entropy (multinomial logistic regression), kept as plain arrays."""

from __future__ import annotations

import numpy as np


def fit_linear(features, labels: list[str], classes: list[str], c: float) -> tuple[np.ndarray, np.ndarray]:
    """(coef (classes x features), intercept) over all `classes`; a class absent from `labels` never wins."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=2000).fit(features, labels)
    coef = np.zeros((len(classes), features.shape[1]), dtype=np.float32)
    intercept = np.full(len(classes), -1e4, dtype=np.float32)
    rows = [classes.index(label) for label in model.classes_]
    if len(rows) == 2:  # sklearn keeps one row for two classes: p(second) = sigmoid(w.x + b)
        coef[rows[1]], intercept[rows[1]], intercept[rows[0]] = model.coef_[0], model.intercept_[0], 0.0
    else:
        coef[rows], intercept[rows] = model.coef_, model.intercept_
    return coef, intercept


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)
