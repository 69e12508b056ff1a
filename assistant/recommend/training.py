"""`assistant align recommend`: fit a recommender on the store's interactions, compare it with the one serving on
each customer's last item (both recipes fitted on the same earlier items), register it, and promote it only when it
ranks the held-out items better (NDCG@10)."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from assistant.errors import AssistantError
from assistant.recommend.base import Recommender
from assistant.recommend.evaluation import evaluate
from assistant.recommend.interactions import Interaction, histories
from assistant.recommend.kinds import DEFAULT_KIND, load_recommender, recommender_kinds
from assistant.registry import ModelVersion, RegistryError

MIN_CUSTOMERS = 10  # customers with at least three items: fewer, and the gate measures nothing


class RecommendTrainingError(AssistantError, ValueError):
    """Training cannot start (too little history, an unknown kind)."""


@dataclass
class RecommendAlignReport:
    data: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)  # {"current": {...}, "candidate": {...}}
    version: str | None = None
    promoted: bool = False
    decision: str = ""


def _current_recipe(home: Path) -> tuple[str, Callable[[], Recommender]]:
    """The serving recommender's recipe (its kind and settings, refitted on the gate's data), else co-occurrence,
    which serves when nothing was promoted."""
    from assistant.recommend.service import recommend_registry

    registry = recommend_registry(home)
    active = registry.active()
    if active is None:
        return "cooccurrence (serving by default)", recommender_kinds()["cooccurrence"]
    try:
        serving = load_recommender(active.model_dir)
    except (OSError, ValueError) as exc:
        raise RegistryError(f"the serving recommender {active.id} cannot be loaded: {exc}") from exc
    kind = type(serving)
    config = getattr(serving, "config", None)
    return f"{active.id} ({serving.name})", (lambda: kind(config)) if config is not None else kind


def align_recommender(interactions: list[Interaction], home: Path, kind: str = DEFAULT_KIND, margin: float = 0.0,
                      promote: bool = True, progress: bool = True) -> RecommendAlignReport:
    kinds = recommender_kinds()
    if kind not in kinds:
        raise RecommendTrainingError(f"unknown recommender {kind!r}: one of {', '.join(kinds)}")
    found = histories(interactions)
    measured = sum(len(items) >= 3 for items in found.values())
    if measured < MIN_CUSTOMERS:
        raise RecommendTrainingError(
            f"{measured} customers have three or more items; the gate needs at least {MIN_CUSTOMERS}: import more "
            "history (`assistant catalog interactions FILE`) or let customers use recommendations first")
    report = RecommendAlignReport()
    report.data = {"interactions": len(interactions), "customers": len(found), "customers measured": measured,
                   "items": len({i for items in found.values() for i in items})}
    current_name, current = _current_recipe(home)
    report.metrics["current"] = evaluate(current, found)
    report.metrics["candidate"] = evaluate(kinds[kind], found, progress=progress)
    before, after = report.metrics["current"]["ndcg@10"], report.metrics["candidate"]["ndcg@10"]
    better = after > before + margin
    report.decision = (f"NDCG@10 {before:.4f} -> {after:.4f}: "
                       + ("promoted" if better and promote else "better, not promoted (--no-promote)" if better
                          else f"not better by more than {margin}: kept {current_name}"))
    model = kinds[kind]()
    model.fit(found, progress=progress)  # the version serves with everything known, the held-out items included
    from assistant.recommend.service import recommend_registry

    registry = recommend_registry(home)
    digest = hashlib.sha256("\n".join(f"{c}\t{' '.join(found[c])}" for c in sorted(found)).encode()).hexdigest()[:16]
    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp) / "model")
        version = registry.register(Path(tmp) / "model", ModelVersion(
            id="", parent=registry.active_id(), base_model=model.name, created_at="", data_hash=digest,
            config={"kind": kind}, metrics=report.metrics, data=report.data, decision=report.decision))
    report.version = version.id
    if better and promote:
        registry.promote(version.id)
        report.promoted = True
    return report
