"""Which scorer serves: the promoted classifier of the sentiment registry, else the packaged lexicon default."""

from __future__ import annotations

from pathlib import Path

from assistant.registry import ModelRegistry, RegistryError


def sentiment_registry(home: Path) -> ModelRegistry:
    """Registered sentiment classifiers live beside the chat models: `<home>/sentiment-registry/`."""
    return ModelRegistry(Path(home).expanduser() / "sentiment-registry")


def load_scorer(spec: str = "current", home: Path | None = None):
    """'current' (promoted classifier or the lexicon default), 'lexicon', a version id (v2) or a classifier folder."""
    from assistant.sentiment.by_language import load_classifier
    from assistant.sentiment.lexicon import LexiconScorer

    if spec == "lexicon":
        return LexiconScorer()
    registry = sentiment_registry(home or Path("~/.assistant"))
    if spec == "current":
        version = registry.active()
        if version is None:
            return LexiconScorer()
    elif spec.startswith("v") and spec[1:].isdigit():
        version = registry.get(spec)
    else:
        if not Path(spec).is_dir():
            raise RegistryError(f"'{spec}' is neither current, lexicon, a registered version nor a folder")
        return load_classifier(Path(spec))
    registry.verify(version)
    classifier = load_classifier(version.model_dir)
    classifier.name = f"classifier@{version.id}"
    return classifier
