"""Answer evaluation: questions through the serving layer (retrieval, the answer style, the model, the support
check) against reference answers.

File contract (DESIGN.md): JSONL `{"question": str, "answer": str (reference), "doc_ids": [str], "facts": [str]
(optional: what the answer must state), "answerable": bool (optional, default true)}`; a BEIR folder (each judged
query with its gold passage as the reference); or a clinc150-style JSON file (its `oos_*` utterances as unanswerable
questions). Metrics: token F1 and ROUGE-L, gold documents cited and retrieved, facts stated, supported sentences,
answers with an unsupported number, language match, and "don't know" precision/recall when some questions are
unanswerable.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import statistics
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignment.examples import SFTExample
from alignment.metrics import fact_stated, rouge_l, token_f1
from alignment.transcripts import InvalidLine
from assistant.prompt import cited_numbers, quoted_sources
from assistant.quantities import unsupported_quantities
from assistant.support_check import SupportChecker
from retrieval.loaders import BadLine, jsonl_objects

_DONT_KNOW = re.compile(
    r"\b(i (?:do not|don't) know|(?:could not|couldn't|cannot|can't) find|not sure)\b|不知道|没有找到", re.IGNORECASE)


@dataclass(frozen=True)
class EvalCase:
    question: str
    reference: str
    doc_ids: tuple[str, ...] = ()
    prompt: list[dict] | None = None  # what the model is asked; None: the answer needs no model (`canned`)
    source_ids: tuple[str, ...] = ()  # source [n] is source_ids[n-1]
    canned: str = ""
    answerable: bool = True
    facts: tuple[str, ...] = ()
    sources: tuple = ()  # what the answer is checked against (anything with `number`, `title`, `text`)
    prepared: Any = None  # the serving layer's PreparedChat, when the case went through it


def beir_answer_rows(folder: Path) -> list[dict]:
    """A BEIR folder as answer-evaluation rows: each judged query, its most relevant passage as the reference."""
    from retrieval.evaluation import load_beir

    corpus, queries, qrels = load_beir(folder)
    texts = {p.id: p.text for p in corpus}
    rows = []
    for query_id, relevant in qrels.items():
        gold = [d for d, _ in sorted(relevant.items(), key=lambda item: -item[1]) if d in texts]
        if query_id in queries and gold:
            rows.append({"question": queries[query_id], "answer": texts[gold[0]], "doc_ids": gold, "facts": [],
                         "answerable": True})
    return rows


def out_of_scope_rows(path: Path) -> list[dict]:
    """A clinc150-style JSON file (`{"oos_test": [[text, "oos"], ...], ...}`): its out-of-scope utterances as
    unanswerable questions."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidLine(f"{path}: not a JSON file ({exc})") from exc
    splits = [k for k in ("oos_test", "oos_val", "oos_train") if isinstance(data, dict) and k in data]
    if not splits:
        raise InvalidLine(f"{path}: a JSON question file needs an 'oos_test' list of [text, label] pairs")
    return [{"question": item[0], "answer": "", "doc_ids": [], "facts": [], "answerable": False}
            for item in data[splits[0]]]


def _row(row: dict, where: str) -> dict:
    answerable = row.get("answerable", True)
    if not isinstance(answerable, bool):
        raise InvalidLine(f"{where}: 'answerable' must be true or false")
    if not isinstance(row.get("question"), str) or not row["question"].strip():
        raise InvalidLine(f"{where}: 'question' must be a non-empty string")
    if answerable and (not isinstance(row.get("answer"), str) or not row["answer"].strip()):
        raise InvalidLine(f"{where}: 'answer' must be a non-empty string (or set \"answerable\": false)")
    for name in ("doc_ids", "facts"):
        value = row.get(name, [])
        if not isinstance(value, list) or not all(isinstance(d, str) for d in value):
            raise InvalidLine(f"{where}: '{name}' must be a list of strings")
    return {"question": row["question"], "answer": row.get("answer") or "", "doc_ids": row.get("doc_ids", []),
            "facts": row.get("facts", []), "answerable": answerable}


def load_answer_file(path: Path) -> list[dict]:
    """Rows of an answer-evaluation file (a JSONL file, a BEIR folder or a clinc150-style JSON file); a bad line
    stops with `file:line: reason`."""
    path = Path(path)
    if path.is_dir():
        return beir_answer_rows(path)
    if path.suffix == ".json":
        return out_of_scope_rows(path)
    rows = []
    with path.open(encoding="utf-8") as handle:
        try:
            rows = [_row(row, f"{path}:{line_no}") for line_no, row in jsonl_objects(handle)]
        except BadLine as exc:
            raise InvalidLine(f"{path}:{exc.line_no}: {exc.reason}") from exc
    if not rows:
        raise InvalidLine(f"{path}: no questions in the file")
    return rows


def cases_from_examples(examples: Sequence[SFTExample]) -> list[EvalCase]:
    """Held-out training examples as evaluation cases (the reference is the human reply; the answer is checked
    against the sources its prompt quotes)."""
    cases = []
    for example in examples:
        question = next(m["content"] for m in reversed(example.prompt) if m["role"] == "user")
        system = next((m["content"] for m in example.prompt if m["role"] == "system"), "")
        cases.append(EvalCase(question, example.reference, (), example.prompt, example.source_ids,
                              sources=tuple(quoted_sources(system))))
    return cases


def is_dont_know(answer: str) -> bool:
    return bool(_DONT_KNOW.search(answer))


def _mean(values: Sequence[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def _is_gold(source_id: str, gold: set[str]) -> bool:
    """A retrieved source is a gold document when the ids match or the source path ends with the id
    (`help-center/returns/refund-timing.md` for `returns/refund-timing.md`)."""
    return source_id in gold or any(source_id.endswith("/" + g) for g in gold)


def score(cases: Sequence[EvalCase], answers: Sequence[str], written: Sequence[str | None] | None = None,
          min_overlap: float | None = None) -> dict:
    """Metrics over the cases; `answers[i]` is what `cases[i]` was answered (what a customer would read),
    `written[i]` what the model wrote before the support check (None where it was not asked)."""
    checker_args = {} if min_overlap is None else {"min_overlap": min_overlap}
    f1s, rouges, cited_gold, retrieved_gold, dont_know, facts = [], [], [], [], [], []
    answered, dont_know_when_unanswerable = [], []
    claims = supported = 0
    numbers_invented, language_matches, check_ms = [], [], []
    written_claims = written_supported = 0
    written_numbers, written_facts, written_f1s = [], [], []  # the model's own answers, before the check
    for index, (case, answer) in enumerate(zip(cases, answers, strict=True)):
        said_dont_know = (case.prepared is not None and case.prepared.canned_reason == "no_relevant_source") \
            or is_dont_know(answer)
        dont_know.append(said_dont_know)
        if case.answerable:
            f1s.append(token_f1(answer, case.reference))
            if written is not None and written[index]:
                written_f1s.append(token_f1(written[index], case.reference))
            rouges.append(rouge_l(answer, case.reference))
            answered.append(not said_dont_know)
            if case.facts:
                facts.append(all(fact_stated(f, answer) for f in case.facts))
        else:
            dont_know_when_unanswerable.append(said_dont_know)
        if case.doc_ids:
            gold = set(case.doc_ids)
            cited = {case.source_ids[n - 1] for n in cited_numbers(answer) if 0 < n <= len(case.source_ids)}
            cited_gold.append(any(_is_gold(c, gold) for c in cited))
            retrieved_gold.append(any(_is_gold(s, gold) for s in case.source_ids))
        started = time.perf_counter()
        checker = SupportChecker(case.sources, case.question, **checker_args)
        verdict = checker.check(answer)
        elapsed_ms = (time.perf_counter() - started) * 1000
        language_matches.append(verdict.language_matches)
        if said_dont_know or not case.sources:
            continue
        check_ms.append(elapsed_ms)
        claims += len(verdict.sentences)
        supported += sum(v.supported for v in verdict.sentences)
        numbers_invented.append(bool(unsupported_quantities(answer, checker.facts)))
        own = written[index] if written is not None else None
        if own:
            own_verdict = checker.check(own)
            written_claims += len(own_verdict.sentences)
            written_supported += sum(v.supported for v in own_verdict.sentences)
            written_numbers.append(bool(unsupported_quantities(own, checker.facts)))
            if case.facts:
                written_facts.append(all(fact_stated(f, own) for f in case.facts))
    result = {
        "questions": len(cases),
        "token_f1": _mean(f1s) or 0.0,
        "rouge_l": _mean(rouges) or 0.0,
        "dont_know_rate": _mean(dont_know) or 0.0,
        "answered_rate": _mean(answered),
        "facts_stated_rate": _mean(facts),
        "supported_sentence_rate": round(supported / claims, 4) if claims else None,
        "unsupported_number_rate": _mean(numbers_invented),
        "language_match_rate": _mean(language_matches),
        "gold_citation_rate": _mean(cited_gold),
        "gold_retrieved_rate": _mean(retrieved_gold),
        "written_token_f1": _mean(written_f1s),
        "written_supported_rate": round(written_supported / written_claims, 4) if written_claims else None,
        "written_unsupported_number_rate": _mean(written_numbers),
        "written_facts_stated_rate": _mean(written_facts),
        "check_ms_p95": round(sorted(check_ms)[int(0.95 * (len(check_ms) - 1))], 2) if check_ms else None,
    }
    result |= relevance_thresholds(cases)
    if dont_know_when_unanswerable:
        unanswerable = [not c.answerable for c in cases]
        said = [u for u, d in zip(unanswerable, dont_know, strict=True) if d]
        result["dont_know_recall"] = _mean(dont_know_when_unanswerable)
        result["dont_know_precision"] = _mean(said)
    return {k: v for k, v in result.items() if v is not None}


def relevance_thresholds(cases: Sequence[EvalCase], least: int = 5) -> dict:
    """Per language with at least `least` answerable and unanswerable questions: the relevance bar that best
    separates them (highest balanced accuracy; the middle of the best range), as `min_relevance_measured_<lang>`:
    what to set `retrieval.min_relevance` (`_zh`) to."""
    from assistant.support_check import language_of

    measured = {}
    by_language: dict[str, list[tuple[float, bool]]] = {}
    for case in cases:
        if case.prepared is not None and case.prepared.relevance is not None:
            by_language.setdefault(language_of(case.question), []).append((case.prepared.relevance, case.answerable))
    for language, pairs in sorted(by_language.items()):
        inside = [r for r, a in pairs if a]
        outside = [r for r, a in pairs if not a]
        if len(inside) < least or len(outside) < least:
            continue
        bars = [i / 100 for i in range(1, 100)]
        accuracy = [(sum(r >= b for r in inside) / len(inside) + sum(r < b for r in outside) / len(outside)) / 2
                    for b in bars]
        best = max(accuracy)
        top = [b for b, a in zip(bars, accuracy, strict=True) if a == best]
        measured[f"min_relevance_measured_{language}"] = top[len(top) // 2]
        measured[f"min_relevance_accuracy_{language}"] = round(best, 4)
    return measured


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


@dataclass(frozen=True)
class _PlannedEngine:
    """The model to evaluate as the serving layer sees it before it runs: its name and context window."""

    name: str
    window: Any

    def model_names(self) -> list[str]:
        return [self.name]

    def context_window(self):
        return self.window


def _knowledge(settings, corpus: Path | None, progress: bool):
    """The grounder: over a BEIR corpus (indexed once, cached), or the deployment's own knowledge base."""
    from assistant.grounding import Grounder
    from retrieval.evaluation import load_corpus

    if corpus is None:
        grounder = Grounder(settings.retrieval, settings.knowledge_dir)
    else:
        corpus = corpus / "corpus.jsonl" if corpus.is_dir() else corpus
        grounder = Grounder(settings.retrieval.model_copy(update={"sources": []}),
                            corpus_knowledge_dir(settings.home_dir, corpus, settings.retrieval.encoder))
        if len(grounder.knowledge_base) == 0:
            grounder.knowledge_base.replace_all(load_corpus(corpus), progress=progress)
    grounder.prepare(progress=progress)
    return grounder


def evaluate_answer_file(loaded, file: Path, corpus: Path | None, model_spec: str = "current",
                         limit: int | None = None, max_new_tokens: int = 128, progress: bool = True,
                         answerer=None) -> dict:
    """`assistant eval answers`: every question through the serving layer as a customer's would go (retrieval,
    the configured answer style, the model when it writes, the support check), scored against the references.
    `corpus` None: the deployment's own knowledge base. `answerer`: an `Answerer` whose engine stays up for the
    caller's next pass with the same model (else one is started and stopped here)."""
    from tqdm import tqdm

    from alignment.answering import Answerer
    from assistant.chat_serving import ChatServing
    from assistant.engines import served_window
    from assistant.engines.base import ChatMessage
    from assistant.runtime import choose_engine, model_by_spec

    settings = loaded.settings
    rows = load_answer_file(file)[:limit]
    model = model_by_spec(model_spec, settings)
    grounder = _knowledge(settings, corpus, progress)
    engine = choose_engine(loaded)
    window = served_window(settings.model_copy(update={"engine": engine}), model)
    generation = settings.generation.model_copy(update={"max_new_tokens": max_new_tokens})
    serving = ChatServing(settings.model_copy(update={"generation": generation}), _PlannedEngine(model.name, window),
                          grounder)

    async def prepare_all() -> list:
        return [await serving.prepare([ChatMessage("user", row["question"])])
                for row in tqdm(rows, desc="grounding", unit="question", disable=not progress)]

    prepared = asyncio.run(prepare_all())
    cases = []
    for row, ready in zip(rows, prepared, strict=True):
        asks_model = ready.canned is None and ready.style != "grounded"
        prompt = [{"role": m.role, "content": m.content} for m in ready.messages] if asks_model else None
        cases.append(EvalCase(row["question"], row["answer"], tuple(row["doc_ids"]), prompt,
                              tuple(s.source for s in ready.sources), answerable=row["answerable"],
                              facts=tuple(row["facts"]), sources=tuple(ready.sources), prepared=ready))
    needed = [i for i, c in enumerate(cases) if c.prompt is not None]
    prompts = [cases[i].prompt for i in needed]
    with Answerer(settings, engine) if answerer is None else nullcontext(answerer) as answering:
        produced = answering.answer(model, prompts, max_new_tokens, label="answers")
    written: list[str | None] = [None] * len(cases)
    for index, text in zip(needed, produced, strict=True):
        written[index] = text

    async def send_all() -> list[str]:
        return [(await serving.sent_answer(c.prepared, w))[0] for c, w in zip(cases, written, strict=True)]

    answers = asyncio.run(send_all())
    metrics = score(cases, answers, written, settings.answers.min_overlap)
    styles = {c.prepared.style for c in cases if c.prepared.canned is None}
    return metrics | {"model": model.name, "answer_style": "/".join(sorted(styles)) or "none"}
