"""Answer evaluation: questions through the full pipeline (retrieval + prompt + model) against reference answers.

File contract (DESIGN.md): JSONL `{"question": str, "answer": str (reference), "doc_ids": [str]}` against a BEIR
`corpus.jsonl`. Metrics: token F1 and ROUGE-L against the reference, the share of answers that cite a gold
document, the share of questions whose gold document was among the sources, and the "don't know" rate.
"""

from __future__ import annotations

import hashlib
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from alignment.examples import PromptBuilder, SFTExample
from alignment.metrics import rouge_l, token_f1
from alignment.transcripts import InvalidLine
from assistant.prompt import cited_numbers, dont_know_answer
from retrieval.loaders import BadLine, jsonl_objects

_DONT_KNOW = re.compile(
    r"\b(i (?:do not|don't) know|(?:could not|couldn't|cannot|can't) find|not sure)\b|不知道|没有找到", re.IGNORECASE)


@dataclass(frozen=True)
class EvalCase:
    question: str
    reference: str
    doc_ids: tuple[str, ...] = ()
    prompt: list[dict] | None = None  # None: serving answers without the model (nothing relevant found)
    source_ids: tuple[str, ...] = ()  # source [n] is source_ids[n-1]
    canned: str = ""


def beir_answer_rows(folder: Path) -> list[dict]:
    """A BEIR folder as answer-evaluation rows: each judged query, its most relevant passage as the reference."""
    from retrieval.evaluation import load_beir

    corpus, queries, qrels = load_beir(folder)
    texts = {p.id: p.text for p in corpus}
    rows = []
    for query_id, relevant in qrels.items():
        gold = [d for d, _ in sorted(relevant.items(), key=lambda item: -item[1]) if d in texts]
        if query_id in queries and gold:
            rows.append({"question": queries[query_id], "answer": texts[gold[0]], "doc_ids": gold})
    return rows


def load_answer_file(path: Path) -> list[dict]:
    """Rows of an answer-evaluation file (or of a BEIR folder); a bad line stops with `file:line: reason`."""
    if Path(path).is_dir():
        return beir_answer_rows(Path(path))
    rows = []
    with Path(path).open(encoding="utf-8") as handle:
        try:
            for line_no, row in jsonl_objects(handle):
                where = f"{path}:{line_no}"
                for name in ("question", "answer"):
                    if not isinstance(row.get(name), str) or not row[name].strip():
                        raise InvalidLine(f"{where}: '{name}' must be a non-empty string")
                doc_ids = row.get("doc_ids", [])
                if not isinstance(doc_ids, list) or not all(isinstance(d, str) for d in doc_ids):
                    raise InvalidLine(f"{where}: 'doc_ids' must be a list of document ids (strings)")
                rows.append({"question": row["question"], "answer": row["answer"], "doc_ids": doc_ids})
        except BadLine as exc:
            raise InvalidLine(f"{path}:{exc.line_no}: {exc.reason}") from exc
    if not rows:
        raise InvalidLine(f"{path}: no questions in the file")
    return rows


def cases_from_questions(rows: Sequence[dict], grounder, builder: PromptBuilder, company: str) -> list[EvalCase]:
    """What serving would do with each question: the grounded prompt, or the "don't know" reply."""
    cases = []
    for row in rows:
        grounding = grounder.ground(row["question"]) if grounder is not None else None
        doc_ids = tuple(row["doc_ids"])
        if grounding is not None and not grounding.relevant:
            cases.append(EvalCase(row["question"], row["answer"], doc_ids,
                                  canned=dont_know_answer(row["question"], company)))
            continue
        sources = grounding.sources if grounding else []
        prompt = builder.prompt([{"role": "user", "content": row["question"]}], sources)
        cases.append(EvalCase(row["question"], row["answer"], doc_ids, prompt, tuple(s.source for s in sources)))
    return cases


def cases_from_examples(examples: Sequence[SFTExample]) -> list[EvalCase]:
    """Held-out training examples as evaluation cases (the reference is the human reply)."""
    cases = []
    for example in examples:
        question = next(m["content"] for m in reversed(example.prompt) if m["role"] == "user")
        cases.append(EvalCase(question, example.reference, (), example.prompt, example.source_ids))
    return cases


def is_dont_know(answer: str) -> bool:
    return bool(_DONT_KNOW.search(answer))


def score(cases: Sequence[EvalCase], answers: Sequence[str]) -> dict:
    """Average metrics over the cases; `answers[i]` answers `cases[i]` (canned replies already filled in)."""
    f1s, rouges, cited_gold, retrieved_gold, dont_know = [], [], [], [], []
    judged = 0
    for case, answer in zip(cases, answers, strict=True):
        f1s.append(token_f1(answer, case.reference))
        rouges.append(rouge_l(answer, case.reference))
        dont_know.append(bool(case.canned) or is_dont_know(answer))
        if case.doc_ids:
            judged += 1
            gold = set(case.doc_ids)
            cited = {case.source_ids[n - 1] for n in cited_numbers(answer) if 0 < n <= len(case.source_ids)}
            cited_gold.append(bool(cited & gold))
            retrieved_gold.append(bool(set(case.source_ids) & gold))
    result = {
        "questions": len(cases),
        "token_f1": round(statistics.fmean(f1s), 4) if f1s else 0.0,
        "rouge_l": round(statistics.fmean(rouges), 4) if rouges else 0.0,
        "dont_know_rate": round(statistics.fmean(dont_know), 4) if dont_know else 0.0,
    }
    if judged:
        result["gold_citation_rate"] = round(statistics.fmean(cited_gold), 4)
        result["gold_retrieved_rate"] = round(statistics.fmean(retrieved_gold), 4)
    return result


def evaluate_cases(cases: Sequence[EvalCase], answer_fn) -> tuple[dict, list[str]]:
    """Answer the cases that need the model with `answer_fn(prompts) -> answers`, then score everything."""
    needed = [i for i, c in enumerate(cases) if c.prompt is not None]
    produced = answer_fn([cases[i].prompt for i in needed])
    answers = [c.canned for c in cases]
    for index, answer in zip(needed, produced, strict=True):
        answers[index] = answer
    return score(cases, answers), answers


def corpus_knowledge_dir(home: Path, corpus: Path, encoder: str) -> Path:
    """A cached knowledge base per corpus file and encoder (re-encoded only when the file changes)."""
    stat = corpus.stat()
    key = hashlib.sha256(f"{corpus.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{encoder}".encode()).hexdigest()
    return home / "eval-knowledge" / key[:12]


def resolve_model_for_eval(spec: str, settings):
    """'current' (what serves now), 'base' (the configured model), a registered version id, or a model spec."""
    from assistant.model_files import ResolvedModel, resolve_model
    from assistant.runtime import model_registry, serving_model

    if spec == "current":
        return serving_model(settings)[0]
    if spec == "base":
        return resolve_model(settings.model, settings.models_dir)
    if spec.startswith("v") and spec[1:].isdigit():
        registry = model_registry(settings)
        version = registry.get(spec)
        registry.verify(version)
        return ResolvedModel(version.served_name, str(version.model_dir))
    return resolve_model(spec, settings.models_dir)


def evaluate_answer_file(loaded, file: Path, corpus: Path, model_spec: str = "current", limit: int | None = None,
                         max_new_tokens: int = 128, progress: bool = True) -> dict:
    """`assistant eval answers`: index the corpus (cached), ground each question as serving does, answer it
    with the model through the serving engine, score against the references."""
    from alignment.answering import answer_prompts
    from assistant.engines import served_window
    from assistant.grounding import Grounder
    from assistant.prompt import PromptRoom
    from assistant.runtime import choose_engine
    from retrieval.evaluation import load_corpus

    settings = loaded.settings
    corpus = corpus / "corpus.jsonl" if corpus.is_dir() else corpus
    rows = load_answer_file(file)[:limit]
    model = resolve_model_for_eval(model_spec, settings)
    grounder = Grounder(settings.retrieval.model_copy(update={"sources": []}),
                        corpus_knowledge_dir(settings.home_dir, corpus, settings.retrieval.encoder))
    if len(grounder.knowledge_base) == 0:
        grounder.knowledge_base.replace_all(load_corpus(corpus), progress=progress)
    grounder.prepare(progress=progress)
    engine = choose_engine(loaded)
    window = served_window(settings.model_copy(update={"engine": engine}), model)
    builder = PromptBuilder(settings.rendered_system_prompt(), max_history=settings.max_history_messages,
                            room=PromptRoom(window, max_new_tokens))
    cases = cases_from_questions(rows, grounder, builder, settings.company_name)
    metrics, _ = evaluate_cases(cases, lambda prompts: answer_prompts(
        settings, model, engine, prompts, max_new_tokens, label="answers"))
    return metrics | {"model": model.name}
