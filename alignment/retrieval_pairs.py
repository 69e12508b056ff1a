"""Training data for retrieval: (question, relevant passage) pairs from what a company has, hard negatives mined from
its own index, and a held-out split.

Sources: FAQ files (question -> answer), BEIR folders (queries + qrels), pair files (two texts that mean the same,
CSV or JSONL, an optional 0/1 label; label 0 gives a negative, never a positive), transcripts (the customer's question
-> the knowledge-base passage that supports the human agent's reply) and the store (a rated-up answer's question ->
the passage it cited; an operator's correction -> the passage that supports the correction). Pairs from transcripts
and the store take a passage only when it supports the reply well enough, so no pair is invented. Every pair says
where it came from (`file:line`, `store:conversation`), so a bad one can be found and fixed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

from alignment.transcripts import parse_transcript, read_file
from assistant.errors import AssistantError
from retrieval.evaluation import load_beir
from retrieval.knowledge_base import KnowledgeBase
from retrieval.loaders import SkippedFile, load_file

MIN_SUPPORT = 0.6  # relevance (0..1) a passage needs to the reply it should support
CITED = re.compile(r"\[(\d+)\]")

TEXT_COLUMNS = (("question", "passage"), ("query", "positive"), ("sentence1", "sentence2"), ("text_a", "text_b"))
PARAPHRASE_COLUMNS = (("sentence1", "sentence2"), ("text_a", "text_b"))  # two texts that mean the same


class PairError(AssistantError, ValueError):
    """Bad training pairs: the message names the file and line."""


@dataclass(frozen=True)
class RetrievalPair:
    """A question and a passage that answers it (`label` 1), or one that does not (`label` 0)."""

    question: str
    passage: str
    origin: str  # file:line
    label: int = 1
    # two texts that mean the same (a pair file's sentence1/sentence2): the index's best matches for one of them
    # are often paraphrases too, so no negatives are mined for it
    paraphrase: bool = False


@dataclass
class PairSet:
    """Positives, the negatives known for a question (label-0 pairs, then mined ones), and what was dropped why."""

    positives: list[RetrievalPair] = field(default_factory=list)
    negatives: dict[str, list[str]] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)

    def add(self, pairs: Iterable[RetrievalPair]) -> None:
        seen = {(text_key(p.question), text_key(p.passage)) for p in self.positives}
        for pair in pairs:
            key = (text_key(pair.question), text_key(pair.passage))
            if pair.label == 0:
                self.negatives.setdefault(key[0], []).append(pair.passage)
            elif key in seen:
                self.dropped["duplicate"] = self.dropped.get("duplicate", 0) + 1
            else:
                seen.add(key)
                self.positives.append(pair)


def text_key(text: str) -> str:
    """What makes two texts the same question or passage here: spacing and case aside."""
    return " ".join(text.split()).casefold()


def _pair(question, passage, origin: str, label=1, paraphrase: bool = False) -> RetrievalPair:
    question, passage = (str(t or "").replace("\ufeff", "").strip() for t in (question, passage))
    if not question or not passage:
        raise PairError(f"{origin}: {'the question' if not question else 'the passage'} is empty")
    if str(label).strip() not in ("0", "1"):
        raise PairError(f"{origin}: label must be 0 or 1, not {label!r}")
    return RetrievalPair(question, passage, origin, int(str(label).strip()), paraphrase)


def faq_pairs(path: Path) -> list[RetrievalPair]:
    """Each FAQ entry (JSONL or CSV with question and answer) as question -> answer."""
    try:
        documents = load_file(Path(path), str(path))
    except (SkippedFile, OSError) as exc:
        raise PairError(f"{path}: {exc}") from exc
    return [_pair(d.title, d.text, f"{path}:{i}") for i, d in enumerate(documents, 1) if d.kind == "faq"]


def beir_pairs(folder: Path) -> list[RetrievalPair]:
    """Every judged (query, passage) of a BEIR folder; a qrel naming an unknown query or passage is an error."""
    corpus, queries, qrels = load_beir(Path(folder))
    passages = {p.id: f"{p.title}\n{p.text}".strip() for p in corpus}
    pairs = []
    for query_id, judged in qrels.items():
        for passage_id in judged:
            if query_id not in queries or passage_id not in passages:
                missing = f"query {query_id}" if query_id not in queries else f"passage {passage_id}"
                raise PairError(f"{folder}/qrels.tsv: {missing} is not in the folder")
            pairs.append(_pair(queries[query_id], passages[passage_id], f"{folder}/qrels.tsv:{query_id}"))
    return pairs


def supporting_passage(kb: KnowledgeBase, reply: str, min_support: float = MIN_SUPPORT) -> str | None:
    """The knowledge-base passage that best supports `reply` (as indexed: heading and text), if it is relevant
    enough."""
    hits = kb.search(reply, 1)
    return hits[0].passage.indexed_text() if hits and hits[0].relevance >= min_support else None


def transcript_pairs(path: Path, kb: KnowledgeBase, min_support: float = MIN_SUPPORT) -> list[RetrievalPair]:
    """Each customer question a human agent answered -> the passage that supports the agent's reply; replies no
    passage supports give no pair. A line that breaks the transcript contract is an error (`file:line`)."""
    read = read_file(Path(path), parse_transcript, strict=True)
    pairs = []
    for transcript in read.rows:
        for asked, reply in pairwise(transcript.messages):
            if asked["role"] == "user" and reply["role"] == "agent":
                passage = supporting_passage(kb, reply["content"], min_support)
                if passage:
                    pairs.append(_pair(asked["content"], passage, transcript.where))
    return pairs


def store_pairs(conversations: list[dict], kb: KnowledgeBase, min_support: float = MIN_SUPPORT) -> list[RetrievalPair]:
    """From stored conversations (`conversations_for_alignment`): an answer rated up -> each passage it cited (the
    sources numbered in it, else its first); an operator's correction -> the passage that supports the correction."""
    pairs = []
    for conversation in conversations:
        messages, feedback = conversation["messages"], conversation["feedback"]
        for asked, answer in pairwise(messages):
            verdict = feedback.get(answer["id"]) if answer["role"] == "assistant" else None
            if asked["role"] != "user" or verdict is None:
                continue
            origin = f"store:{conversation['id']}:{answer['id']}"
            if verdict["corrected_text"]:
                passage = supporting_passage(kb, verdict["corrected_text"], min_support)
                pairs += [_pair(asked["content"], passage, origin)] if passage else []
            elif verdict["rating"] == 1:
                pairs += [_pair(asked["content"], p, origin) for p in cited_passages(answer, kb)]
    return pairs


def cited_passages(answer: dict, kb: KnowledgeBase) -> list[str]:
    """The knowledge-base passages behind the sources an answer cited ([n] in its text, else its first source)."""
    sources = answer.get("sources") or []
    numbers = {int(n) for n in CITED.findall(answer["content"])}
    cited = [s for s in sources if s.get("number") in numbers] or sources[:1]
    found = []
    for source in cited:
        for hit in kb.search(source.get("snippet") or source.get("title") or "", 5):
            if hit.passage.source == source.get("source") and hit.passage.section == source.get("section"):
                found.append(hit.passage.indexed_text())
                break
    return found


def file_pairs(path: Path) -> list[RetrievalPair]:
    """Two texts that mean the same, with an optional 0/1 `label`: JSONL objects (.jsonl, .json) or CSV/TSV rows whose
    columns are one of question/passage, query/positive, sentence1/sentence2, text_a/text_b; header-less rows are
    `a, b`, `a, b, label` or `id, a, b, label`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise PairError(f"{path}: cannot be read as UTF-8 text ({exc})") from exc
    rows: list[tuple[int, dict | list]] = []
    if path.suffix.lower() in (".jsonl", ".json"):
        for line_no, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append((line_no, json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise PairError(f"{path}:{line_no}: not a JSON object ({exc.msg})") from exc
    else:
        first = text.split("\n", 1)[0]
        dialect = "excel-tab" if first.count("\t") > first.count(",") else "excel"
        lines = list(csv.reader(io.StringIO(text), dialect=dialect))
        header = [c.strip().lower() for c in lines[0]] if lines else []
        named = any(set(pair) <= set(header) for pair in TEXT_COLUMNS)
        rows = [(n, dict(zip(header, r, strict=False)) if named else r) for n, r in enumerate(lines, 1)
                if r and (not named or n > 1)]
    pairs = []
    for line_no, row in rows:
        where = f"{path}:{line_no}"
        if isinstance(row, list):
            labelled = len(row) >= 3 and row[-1].strip() in ("0", "1")
            if len(row) != 2 and not labelled:
                raise PairError(f"{where}: expected two texts and an optional 0/1 label, found {len(row)} columns")
            a, b, label = row[-3:] if labelled else (*row, 1)
            pairs.append(_pair(a, b, where, label, paraphrase=True))
            continue
        if not isinstance(row, dict):
            raise PairError(f"{where}: expected an object with two texts")
        columns = next((c for c in TEXT_COLUMNS if c[0] in row and c[1] in row), None)
        if columns is None:
            raise PairError(f"{where}: no pair of text fields; use one of "
                            + ", ".join(f"{a}/{b}" for a, b in TEXT_COLUMNS))
        pairs.append(_pair(row[columns[0]], row[columns[1]], where, row.get("label", 1),
                           paraphrase=columns in PARAPHRASE_COLUMNS))
    return pairs


def mine_negatives(pairs: PairSet, search: Callable[[list[str], int], list[list[str]]], per_question: int = 3,
                   depth: int = 20) -> None:
    """Add, for each question, the passages the current index ranks high that are not among its positives (the
    hardest wrong answers), after the label-0 ones; a positive is never a negative. Paraphrase pairs get none: on
    the bank paraphrases (bq_corpus, ATEC), mined negatives put recall@5 lower (0.22) than in-batch ones (0.247).
    `search` ranks many questions at once (each one's `depth` best passages)."""
    positives: dict[str, set[str]] = {}
    asked: dict[str, str] = {}
    for pair in pairs.positives:
        positives.setdefault(text_key(pair.question), set()).add(text_key(pair.passage))
        if not pair.paraphrase:
            asked.setdefault(text_key(pair.question), pair.question)
    ranked = search(list(asked.values()), depth) if asked else []
    for question, found in zip(asked, ranked, strict=True):
        answers = positives[question]
        known = pairs.negatives.setdefault(question, [])
        known[:] = [n for n in known if text_key(n) not in answers]
        for passage in found:
            if len(known) >= per_question:
                break
            if text_key(passage) not in answers and passage not in known:
                known.append(passage)


def held_out(pairs: list[RetrievalPair], share: float = 0.1, minimum: int = 20) -> tuple[list, list]:
    """(train, held out): a stable split by question (the same question never lands on both sides)."""
    questions = sorted({text_key(p.question) for p in pairs})
    needed = max(minimum, 2)
    if len(questions) < needed + 2:
        raise PairError(f"{len(questions)} distinct questions are too few to hold {needed} out and train on the rest: "
                        f"bring at least {needed + 2}")
    ranked = sorted(questions, key=lambda q: hashlib.sha256(q.encode()).hexdigest())
    kept = set(ranked[:max(needed, round(len(questions) * share))])
    return [p for p in pairs if text_key(p.question) not in kept], [p for p in pairs if text_key(p.question) in kept]
