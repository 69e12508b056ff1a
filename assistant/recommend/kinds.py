"""The recommenders by name (`--kind`, `--models`, the `kind` a saved one records) and loading a saved one."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from assistant.recommend.base import SETTINGS_FILE, Recommender

DEFAULT_KIND = "transitions"


def recommender_kinds() -> dict[str, Callable[[], Recommender]]:
    from assistant.recommend.cooccurrence import CooccurrenceRecommender
    from assistant.recommend.popularity import PopularityRecommender
    from assistant.recommend.sasrec import SASRecRecommender
    from assistant.recommend.transitions import TransitionRecommender

    return {"transitions": TransitionRecommender, "sasrec": SASRecRecommender,
            "cooccurrence": CooccurrenceRecommender, "popularity": PopularityRecommender}


def load_recommender(folder: Path) -> Recommender:
    """A recommender saved by its `save` (its kind is in recommender.json)."""
    path = Path(folder) / SETTINGS_FILE
    if not path.is_file():
        raise ValueError(f"{folder}: no {SETTINGS_FILE}: not a saved recommender")
    kind = json.loads(path.read_text()).get("kind")
    kinds = recommender_kinds()
    if kind not in kinds:
        raise ValueError(f"{path}: unknown recommender kind {kind!r}")
    return kinds[kind].load(Path(folder))
