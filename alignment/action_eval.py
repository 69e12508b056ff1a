"""`assistant eval actions`: does the model act when the human agent acted, with the same action and arguments?

Metrics (all on the rows given): call/no-call accuracy; on the rows where the agent called, action-name accuracy
and exact match of name + every argument; argument-value precision/recall/F1 over (name, value) pairs; the rate of
unneeded calls on reply rows; and the invalid-call rate (outputs that are not a valid decision: 0 with constrained
decoding). Values compare with case and surrounding spaces aside.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path

from tqdm import tqdm

from alignment.action_examples import ActionExample, balanced_subset, load_action_file
from assistant.actions.call_classifier import call_classifier_of, saved_body
from assistant.actions.call_reader import call_reader_of, saved_reader
from assistant.actions.decision import (
    ActionCall,
    InvalidDecision,
    as_services_take,
    decision_text,
    decision_token_budget,
    offers_a_call,
    parse_decision,
)


def _pairs(call: ActionCall | None) -> set[tuple[str, str]]:
    return call.argument_pairs() if call else set()


def score_actions(examples: Sequence[ActionExample], outputs: Sequence[str]) -> dict:
    decided, invalid = [], 0
    for example, text in zip(examples, outputs, strict=True):
        try:
            decided.append(parse_decision(text, example.tools))
        except InvalidDecision:
            invalid += 1
            decided.append(None)
    calls = [(e.call, d) for e, d in zip(examples, decided, strict=True) if e.call is not None]
    replies = [d for e, d in zip(examples, decided, strict=True) if e.call is None]
    agree = sum((e.call is None) == (d is None) for e, d in zip(examples, decided, strict=True))
    named = sum(d is not None and d.name == g.name for g, d in calls)
    exact = sum(d is not None and d.name == g.name and _pairs(d) == _pairs(g) for g, d in calls)
    hit = sum(len(_pairs(g) & _pairs(d)) for g, d in calls if d is not None and d.name == g.name)
    predicted = sum(len(_pairs(d)) for g, d in calls if d is not None)
    gold = sum(len(_pairs(g)) for g, _ in calls)
    precision = hit / predicted if predicted else 0.0
    recall = hit / gold if gold else 0.0

    def share(n: int, of: int) -> float | None:
        return round(n / of, 4) if of else None

    return {
        "rows": len(examples), "call_rows": len(calls),
        "call_accuracy": share(agree, len(examples)),
        "name_accuracy": share(named, len(calls)),
        "exact_match": share(exact, len(calls)),
        "argument_precision": round(precision, 4), "argument_recall": round(recall, 4),
        "argument_f1": round(2 * precision * recall / (precision + recall), 4) if hit else 0.0,
        "unneeded_call_rate": share(sum(d is not None for d in replies), len(replies)),
        "invalid_rate": share(invalid, len(examples)),
    }


NO_CALL = '{"action": null}'


def decide_all(settings, model, engine: str, examples: Sequence[ActionExample], constrained: bool = True,
               label: str = "deciding", classifier: bool = True, answerer=None) -> list[str]:
    """What `model` writes for each example's decision prompt (greedy; JSON-schema constrained unless told not).
    As when serving, the call classifier saved with the model (if any, and unless `classifier` is False) decides
    call or reply first; the call reader saved with it fills the calls, or else the model writes them, constrained
    to a call. `answerer`: an `Answerer` whose engine the caller keeps for its other passes with `model` (else one
    is started and stopped here)."""
    from alignment.answering import Answerer

    judge = call_classifier_of(model) if classifier else None
    asked = list(examples)
    if judge is not None:
        calls = judge.call_probabilities([e.conversation for e in examples]) >= judge.threshold
        asked = [e for e, call in zip(examples, calls, strict=True) if call]
        reader = call_reader_of(model)
        if reader is not None:  # it fills the calls; the chat model is not asked
            read = {id(e): decision_text(e.tools, reader.read(e.tools, e.conversation, e.day))
                    for e in tqdm(asked, desc=f"{label} (call reader)", unit="call")}
            return [read.get(id(e), NO_CALL) for e in examples]
    schemas = {id(e): e.schema(judge is None) for e in asked}
    asked = [e for e in asked if offers_a_call(schemas[id(e)])]  # else nothing can be called yet: a reply
    budget = max((decision_token_budget(e.tools) for e in asked), default=1)
    with Answerer(settings, engine) if answerer is None else nullcontext(answerer) as answering:
        written = answering.answer(model, [e.prompt() for e in asked], budget, label=label,
                                   schemas=[schemas[id(e)] for e in asked] if constrained else None)
    decided = {id(e): _as_services_take(e, text) for e, text in zip(asked, written, strict=True)}
    return [decided.get(id(e), NO_CALL) for e in examples]


def _as_services_take(example: ActionExample, text: str) -> str:
    """What the product would send: the decision with its dates and times written as services take them."""
    try:
        call = parse_decision(text, example.tools)
    except InvalidDecision:
        return text  # counted invalid as written
    return decision_text(example.tools, call and as_services_take(call, example.tools, example.day))


def evaluate_action_file(loaded, file: Path, model_spec: str = "current", limit: int | None = None,
                         constrained: bool = True, classifier: bool = True) -> dict:
    from assistant.runtime import choose_engine, model_by_spec

    examples = balanced_subset(load_action_file(file), limit)
    model = model_by_spec(model_spec, loaded.settings)
    engine = choose_engine(loaded)
    outputs = decide_all(loaded.settings, model, engine, examples, constrained, classifier=classifier)
    used = saved_body(model.path) if classifier and not model.is_hub_id else None
    read = used is not None and saved_reader(model.path)
    return score_actions(examples, outputs) | {"model": model.name, "engine": engine, "constrained": constrained,
                                               "call_classifier": used, "call_reader": read}
