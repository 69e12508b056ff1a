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

from assistant.insights.curated import QuestionMatcher, agree

THRESHOLDS = tuple(round(float(t), 2) for t in np.arange(0.50, 1.0, 0.01))


def _same(text: str) -> str:
    return " ".join(text.lower().split())


def _words(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def _protocol(encoder, questions: dict[str, str], answer_of: dict[str, str], first: dict[str, str],
              curated_answers: list[str], answer_text: dict[str, str], margin: float) -> list[dict]:
    curated_questions = [first[a] for a in curated_answers]
    matcher = QuestionMatcher(encoder, [questions[q] for q in curated_questions])
    said_by = {}
    for q, a in zip(curated_questions, curated_answers, strict=True):
        said_by.setdefault(_words(questions[q]), set()).add(_same(answer_text[a]))
    asked = [q for q in questions if q in answer_of and q not in set(curated_questions)]
    ambiguous = [q for q in asked if said_by.get(_words(questions[q]), set()) - {_same(answer_text[answer_of[q]])}]
    asked = [q for q in asked if q not in set(ambiguous)]
    curated = set(curated_answers)
    found = [matcher.nearest(questions[q], margin) for q in asked]
    said = {_same(answer_text[a]) for a in curated}
    positives = sum(answer_of[q] in curated or _same(answer_text[answer_of[q]]) in said for q in asked)
    rows = []
    for threshold in THRESHOLDS:
        matched = right = 0
        for q, close in zip(asked, found, strict=True):
            if close and close[0][1] >= threshold and agree([answer_text[curated_answers[i]] for i, _ in close]):
                matched += 1
                right += _same(answer_text[curated_answers[close[0][0]]]) == _same(answer_text[answer_of[q]])
        rows.append({"threshold": threshold, "asked": len(asked), "ambiguous_in_data": len(ambiguous),
                     "curated_questions": positives, "matched": matched, "right": right,
                     "precision": round(right / matched, 4) if matched else None,
                     "coverage": round(right / positives, 4) if positives else None})
    return rows


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
    chosen = next((r["threshold"] for r in runs["all curated"] if r["matched"] and r["precision"] >= min_precision),
                  None)
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
    found = [matcher.nearest(text, margin) for text, _ in asked]
    rows = []
    for threshold in THRESHOLDS:
        matched = right = 0
        for (_, label), close in zip(asked, found, strict=True):
            if close and close[0][1] >= threshold and len({curated[i][1] for i, _ in close}) == 1:
                matched += 1
                right += curated[close[0][0]][1] == label
        rows.append({"threshold": threshold, "asked": len(asked), "curated_questions": len(asked),
                     "matched": matched, "right": right,
                     "precision": round(right / matched, 4) if matched else None,
                     "coverage": round(right / len(asked), 4) if asked else None})
    chosen = next((r["threshold"] for r in rows if r["matched"] and r["precision"] >= min_precision), None)
    return {"file": str(path), "encoder": encoder_name, "curated": len(curated), "questions": len(asked),
            "per_label": per_label, "min_precision": min_precision, "margin": margin, "chosen_threshold": chosen,
            "at_chosen": {"labelled": next(r for r in rows if r["threshold"] == chosen)} if chosen else {},
            "runs": {"labelled": rows}, "skipped_lines": data.errors}
