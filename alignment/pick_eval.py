"""Does the chat model's pick help? For each sampled customer the recommender puts forward its shortlist (its top
`shortlist` items, as in serving); the recommender's own first `most` and the chat model's `most` (decoding
constrained to the shortlist's ids, with the prompt serving uses) are scored against the held-out item: HR@most and
NDCG@most, both among the same candidates, plus how often the held-out item is in the shortlist at all (the most any
order of it can reach). Reported by `assistant eval recommend --rerank N`."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from assistant.recommend.base import Recommender, top_items
from assistant.recommend.catalog import CatalogItem
from assistant.recommend.evaluation import Split
from assistant.recommend.service import parse_picks, pick_messages, pick_schema

RECENT_TITLES = 5


def pick_request_text(titles: Sequence[str]) -> str:
    """What a customer with this history would write when asking for a suggestion."""
    return f"I recently liked {'; '.join(titles)}. What should I choose next?"


def _gain(order: Sequence[str], target: str, most: int) -> tuple[bool, float]:
    top = list(order)[:most]
    if target not in top:
        return False, 0.0
    return True, 1.0 / math.log2(top.index(target) + 2)


def evaluate_picks(loaded, model_spec: str, recommender: Recommender, split: Split, items: dict[str, CatalogItem],
                   customers: int, shortlist: int = 8, most: int = 3, seed: int = 0) -> dict:
    """The recommender's order vs the chat model's pick on `customers` customers sampled (seeded) from the split."""
    from alignment.answering import answer_prompts
    from assistant.runtime import choose_engine, model_by_spec

    order = sorted(split.targets)
    random.Random(seed).shuffle(order)
    sampled, shortlists = [], {}
    for customer in order:  # the first `customers` with something left to offer (else there is nothing to pick)
        if len(sampled) == customers:
            break
        offered = [i for i, _ in top_items(recommender, split.inputs[customer], shortlist)]
        if offered:
            sampled.append(customer)
            shortlists[customer] = offered
    prompts, schemas = [], []
    for customer in sampled:
        recent = [items[i].title for i in split.inputs[customer][-RECENT_TITLES:] if i in items]
        offered = [items.get(i, CatalogItem(i, i)) for i in shortlists[customer]]
        messages = pick_messages(pick_request_text(recent), offered, most)
        prompts.append([{"role": m.role, "content": m.content} for m in messages])
        schemas.append(pick_schema(shortlists[customer], most))
    model = model_by_spec(model_spec, loaded.settings)
    engine = choose_engine(loaded)
    answers = answer_prompts(loaded.settings, model, engine, prompts, max_new_tokens=16 * most + 16,
                             label="picking", schemas=schemas)
    own, picked, reachable, valid = [], [], 0, 0
    for customer, answer in zip(sampled, answers, strict=True):
        target = split.targets[customer]
        ids = shortlists[customer]
        chosen = parse_picks(answer, ids, most)
        valid += bool(chosen)
        reachable += target in ids
        own.append(_gain(ids, target, most))
        picked.append(_gain(chosen or ids, target, most))  # an unusable answer: serving falls back to the order

    def summary(results: list[tuple[bool, float]]) -> dict:
        n = len(results) or 1
        return {f"hr@{most}": round(sum(h for h, _ in results) / n, 4),
                f"ndcg@{most}": round(sum(g for _, g in results) / n, 4)}

    return {"customers": len(sampled), "shortlist": shortlist, "most": most, "model": model.name, "engine": engine,
            "target_in_shortlist": round(reachable / (len(sampled) or 1), 4),
            "valid_picks": round(valid / (len(sampled) or 1), 4),
            "recommender_order": summary(own), "chat_model_pick": summary(picked)}
