"""One classifier per language (`TrainingOptions.per_language`): Chinese texts go to a classifier trained on the
Chinese rows, all others to one trained on the rest. Measured on the default recipe, two models beat one shared
model where the languages' sets disagree on what "neutral" means (README, sentiment)."""

from __future__ import annotations

import json
from pathlib import Path

from assistant.sentiment.classifier import KIND as CLASSIFIER_KIND
from assistant.sentiment.classifier import SentimentClassifier, train_classifier
from assistant.sentiment.data import LabelledSet
from assistant.sentiment.labels import LABELS, Sentiment, is_chinese
from assistant.sentiment.options import TrainingOptions

KIND = "sentiment-by-language"
LANGUAGES = ("zh", "other")


def language_of(text: str) -> str:
    return "zh" if is_chinese(text) else "other"


class ByLanguageClassifier:
    """`score` sends each text to its language's classifier and returns the results in the input order."""

    def __init__(self, routes: dict[str, SentimentClassifier], info: dict | None = None):
        self.routes, self.info = routes, info or {}
        self.labels = [label for label in LABELS if any(label in c.labels for c in routes.values())]
        self.name = self.info.get("name", KIND)

    def score(self, texts: list[str], entities: list[str | None] | None = None) -> list[Sentiment]:
        results: list[Sentiment | None] = [None] * len(texts)
        for language, classifier in self.routes.items():
            chosen = [i for i, text in enumerate(texts) if self._route(text) == language]
            if chosen:
                about = [entities[i] for i in chosen] if entities else None
                for i, result in zip(chosen, classifier.score([texts[i] for i in chosen], about), strict=True):
                    results[i] = result
        return results

    def _route(self, text: str) -> str:
        language = language_of(text)
        return language if language in self.routes else next(iter(self.routes))

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for language, classifier in self.routes.items():
            classifier.save(folder / language)
        config = {"kind": KIND, "routes": list(self.routes), **self.info}
        (folder / "config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False), encoding="utf-8")


def load_classifier(folder: Path) -> SentimentClassifier | ByLanguageClassifier:
    """A saved classifier folder of either kind."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{folder} is not a sentiment classifier folder ({exc})") from exc
    if config.get("kind") == KIND:
        info = {k: v for k, v in config.items() if k not in {"kind", "routes"}}
        return ByLanguageClassifier({language: SentimentClassifier.load(folder / language)
                                     for language in config["routes"]}, info)
    if config.get("kind") != CLASSIFIER_KIND:
        raise ValueError(f"{folder}/config.json is not a sentiment classifier (kind {config.get('kind')!r})")
    return SentimentClassifier.load(folder)


def train_scorer(data: LabelledSet, options: TrainingOptions) -> SentimentClassifier | ByLanguageClassifier:
    """One classifier, or with `options.per_language` and rows of both kinds, one per language."""
    by_language: dict[str, list[int]] = {}
    for i, text in enumerate(data.texts):
        by_language.setdefault(language_of(text), []).append(i)
    if not options.per_language or len(by_language) < 2:
        return train_classifier(data, options)
    routes = {language: train_classifier(data.subset(rows), options)
              for language, rows in sorted(by_language.items())}
    info = {"options": routes["zh"].info.get("options", {}),
            "per_language": {language: {k: v for k, v in c.info.items() if k != "options"}
                             for language, c in routes.items()}}
    return ByLanguageClassifier(routes, info)
