"""The call reader: once the call classifier says "act now", a fine-tuned extractive reader fills in the call, the
action and every argument, by reading the conversation the way a person reads a form.

Each part of a call is one question to the same encoder (`AutoModelForQuestionAnswering`), answered by pointing at
a span or at "not given" (the first token):
- which action: the options are the offered actions' names, written before the conversation;
- an argument with an `enum`: its values are the options;
- a free-text argument: a span of what the customer or the agent said (the latest turns), so a value nobody said
  cannot be written; a date or time argument only takes a span that reads as one, and our code writes it as
  services take it (`values`).
The arguments of one call are chosen together (best first, no two on the same said words), and how readily it
says "not given" is set on align's held-out calls. Every answer is one of the offered names, one of the enum's
values or said words, so a call it makes is valid by construction. It learns from the call rows `assistant align
--actions` already reads (SGD: 1,950 calls, one epoch in 20 min on 2 CPU cores; a second epoch measured no better)
and decides in ~100 ms where the chat model decodes for seconds. Measured on SGD dev's 400 calls: action name
0.95, exact match 0.36 on the calls themselves; end to end after the classifier 0.835 / 0.33 (the chat model filling
them: 0.81 / 0.32). It does not yet tell "from" from "to" (its scores for a trip's origin and destination are nearly
equal). Saved as `call_reader/` beside the call classifier; a model without one lets the chat model fill the call,
constrained, as before.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from assistant.actions.decision import ActionCall, Tool, as_said, as_services_take, decision_turns
from assistant.actions.values import reads_as, value_kind
from assistant.engines.base import ChatMessage

FOLDER = "call_reader"
MIN_CALLS = 300  # fewer call rows than this: the chat model fills calls (a reader overfits a few dozen)
MAX_TOKENS = 256
MAX_SPAN_TOKENS = 16  # the longest free-text value it reads
CONTEXT_CHARS = 1200  # the latest turns it reads (older ones rarely hold a detail not restated since)
SPEAKERS = {"user": "customer", "assistant": "agent"}
NOT_GIVEN_BIASES = (-2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0)
_EDGE = ".,!?;:\"'()[]“”‘’。，！？；：（）"


@dataclass(frozen=True)
class Question:
    """One question about a call: `prompt` (what is asked, with the options to choose from written in it at
    `options`, character spans) about `context` (the conversation); `answer` is the gold (segment, start, end) in
    characters when training, None for "not given"."""

    prompt: str
    context: str
    options: tuple[tuple[int, int], ...] = ()
    answer: tuple[int, int, int] | None = None


def conversation_text(conversation: Sequence[ChatMessage]) -> str:
    """The latest turns as "customer: …" / "agent: …" lines, oldest first, at most `CONTEXT_CHARS` (older turns are
    dropped whole; a very long last turn keeps its end)."""
    lines: list[str] = []
    size = 0
    for turn in reversed(decision_turns(conversation)):
        line = f"{SPEAKERS[turn.role]}: {' '.join(turn.content.split())}"
        if lines and size + len(line) + 1 > CONTEXT_CHARS:
            break
        lines.insert(0, line[-CONTEXT_CHARS:])
        size += len(line) + 1
    return "\n".join(lines)


def _with_options(head: str, options: Sequence[str]) -> tuple[str, tuple[tuple[int, int], ...]]:
    """`head` followed by "options: a | b | c", and where each option sits in it."""
    text, spans = f"{head} options:", []
    for index, option in enumerate(options):
        text += " |" if index else ""
        spans.append((len(text) + 1, len(text) + 1 + len(option)))
        text += f" {option}"
    return text, tuple(spans)


def action_question(tools: Sequence[Tool], context: str, name: str | None = None) -> Question:
    prompt, spans = _with_options("which action to call now?", [t.name for t in tools])
    gold = next((i for i, t in enumerate(tools) if t.name == name), None)
    return Question(prompt, context, spans, None if gold is None else (0, *spans[gold]))


def _last_said(context: str, value: str) -> tuple[int, int] | None:
    """Where `value` was said last in the context (case aside), as a character span, or None."""
    found = context.casefold().rfind(value.casefold())
    return None if found < 0 or not value else (found, found + len(value))


def argument_question(tool: Tool, name: str, context: str, value=None, said=None) -> Question | None:
    """The question for one argument. With a gold `value` (training) and `said` (the value as the conversation said
    it, `as_said`): None when a free-text value cannot be pointed at in the context (SGD canonicalises a few: "NYC"
    is stored "New York"), so the reader never learns to point at the wrong words."""
    schema = tool.properties.get(name, {})
    description = " ".join(str(schema.get("description") or "").split())
    head = f"{tool.name} {name.replace('_', ' ')}: {description}".strip(" :")
    options = [str(o) for o in schema.get("enum") or []]
    if options:
        prompt, spans = _with_options(head, options)
        gold = options.index(str(value)) if value is not None and str(value) in options else None
        if value is not None and gold is None:
            return None
        return Question(prompt, context, spans, None if gold is None else (0, *spans[gold]))
    if value is None:
        return Question(head, context)
    span = _last_said(context, str(said if said is not None else value))
    return None if span is None else Question(head, context, (), (1, *span))


def training_questions(tools: Sequence[Tool], conversation: Sequence[ChatMessage], call: ActionCall,
                       today: date) -> list[Question]:
    """The questions one call row teaches: which action, and each of its parameters (absent ones: "not given")."""
    tool = next(t for t in tools if t.name == call.name)
    context = conversation_text(conversation)
    said = as_said(call, tools, conversation, today).arguments
    questions = [action_question(tools, context, call.name)] if len(tools) > 1 else []
    for name in tool.properties:
        question = argument_question(tool, name, context, call.arguments.get(name), said.get(name))
        if question is not None:
            questions.append(question)
    return questions


class CallReader:
    """An extractive reader fine-tuned to fill calls (see the module's docstring)."""

    def __init__(self, model, tokenizer, not_given_bias: float = 0.0):
        self.model, self.tokenizer = model, tokenizer
        self.not_given_bias = not_given_bias  # added to "not given"'s score (set on held-out calls: `calibrate`)
        self.tokenizer.truncation_side = "left"  # a long conversation loses its oldest words, never the latest

    def _encode(self, questions: Sequence[Question]):
        return self.tokenizer([q.prompt for q in questions], [q.context for q in questions], truncation="only_second",
                              max_length=MAX_TOKENS, padding=True, return_offsets_mapping=True,
                              return_tensors="pt")

    @staticmethod
    def _token_span(encoded, row: int, segment: int, start: int, end: int) -> tuple[int, int] | None:
        """The tokens of segment `segment` covering characters [start, end) of that segment, or None (cut off)."""
        ids = encoded.sequence_ids(row)
        offsets = encoded["offset_mapping"][row].tolist()
        inside = [i for i, s in enumerate(ids) if s == segment and offsets[i][1] > start and offsets[i][0] < end]
        return (inside[0], inside[-1]) if inside else None

    @classmethod
    def fit(cls, questions: Sequence[Question], encoder: Path, epochs: int = 1, learning_rate: float = 8e-5,
            batch_size: int = 16, seed: int = 0) -> CallReader:
        """Cross-entropy on the start and end of each gold span ("not given": the first token) (1 epoch at lr 8e-5,
        measured on SGD dev)."""
        import torch
        from transformers import AutoModelForQuestionAnswering, AutoTokenizer

        from assistant.sentiment.encoders import train_in_batches

        torch.manual_seed(seed)
        tokenizer = AutoTokenizer.from_pretrained(str(encoder))
        reader = cls(AutoModelForQuestionAnswering.from_pretrained(str(encoder)), tokenizer)
        optimizer = torch.optim.AdamW(reader.model.parameters(), lr=learning_rate, weight_decay=0.01)

        def loss(batch: list[int]):
            chosen = [questions[i] for i in batch]
            encoded = reader._encode(chosen)
            starts, ends = [], []
            for row, question in enumerate(chosen):
                span = question.answer and cls._token_span(encoded, row, *question.answer)
                starts.append(span[0] if span else 0)
                ends.append(span[1] if span else 0)
            encoded.pop("offset_mapping")
            return reader.model(**encoded, start_positions=torch.tensor(starts), end_positions=torch.tensor(ends)).loss

        reader.model.train()
        train_in_batches(list(range(len(questions))), loss, optimizer, epochs, batch_size, seed, "call reader")
        reader.model.eval()
        return reader

    def _logits(self, questions: Sequence[Question]):
        import torch

        encoded = self._encode(questions)
        inputs = {k: v for k, v in encoded.items() if k != "offset_mapping"}
        with torch.inference_mode():
            out = self.model(**inputs)
        return encoded, out.start_logits.float().numpy(), out.end_logits.float().numpy()

    def answers(self, questions: Sequence[Question], kinds: Sequence[str | None],
                required: Sequence[bool] | None = None) -> list[str | None]:
        """The answers of questions about one call, chosen together, best first: each an option, said words that read
        as `kinds[i]` (a date, a time, or any) or None for "not given" (never for a `required` one while an option or
        such words exist); no two answers take the same said words (a trip is not from and to the same city) unless
        a required one has no other."""
        if not questions:
            return []
        encoded, starts, ends = self._logits(questions)
        required = required or [False] * len(questions)
        candidates = sorted(((score, row, text, span) for row, question in enumerate(questions)
                             for score, text, span in self._candidates(encoded, row, question, starts[row], ends[row],
                                                                       kinds[row], required[row])),
                            key=lambda c: -c[0])
        chosen: dict[int, str | None] = {}
        taken: list[tuple[int, int]] = []
        for _, row, text, span in candidates:
            if row in chosen or (span and any(span[0] < b and a < span[1] for a, b in taken)):
                continue
            chosen[row] = text
            taken += [span] if span else []
        for _, row, text, _ in candidates:  # a required detail whose words all went to others shares the best
            chosen.setdefault(row, text)
        return [chosen.get(row) for row in range(len(questions))]

    def _candidates(self, encoded, row: int, question: Question, start: np.ndarray, end: np.ndarray,
                    kind: str | None, required: bool, count: int = 4) -> list[tuple[float, str | None, tuple | None]]:
        """(score, answer, said span or None) for "not given" (unless `required`), each option, or the `count` best
        said spans that read as `kind`."""
        found = [] if required else [(float(start[0] + end[0]) + self.not_given_bias, None, None)]
        if question.options:
            for first, last in question.options:
                span = self._token_span(encoded, row, 0, first, last)
                if span:
                    found.append((float(start[span[0]] + end[span[1]]), question.prompt[first:last], None))
            return found
        ids = encoded.sequence_ids(row)
        offsets = encoded["offset_mapping"][row].tolist()
        inside = np.array([s == 1 for s in ids])
        scores = np.where(inside, start, -np.inf)[:, None] + np.where(inside, end, -np.inf)[None, :]
        length = np.arange(len(ids))[None, :] - np.arange(len(ids))[:, None]
        scores[(length < 0) | (length >= MAX_SPAN_TOKENS)] = -np.inf
        spans = 0
        for flat in np.argsort(scores, axis=None)[::-1][:40]:
            first, last = np.unravel_index(flat, scores.shape)
            if not np.isfinite(scores[first, last]) or spans == count:
                break
            text = question.context[offsets[first][0]:offsets[last][1]].strip(_EDGE).strip()
            if text and "\n" not in text and reads_as(kind, text):  # within one turn
                found.append((float(scores[first, last]), text, (offsets[first][0], offsets[last][1])))
                spans += 1
        return found

    def read(self, tools: Sequence[Tool], conversation: Sequence[ChatMessage], today: date | None = None
             ) -> ActionCall | None:
        """The call to make now (the classifier said act): its action and arguments, dates and times written as
        services take them relative to `today`; None when no said words can be a required detail (the reply
        asks)."""
        context = conversation_text(conversation)
        if len(tools) > 1:
            name = self.answers([action_question(tools, context)], [None])[0]
        else:
            name = tools[0].name if tools else None
        tool = next((t for t in tools if t.name == name), None)
        if tool is None:
            return None
        names = list(tool.properties)
        questions = [argument_question(tool, n, context) for n in names]
        kinds = [value_kind(n, tool.properties[n]) for n in names]
        values = self.answers(questions, kinds, [n in tool.required for n in names])
        arguments = {n: v for n, v in zip(names, values, strict=True) if v is not None}
        if any(r not in arguments for r in tool.required):
            return None
        call = ActionCall(tool.name, arguments)
        return as_services_take(call, tools, today) if today is not None else call

    def calibrate(self, calls: Sequence[tuple[Sequence[Tool], Sequence[ChatMessage], ActionCall, date]],
                  biases: Sequence[float] = NOT_GIVEN_BIASES) -> float:
        """Set `not_given_bias` to the value whose calls match held-out `calls` (tools, conversation, gold call,
        day) best, exactly (name and all arguments, as `assistant eval actions` judges; ties: the smallest change);
        returns that share."""
        def matched(bias: float) -> float:
            self.not_given_bias = bias
            reads = [self.read(tools, conversation, day) for tools, conversation, _, day in calls]
            return sum(read is not None and read.name == call.name and read.argument_pairs() == call.argument_pairs()
                       for read, (_, _, call, _) in zip(reads, calls, strict=True)) / max(len(calls), 1)

        scored = {bias: matched(bias) for bias in sorted(biases, key=abs)}
        self.not_given_bias = max(scored, key=scored.get)
        return scored[self.not_given_bias]

    def save(self, folder: Path) -> Path:
        path = Path(folder) / FOLDER
        self.model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)
        (path / "reader.json").write_text(json.dumps({"max_tokens": MAX_TOKENS,
                                                      "not_given_bias": self.not_given_bias}))
        return path

    @classmethod
    def load(cls, folder: Path | str) -> CallReader | None:
        """The reader saved in a model folder, or None when there is none."""
        from transformers import AutoModelForQuestionAnswering, AutoTokenizer

        if not saved_reader(folder):
            return None
        path = Path(folder) / FOLDER
        saved = json.loads((path / "reader.json").read_text())
        return cls(AutoModelForQuestionAnswering.from_pretrained(str(path)).eval(),
                   AutoTokenizer.from_pretrained(str(path)), float(saved.get("not_given_bias", 0.0)))


def saved_reader(folder: Path | str) -> bool:
    """Whether a model folder holds a call reader."""
    return (Path(folder) / FOLDER / "reader.json").is_file()


def call_reader_of(model) -> CallReader | None:
    """The reader saved with a resolved model (`ResolvedModel`); None for no model, a hub id, or none saved."""
    return CallReader.load(model.path) if model is not None and not model.is_hub_id else None
