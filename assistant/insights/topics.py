"""Topics: customer questions grouped by meaning, each with a short label from its most characteristic words, and
new questions assigned to the nearest topic as they arrive.

How (measured with `assistant eval topics`, the same parameters for every data set, see README):
- sentence embeddings from the knowledge base's encoder (questions it does not understand, e.g. Chinese for the
  English-only default, from the multilingual encoder, grouped apart);
- average-linkage agglomerative clustering on cosine distance, cut at the encoder's `LINK_DISTANCE` (so the number of
  topics is found, not given; e5's vectors all lie close together, so its cut is lower);
- questions left in topics smaller than `SMALL_TOPIC` join the nearest larger topic when close enough;
- above `MAX_LINKED` questions, a sample is clustered and the rest assigned to its topics (the linkage needs memory
  quadratic in the number of questions).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# where average linkage stops merging, per encoder (measured on banking77 / clinc150 test: MiniLM NMI 0.81 / 0.87,
# ARI 0.48 / 0.56; e5 0.78 / 0.85, 0.40 / 0.45); another encoder gets the default's
LINK_DISTANCE = {"default": 0.45, "all-MiniLM-L6-v2": 0.45, "multilingual-e5-small": 0.1}
SMALL_TOPIC = 3
# a question of a small topic (or a new question) joins the nearest larger topic when its cosine distance to the
# topic's centre is within this many times the link distance (MiniLM: similarity 0.5)
JOIN_REACH = 1.1
MAX_LINKED = 8000
LABEL_TERMS = 3
_WORD = re.compile(r"[a-z][a-z'’]+")
_FILLER = frozenset({"need", "did", "does", "want", "know", "just", "tell", "able", "please", "thanks", "thank",
                     "hello", "hey", "hi"})  # in every kind of question: they name no topic


@dataclass(frozen=True)
class Topic:
    id: int
    label: str  # its most characteristic terms, "card · arrive · delivered"
    size: int
    examples: tuple[str, ...]  # the questions nearest its centre


def cluster(vectors: np.ndarray, link_distance: float = LINK_DISTANCE["default"], seed: int = 0) -> np.ndarray:
    """A topic number for each normalised vector; topics numbered by size, largest first."""
    from sklearn.cluster import AgglomerativeClustering

    n = len(vectors)
    if n < 2:
        return np.zeros(n, dtype=int)
    linked = np.arange(n) if n <= MAX_LINKED else np.sort(np.random.default_rng(seed).choice(n, MAX_LINKED, False))
    groups = AgglomerativeClustering(n_clusters=None, distance_threshold=link_distance, linkage="average",
                                     metric="cosine").fit_predict(vectors[linked])
    groups = _join_small(vectors[linked], groups, 1 - JOIN_REACH * link_distance)
    if len(linked) < n:
        found, _ = nearest(centres(vectors[linked], groups), vectors)
        found[linked] = groups
        groups = found
    return _by_size(groups)


def centres(vectors: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """The normalised mean vector of each group (row g = group g)."""
    sums = np.zeros((groups.max() + 1, vectors.shape[1]), dtype=np.float64)
    np.add.at(sums, groups, vectors)
    return (sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-9)).astype(np.float32)


def nearest(centre_rows: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the nearest centre of each vector, its cosine similarity)."""
    if len(centre_rows) == 0:
        return np.full(len(vectors), -1), np.zeros(len(vectors), np.float32)
    similarity = vectors @ centre_rows.T
    best = similarity.argmax(axis=1)
    return best, similarity[np.arange(len(vectors)), best]


def _join_small(vectors: np.ndarray, groups: np.ndarray, min_similarity: float) -> np.ndarray:
    sizes = np.bincount(groups)
    large = np.flatnonzero(sizes >= SMALL_TOPIC)
    small = np.flatnonzero(sizes[groups] < SMALL_TOPIC)
    if len(large) == 0 or len(small) == 0:
        return groups
    centre_rows = centres(vectors, groups)[large]
    best, similarity = nearest(centre_rows, vectors[small])
    joined = groups.copy()
    close = similarity >= min_similarity
    joined[small[close]] = large[best[close]]
    return joined


def _by_size(groups: np.ndarray) -> np.ndarray:
    _, dense = np.unique(groups, return_inverse=True)
    order = np.argsort(-np.bincount(dense), kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[dense]


def terms_of(text: str) -> list[str]:
    """The words a label is made of: English words of 3+ letters that are not stop words; Chinese words of 2+
    characters (jieba)."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    from assistant.sentiment.labels import is_chinese

    if is_chinese(text):
        import jieba

        return [w for w in jieba.lcut(text) if len(w) >= 2 and re.search(r"[\u3400-\u9fff]", w)]
    return [w for w in _WORD.findall(text.lower())
            if len(w) >= 3 and w not in ENGLISH_STOP_WORDS and w not in _FILLER]


def topic_labels(texts: Sequence[str], groups: np.ndarray, terms: int = LABEL_TERMS) -> list[str]:
    """Each group's most characteristic terms (class-based tf-idf: frequent in the group, rare in the others)."""
    from sklearn.feature_extraction.text import CountVectorizer

    if len(texts) == 0:
        return []
    joined = [" ".join(texts[i] for i in np.flatnonzero(groups == g)) for g in range(groups.max() + 1)]
    try:
        counts = CountVectorizer(analyzer=terms_of).fit(texts)
    except ValueError:  # no word in any question
        return [f"topic {g + 1}" for g in range(len(joined))]
    matrix = counts.transform(joined).toarray().astype(np.float64)
    words = counts.get_feature_names_out()
    frequency = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    weight = frequency * np.log(1 + matrix.sum() / np.maximum(matrix.sum(axis=0), 1))
    labels = []
    for g, row in enumerate(weight):
        top = [words[i] for i in np.argsort(-row)[:terms] if row[i] > 0]
        labels.append(" · ".join(top) or f"topic {g + 1}")
    return labels


class TopicModel:
    """Topics found in a set of questions, able to place a new question in one (or in none: -1)."""

    def __init__(self, topics: list[Topic], centre_rows: np.ndarray, min_similarity: float):
        self.topics, self.centre_rows, self.min_similarity = topics, centre_rows, min_similarity

    @classmethod
    def find(cls, texts: Sequence[str], encoder, examples: int = 3) -> tuple[TopicModel, np.ndarray]:
        """Group `texts` (one encoder's questions) into topics; also returns each text's topic number."""
        vectors = encoder.encode(list(texts), kind="query")
        link_distance = LINK_DISTANCE.get(encoder.name, LINK_DISTANCE["default"])
        groups = cluster(vectors, link_distance)
        centre_rows = centres(vectors, groups) if len(texts) else np.zeros((0, encoder.dim), np.float32)
        labels = topic_labels(texts, groups)
        topics = []
        for g, label in enumerate(labels):
            members = np.flatnonzero(groups == g)
            closest = members[np.argsort(-(vectors[members] @ centre_rows[g]))[:examples]]
            topics.append(Topic(g, label, len(members), tuple(texts[i] for i in closest)))
        return cls(topics, centre_rows, 1 - JOIN_REACH * link_distance), groups

    def assign(self, encoder, texts: Sequence[str]) -> list[tuple[int, float]]:
        """(topic id or -1 when no topic is close enough, cosine similarity) for each new question."""
        vectors = encoder.encode(list(texts), kind="query")
        best, similarity = nearest(self.centre_rows, vectors)
        return [(int(b) if s >= self.min_similarity else -1, float(s)) for b, s in zip(best, similarity, strict=True)]

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(folder / "topics.npz", centres=self.centre_rows)
        (folder / "topics.json").write_text(json.dumps({
            "min_similarity": self.min_similarity,
            "topics": [{"id": t.id, "label": t.label, "size": t.size, "examples": list(t.examples)}
                       for t in self.topics]}, ensure_ascii=False, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> TopicModel:
        meta = json.loads((folder / "topics.json").read_text(encoding="utf-8"))
        with np.load(folder / "topics.npz") as saved:
            centre_rows = saved["centres"]
        topics = [Topic(t["id"], t["label"], t["size"], tuple(t["examples"])) for t in meta["topics"]]
        return cls(topics, centre_rows, float(meta["min_similarity"]))


@dataclass(frozen=True)
class EncoderTopics:
    """The topics of the questions one encoder groups: which questions (`members`, indices), each one's topic."""

    encoder: object
    model: TopicModel
    members: np.ndarray
    groups: np.ndarray


def split_by_encoder(texts: Sequence[str], encoder_name: str) -> list[tuple[object, np.ndarray]]:
    """(encoder, indices of its texts): the texts `encoder_name` understands with it, the others with the
    multilingual encoder; an encoder with no text is left out."""
    from retrieval.embeddings import load_encoder

    main = load_encoder(encoder_name)
    understood = np.array([main.understands(t) for t in texts], dtype=bool)
    return [(encoder or load_encoder("multilingual-e5-small"), np.flatnonzero(mask))
            for mask, encoder in ((understood, main), (~understood, None)) if mask.any()]


def topics_by_encoder(texts: Sequence[str], encoder_name: str) -> list[EncoderTopics]:
    """The questions grouped as the product groups them: each encoder's (`split_by_encoder`) set apart."""
    parts = []
    for encoder, members in split_by_encoder(texts, encoder_name):
        model, found = TopicModel.find([texts[i] for i in members], encoder)
        parts.append(EncoderTopics(encoder, model, members, found))
    return parts


def combined(count: int, parts: Sequence[EncoderTopics]) -> tuple[np.ndarray, list[str]]:
    """Every question's topic number across the encoders' topics, and the topics' labels."""
    groups = np.full(count, -1)
    labels: list[str] = []
    for part in parts:
        groups[part.members] = part.groups + len(labels)
        labels += [t.label for t in part.model.topics]
    return groups, labels


def group_questions(texts: Sequence[str], encoder_name: str) -> tuple[np.ndarray, list[str]]:
    """Every question's topic number and the topics' labels, as the product groups them (`topics_by_encoder`)."""
    return combined(len(texts), topics_by_encoder(texts, encoder_name))
