"""`assistant eval actions`: does the model act when the human agent acted, with the same action and arguments?

Metrics (all on the rows given): call/no-call accuracy; on the rows where the agent called, action-name accuracy
and exact match of name + every argument; argument-value precision/recall/F1 over (name, value) pairs; the rate of
unneeded calls on reply rows; and the invalid-call rate (outputs that are not a valid decision: 0 with constrained
decoding). Values compare with case and surrounding spaces aside.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from alignment.action_examples import ActionExample, balanced_subset, load_action_file
from assistant.actions.decision import ActionCall, InvalidDecision, decision_token_budget, parse_decision


def _value(value) -> str:
    return " ".join(str(value).split()).casefold()


def _pairs(call: ActionCall | None) -> set[tuple[str, str]]:
    return {(k, _value(v)) for k, v in call.arguments.items()} if call else set()


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


def decide_all(settings, model, engine: str, examples: Sequence[ActionExample], constrained: bool = True,
               label: str = "deciding") -> list[str]:
    """What `model` writes for each example's decision prompt (greedy; JSON-schema constrained unless told not)."""
    from alignment.answering import answer_prompts

    budget = max(decision_token_budget(e.tools) for e in examples)
    return answer_prompts(settings, model, engine, [e.prompt() for e in examples], budget, label=label,
                          schemas=[e.schema() for e in examples] if constrained else None)


def evaluate_action_file(loaded, file: Path, model_spec: str = "current", limit: int | None = None,
                         constrained: bool = True) -> dict:
    from alignment.evaluation import resolve_model_for_eval
    from assistant.runtime import choose_engine

    examples = balanced_subset(load_action_file(file), limit)
    model = resolve_model_for_eval(model_spec, loaded.settings)
    engine = choose_engine(loaded)
    outputs = decide_all(loaded.settings, model, engine, examples, constrained)
    return score_actions(examples, outputs) | {"model": model.name, "engine": engine, "constrained": constrained}
