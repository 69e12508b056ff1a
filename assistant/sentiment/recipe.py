"""The default training recipe (`assistant sentiment train --recipe default`): one multilingual classifier for the
product's scenarios, built from the public sets in a data folder (`../shared/data` in this project):

- `tweets_en`, customer messages: `sentiment/tweets_en.train.jsonl`; dev `sentiment/tweets_en.dev.jsonl`
- `finance_forum_zh`, stock-forum posts: FinFE `fincuge_finfe_zh/train_list.json`; dev
  `sentiment/finance_forum_zh.dev.jsonl`
- `reviews_zh`, hotel and food reviews: `sentiment/reviews_zh.train.jsonl`; dev `sentiment/reviews_zh.dev.jsonl`
- `finance_news_en`, headlines and posts: SemEval-2017 task 5 + FiQA-2018 task 1, 80% train, 20% dev

Financial scores (-1..1) become labels with one threshold: `|score| <= 0.1` neutral, else its sign
(`NEUTRAL_BAND`). The financial dev split is by text (a SHA-1 of the lower-cased text), so a headline scored for two
companies lies wholly on one side; no training text of any part equals a dev text of any part (FinFE's own file
holds half of `finance_forum_zh.dev`, which is why the raw file is filtered). Headlines come twice in training:
marked with their company (entity-level) and alone with the mean score of its companies.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from assistant.sentiment.data import LabelledSet, SentimentDataError, hash_fraction, read_labelled

NEUTRAL_BAND = 0.1
FINANCE_DEV_SHARE = 0.2
FINFE_LABELS = {0: "negative", 1: "neutral", 2: "positive"}
# rows kept per part (a stable sample by text hash): training time on a 2-core CPU, chosen by measurement
DEFAULT_CAPS = {"tweets_en": 12000, "finance_forum_zh": 6000, "reviews_zh": 4000, "finance_news_en": 10000}
PARTS = tuple(DEFAULT_CAPS)


@dataclass
class Recipe:
    train: dict[str, LabelledSet] = field(default_factory=dict)
    dev: dict[str, LabelledSet] = field(default_factory=dict)
    removed_overlap: dict[str, int] = field(default_factory=dict)  # training rows dropped: their text is a dev text

    def combined_train(self) -> LabelledSet:
        combined = LabelledSet()
        for part in self.train.values():
            combined.extend(part)
        return combined

    def summary(self) -> dict:
        return {name: {"train": len(self.train[name]), "train_labels": self.train[name].counts(),
                       "dev": len(self.dev[name]), "dev_labels": self.dev[name].counts(),
                       "dropped_as_dev_text": self.removed_overlap.get(name, 0)} for name in self.train}


def score_label(score: float) -> str:
    return "neutral" if abs(score) <= NEUTRAL_BAND else "positive" if score > 0 else "negative"


def _raw_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SentimentDataError(f"{path}: cannot be read as JSON ({exc})") from exc


def _field(row, name: str, path: Path, where: str):
    if not isinstance(row, dict) or name not in row:
        raise SentimentDataError(f"{path}: {where} has no '{name}'")
    return row[name]


def semeval_headlines(path: Path) -> list[tuple[str, str, float]]:
    """SemEval-2017 task 5 subtask 2: (title, company, score) per row."""
    rows = _raw_json(path)
    if not isinstance(rows, list):
        raise SentimentDataError(f"{path}: expected a JSON list of headlines")
    return [(str(_field(r, "title", path, f"item {i}")).strip(), str(_field(r, "company", path, f"item {i}")).strip(),
             float(_field(r, "sentiment", path, f"item {i}"))) for i, r in enumerate(rows)]


def fiqa_posts(path: Path) -> list[tuple[str, str, float]]:
    """FiQA-2018 task 1 posts: (sentence, target, score) per scored target."""
    posts = _raw_json(path)
    if not isinstance(posts, dict):
        raise SentimentDataError(f"{path}: expected a JSON object of posts by id")
    rows = []
    for post_id, post in posts.items():
        sentence = str(_field(post, "sentence", path, f"post {post_id}")).strip()
        for info in _field(post, "info", path, f"post {post_id}"):
            rows.append((sentence, str(_field(info, "target", path, f"post {post_id}")).strip(),
                         float(_field(info, "sentiment_score", path, f"post {post_id}"))))
    return rows


def finfe_posts(path: Path) -> LabelledSet:
    """FinFE `[[text, 0|1|2], ...]`; a text labelled more than once keeps its most frequent label."""
    rows = _raw_json(path)
    votes: dict[str, Counter] = defaultdict(Counter)
    for i, row in enumerate(rows):
        if not (isinstance(row, list) and len(row) == 2 and row[1] in FINFE_LABELS):
            raise SentimentDataError(f"{path}: item {i} is not [text, 0|1|2]")
        if str(row[0]).strip():
            votes[str(row[0]).strip()][FINFE_LABELS[row[1]]] += 1
    data = LabelledSet()
    for text, counter in votes.items():
        data.add(text, counter.most_common(1)[0][0])
    return data


def finance_news(data_dir: Path) -> tuple[LabelledSet, LabelledSet]:
    """Headlines and posts with their entity, split 80/20 by text; training also gets each text without entity."""
    rows = (semeval_headlines(data_dir / "semeval2017_task5_headlines" / "SemEval2017Task5Headlines.json")
            + fiqa_posts(data_dir / "fiqa2018_task1_sentiment" / "FiQA_post.json"))
    train, dev = LabelledSet(), LabelledSet()
    scores: dict[str, list[float]] = defaultdict(list)
    for text, entity, score in rows:
        in_dev = hash_fraction(text.lower(), part=2) < FINANCE_DEV_SHARE
        (dev if in_dev else train).add(text, score_label(score), entity)
        if not in_dev:
            scores[text].append(score)
    for text, values in scores.items():
        train.add(text, score_label(sum(values) / len(values)), None)
    return train, dev


def _capped(data: LabelledSet, cap: int) -> LabelledSet:
    """A stable sample of at most `cap` rows (the rows with the smallest text hashes)."""
    if len(data) <= cap:
        return data
    order = sorted(range(len(data)), key=lambda i: hash_fraction(data.texts[i], part=3))
    return data.subset(sorted(order[:cap]))


def build_default_recipe(data_dir: Path, caps: dict[str, int] | None = None) -> Recipe:
    """The four parts from `data_dir` (missing files are named in the error)."""
    data_dir, caps = Path(data_dir), {**DEFAULT_CAPS, **(caps or {})}
    sentiment = data_dir / "sentiment"
    recipe = Recipe()
    try:
        for name in ("tweets_en", "reviews_zh"):
            recipe.train[name] = read_labelled(sentiment / f"{name}.train.jsonl")
            recipe.dev[name] = read_labelled(sentiment / f"{name}.dev.jsonl")
        recipe.train["finance_forum_zh"] = finfe_posts(data_dir / "fincuge_finfe_zh" / "train_list.json")
        recipe.dev["finance_forum_zh"] = read_labelled(sentiment / "finance_forum_zh.dev.jsonl")
    except SentimentDataError as exc:
        raise SentimentDataError(f"the default recipe needs the public sets under {data_dir}: {exc}") from exc
    recipe.train["finance_news_en"], recipe.dev["finance_news_en"] = finance_news(data_dir)
    dev_texts = {text.lower() for part in recipe.dev.values() for text in part.texts}
    for name in PARTS:
        part = recipe.train[name]
        kept = [i for i, text in enumerate(part.texts) if text.lower() not in dev_texts]
        recipe.removed_overlap[name] = len(part) - len(kept)
        recipe.train[name] = _capped(part.subset(kept), caps[name])
    recipe.train = {name: recipe.train[name] for name in PARTS}
    recipe.dev = {name: recipe.dev[name] for name in PARTS}
    return recipe


def write_labelled(data: LabelledSet, path: Path) -> Path:
    """JSONL in the labelled-file contract (`entity` only where there is one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    entities = data.entities or [None] * len(data)
    with path.open("w", encoding="utf-8") as out:
        for text, label, entity in zip(data.texts, data.labels, entities, strict=True):
            row = {"text": text, "label": label, **({"entity": entity} if entity else {})}
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def write_recipe(recipe: Recipe, folder: Path) -> dict[str, Path]:
    """`<part>.train.jsonl` / `<part>.dev.jsonl` and `recipe.json` (counts, thresholds) in `folder`."""
    files = {}
    for name in recipe.train:
        files[f"{name}.train"] = write_labelled(recipe.train[name], folder / f"{name}.train.jsonl")
        files[f"{name}.dev"] = write_labelled(recipe.dev[name], folder / f"{name}.dev.jsonl")
    (folder / "recipe.json").write_text(json.dumps({"neutral_band": NEUTRAL_BAND, "finance_dev_share":
                                                    FINANCE_DEV_SHARE, "parts": recipe.summary()}, indent=2),
                                        encoding="utf-8")
    return files
