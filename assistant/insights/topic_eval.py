"""`assistant eval topics`: group labelled questions exactly as the product does and compare with the labels."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from assistant.errors import AssistantError


class TopicDataError(AssistantError, ValueError):
    """A topic evaluation file that cannot be used; the message says where."""


@dataclass
class LabelledTexts:
    texts: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # `file:line: reason` of each skipped line


def read_topic_file(path: Path, strict: bool = False) -> LabelledTexts:
    """JSONL `{"text": str, "label": str}`; bad lines are skipped (or, `strict`, stop with `file:line: reason`)."""
    from retrieval.loaders import BadLine, json_object

    if not path.is_file():
        raise TopicDataError(f"{path}: no such file")
    data = LabelledTexts()
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            row = json_object(line, line_no)
            if row is None:
                continue
            text, label = row.get("text"), row.get("label")
            if not isinstance(text, str) or not text.strip():
                raise BadLine(line_no, "field 'text' must be a non-empty string")
            if not isinstance(label, str | int) or not str(label).strip():
                raise BadLine(line_no, "field 'label' must be a non-empty string")
        except BadLine as exc:
            if strict:
                raise TopicDataError(f"{path}:{exc}") from exc
            data.errors.append(f"{path}:{exc}")
            continue
        data.texts.append(text.strip())
        data.labels.append(str(label))
    if len(data.texts) < 2:
        raise TopicDataError(f"{path}: needs at least 2 labelled texts, found {len(data.texts)}")
    return data


def evaluate_topics(data: LabelledTexts, encoder_name: str, probes: int = 200) -> dict:
    """NMI and ARI of the product's grouping against the labels, how long it took, and how long assigning one new
    question to the topics takes (p50/p95 over `probes` questions, one at a time)."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    from assistant.insights.topics import combined, topics_by_encoder
    from retrieval.embeddings import load_encoder

    encoder = load_encoder(encoder_name)  # loading the model is not grouping
    start = time.perf_counter()
    parts = topics_by_encoder(data.texts, encoder_name)
    groups, labels = combined(len(data.texts), parts)
    seconds = time.perf_counter() - start
    sizes = np.bincount(groups)
    latencies = []
    understood = next((part for part in parts if part.encoder is encoder), None)  # the questions it understands
    for index in understood.members[:probes] if understood else []:
        began = time.perf_counter()
        understood.model.assign(encoder, [data.texts[index]])
        latencies.append((time.perf_counter() - began) * 1000)
    return {
        "texts": len(data.texts), "labels": len(set(data.labels)), "topics": len(labels),
        "topics_of_3_or_more": int((sizes >= 3).sum()),
        "nmi": round(float(normalized_mutual_info_score(data.labels, groups)), 4),
        "ari": round(float(adjusted_rand_score(data.labels, groups)), 4),
        "seconds": round(seconds, 2),
        "assign_ms_p50": round(float(np.percentile(latencies, 50)), 2) if latencies else None,
        "assign_ms_p95": round(float(np.percentile(latencies, 95)), 2) if latencies else None,
        "encoder": encoder_name,
        "largest_topics": [{"label": labels[g], "size": int(sizes[g])} for g in range(min(10, len(labels)))],
    }
