"""`assistant eval curated`: how precise curated-answer matching is, and how many questions it answers, at each
similarity threshold, on a BEIR FAQ folder (questions -> their answer).

Two protocols, reported side by side:
- `all curated` (what a team that curated its whole FAQ sees): every answer is curated with its first question;
  the other questions are asked; a match is right when it is the question's own answer.
- `half curated` (what the questions of answers nobody curated do): only every other answer is curated; every
  question not curated is asked; a question whose answer is not curated must match nothing.
A match is right when it is the question's own answer or one with the same text (FAQs repeat answers under other
ids). precision = right matches / matches; coverage = right matches / questions whose answer is curated.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from assistant.insights.curated import QuestionMatcher

THRESHOLDS = tuple(round(float(t), 2) for t in np.arange(0.50, 1.0, 0.01))


def _same(text: str) -> str:
    return " ".join(text.lower().split())


def _protocol(encoder, questions: dict[str, str], answer_of: dict[str, str], first: dict[str, str],
              curated_answers: list[str], answer_text: dict[str, str]) -> list[dict]:
    curated_questions = [first[a] for a in curated_answers]
    matcher = QuestionMatcher(encoder, [questions[q] for q in curated_questions])
    asked = [q for q in questions if q in answer_of and q not in set(curated_questions)]
    curated = set(curated_answers)
    found = [matcher.nearest(questions[q]) for q in asked]
    said = {_same(answer_text[a]) for a in curated}
    positives = sum(answer_of[q] in curated or _same(answer_text[answer_of[q]]) in said for q in asked)
    rows = []
    for threshold in THRESHOLDS:
        matched = right = 0
        for q, (index, similarity) in zip(asked, found, strict=True):
            if index >= 0 and similarity >= threshold:
                matched += 1
                right += _same(answer_text[curated_answers[index]]) == _same(answer_text[answer_of[q]])
        rows.append({"threshold": threshold, "asked": len(asked), "curated_questions": positives,
                     "matched": matched, "right": right,
                     "precision": round(right / matched, 4) if matched else None,
                     "coverage": round(right / positives, 4) if positives else None})
    return rows


def evaluate_curated(folder: Path, encoder_name: str, min_precision: float = 0.95) -> dict:
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
    runs = {"all curated": _protocol(encoder, questions, answer_of, first, answers, text),
            "half curated": _protocol(encoder, questions, answer_of, first, answers[::2], text)}

    def precise(threshold: float) -> bool:
        at_threshold = [next(r for r in rows if r["threshold"] == threshold) for rows in runs.values()]
        return all(r["precision"] is None or r["precision"] >= min_precision for r in at_threshold)

    chosen = next((t for t in THRESHOLDS if precise(t)), None)
    at = {name: next(r for r in rows if r["threshold"] == chosen) for name, rows in runs.items()} if chosen else {}
    return {"folder": str(folder), "encoder": encoder_name, "answers": len(answers), "questions": len(answer_of),
            "min_precision": min_precision, "chosen_threshold": chosen, "at_chosen": at, "runs": runs}
