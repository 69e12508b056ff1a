"""Measure an ensemble of two saved per-language sentiment classifiers on the recipe's dev sets: their calibrated
probabilities averaged with weight w for the first (bench/results/sentiment-recipe-20261203.md, last section).

    python scripts/sentiment_ensemble.py HOME_A/sentiment-registry/versions/v1/model \
        HOME_B/sentiment-registry/versions/v1/model HOME_A/sentiment-recipe
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from assistant.sentiment.by_language import ByLanguageClassifier, language_of, load_classifier
from assistant.sentiment.labels import LABELS


def probabilities(model: ByLanguageClassifier, texts: list[str], entities: list[str | None]) -> np.ndarray:
    """Each text's calibrated probabilities in LABELS order, from its language's classifier."""
    out = np.zeros((len(texts), len(LABELS)), dtype=np.float32)
    for language, classifier in model.routes.items():
        chosen = [i for i, t in enumerate(texts) if (language_of(t) if language_of(t) in model.routes
                                                    else next(iter(model.routes))) == language]
        if chosen:
            found = classifier.predict_proba([texts[i] for i in chosen], [entities[i] for i in chosen])
            out[chosen] = found[:, [classifier.labels.index(label) for label in LABELS]]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    parser.add_argument("dev", type=Path, help="folder of *.dev.jsonl files")
    args = parser.parse_args()
    first, second = load_classifier(args.first), load_classifier(args.second)
    for path in sorted(args.dev.glob("*.dev.jsonl")):
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        texts, entities = [r["text"] for r in rows], [r.get("entity") for r in rows]
        truth = [r["label"] for r in rows]
        a, b = probabilities(first, texts, entities), probabilities(second, texts, entities)
        for weight in (0.0, 0.3, 0.5, 0.7, 1.0):
            predicted = [LABELS[i] for i in (weight * a + (1 - weight) * b).argmax(axis=1)]
            print(f"{path.name.split('.')[0]}: weight {weight}: accuracy {accuracy_score(truth, predicted):.4f}, "
                  f"macro-F1 {f1_score(truth, predicted, average='macro'):.4f}")


if __name__ == "__main__":
    main()
