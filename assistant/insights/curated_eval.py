"""`assistant eval curated`: how precise curated-answer matching is, and how many questions it answers, at each
similarity threshold, on a BEIR FAQ folder (questions -> their answer), or on labelled questions (JSONL `{"text",
"label"}`, as `eval topics`: the first `per_label` questions of each label are curated with the label as their answer,
the others are asked; a match is right when it has the question's label).

Two protocols, reported side by side:
- `all curated` (what a team that curated its whole FAQ sees): every answer is curated with its first question;
  the other questions are asked; a match is right when it is the question's own answer.
- `half curated` (what the questions of answers nobody curated do): only every other answer is curated; every
  question not curated is asked; a question whose answer is not curated must match nothing.
A match is right when it is the question's own answer or one with the same text (FAQs repeat answers under other
ids). precision = right matches / matches; coverage = right matches / questions whose answer is curated. Matching is
the product's: the nearest curated question at or above the threshold, unless a curated question within the margin
has another answer (`CuratedAnswers.match`). A question whose words are those of a curated question with another
answer cannot be told apart by any matcher: it is counted as `ambiguous_in_data` and left out.

The threshold is chosen on `all curated` (the protocol of issue 16). `half curated` is reported beside it: on a FAQ
that repeats its questions per product word for word, a question whose own answer is not curated finds its twin.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from assistant.insights.curated import QuestionMatcher, said_alike

THRESHOLDS = tuple(round(float(t), 2) for t in np.arange(0.50, 1.0, 0.01))


def _words(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def _sweep(found: list[list[tuple[int, float]]], curated_keys: list[str], asked_keys: list[str],
           positives: int) -> list[dict]:
    """Precision and coverage at each threshold. `found`: each asked question's nearest curated questions (within
    the margin); a question matches when the nearest reaches the threshold and all of them have one key (answer or
    label, as `CuratedAnswers.match`), and the match is right when that key is the question's own."""
    rows = []
    for threshold in THRESHOLDS:
        matched = right = 0
        for close, key in zip(found, asked_keys, strict=True):
            if close and close[0][1] >= threshold and len({curated_keys[i] for i, _ in close}) == 1:
                matched += 1
                right += curated_keys[close[0][0]] == key
        rows.append({"threshold": threshold, "asked": len(asked_keys), "curated_questions": positives,
                     "matched": matched, "right": right,
                     "precision": round(right / matched, 4) if matched else None,
                     "coverage": round(right / positives, 4) if positives else None})
    return rows


def _chosen(rows: list[dict], min_precision: float) -> float | None:
    """The lowest threshold whose precision reaches `min_precision` (with at least one match)."""
    return next((r["threshold"] for r in rows if r["matched"] and r["precision"] >= min_precision), None)


def _protocol(encoder, questions: dict[str, str], answer_of: dict[str, str], first: dict[str, str],
              curated_answers: list[str], answer_text: dict[str, str], margin: float) -> list[dict]:
    said = {a: said_alike(answer_text[a]) for a in set(answer_of.values())}
    curated_questions = [first[a] for a in curated_answers]
    matcher = QuestionMatcher(encoder, [questions[q] for q in curated_questions])
    said_by = {}
    for q, a in zip(curated_questions, curated_answers, strict=True):
        said_by.setdefault(_words(questions[q]), set()).add(said[a])
    asked = [q for q in questions if q in answer_of and q not in set(curated_questions)]
    ambiguous = [q for q in asked if said_by.get(_words(questions[q]), set()) - {said[answer_of[q]]}]
    asked = [q for q in asked if q not in set(ambiguous)]
    curated_said = {said[a] for a in curated_answers}
    positives = sum(said[answer_of[q]] in curated_said for q in asked)
    rows = _sweep([matcher.nearest(questions[q], margin) for q in asked], [said[a] for a in curated_answers],
                  [said[answer_of[q]] for q in asked], positives)
    return [{**r, "ambiguous_in_data": len(ambiguous)} for r in rows]


def evaluate_curated(folder: Path, encoder_name: str, min_precision: float = 0.95, margin: float = 0.03) -> dict:
    from retrieval.embeddings import load_encoder
    from retrieval.evaluation import load_beir

    corpus, questions, qrels = load_beir(folder)
    answer_of = {q: next(iter(docs)) for q, docs in qrels.items() if q in questions and docs}
    first: dict[str, str] = {}
    for q, a in answer_of.items():
        first.setdefault(a, q)
    answers = list(first)
    encoder = load_encoder(encoder_name)
    text = {p.id: p.text for p in corpus}
    runs = {"all curated": _protocol(encoder, questions, answer_of, first, answers, text, margin),
            "half curated": _protocol(encoder, questions, answer_of, first, answers[::2], text, margin)}
    chosen = _chosen(runs["all curated"], min_precision)
    at = {name: next(r for r in rows if r["threshold"] == chosen) for name, rows in runs.items()} if chosen else {}
    return {"folder": str(folder), "encoder": encoder_name, "answers": len(answers), "questions": len(answer_of),
            "min_precision": min_precision, "margin": margin, "chosen_threshold": chosen, "at_chosen": at, "runs": runs}


def evaluate_curated_labelled(path: Path, encoder_name: str, min_precision: float = 0.95, margin: float = 0.03,
                              per_label: int = 5) -> dict:
    """The labelled-questions protocol (module docstring)."""
    from assistant.insights.topic_eval import read_topic_file
    from retrieval.embeddings import load_encoder

    data = read_topic_file(path)
    seen: dict[str, int] = {}
    curated, asked = [], []
    for text, label in zip(data.texts, data.labels, strict=True):
        seen[label] = seen.get(label, 0) + 1
        (curated if seen[label] <= per_label else asked).append((text, label))
    matcher = QuestionMatcher(load_encoder(encoder_name), [text for text, _ in curated])
    rows = _sweep([matcher.nearest(text, margin) for text, _ in asked], [label for _, label in curated],
                  [label for _, label in asked], len(asked))
    chosen = _chosen(rows, min_precision)
    return {"file": str(path), "encoder": encoder_name, "curated": len(curated), "questions": len(asked),
            "per_label": per_label, "min_precision": min_precision, "margin": margin, "chosen_threshold": chosen,
            "at_chosen": {"labelled": next(r for r in rows if r["threshold"] == chosen)} if chosen else {},
            "runs": {"labelled": rows}, "skipped_lines": data.errors}
