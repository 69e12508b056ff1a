"""Recommendations inside a conversation: when the customer asks, find candidates (what they asked for, from the
catalogue, blended with what their history predicts), let the chat model pick and order up to three of them (its
decoding constrained to the candidates' ids, so it can never name an item the catalogue does not have), and say
why from catalogue facts only. Clicks and "not for me" are recorded as interactions for `assistant align recommend`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from assistant.config import RecommendSettings
from assistant.engines.base import ChatMessage, EngineError, GenerationParams
from assistant.recommend.catalog import CatalogItem
from assistant.recommend.catalog_index import CatalogIndex
from assistant.recommend.interactions import histories
from assistant.recommend.requests import RecommendationRequest, recommendation_request
from assistant.registry import ModelRegistry, RegistryError
from retrieval.fusion import reciprocal_rank_fusion

log = logging.getLogger(__name__)
HISTORY_LIMIT = 200


def recommend_registry(home: Path) -> ModelRegistry:
    """Recommenders `assistant align recommend` trained: `<home>/recommend-registry/` (the chat models' rules)."""
    return ModelRegistry(Path(home).expanduser() / "recommend-registry")


def customer_key(conversation_id: str, identity: dict | None) -> str:
    """Whose history: the verified customer's id, else this conversation's session."""
    if identity and identity.get("customer_id"):
        return str(identity["customer_id"])
    return f"session:{conversation_id}"


@dataclass(frozen=True)
class Candidate:
    item: CatalogItem
    score: float
    asked: float | None  # relevance to what was asked (None: not found by the request's words)
    from_history: bool  # the customer's history put it forward


@dataclass(frozen=True)
class Pick:
    item: CatalogItem
    why: str

    def card(self) -> dict:
        item = self.item
        return {"id": item.id, "title": item.title, "price": item.price, "currency": item.currency,
                "category": item.category, "url": item.url, "image": item.image, "why": self.why}


@dataclass
class RecommendationReply:
    text: str
    picks: list[Pick]
    basis: str  # "request" | "history" | "popular": what the candidates came from
    candidates: list[str] = field(default_factory=list)  # the shortlist the pick chose from, best first
    model_picked: bool = False


def pick_schema(ids: Sequence[str], most: int) -> dict:
    return {"type": "object", "properties": {"items": {
        "type": "array", "items": {"type": "string", "enum": list(ids)}, "minItems": 1, "maxItems": most}},
        "required": ["items"], "additionalProperties": False}


def pick_messages(text: str, items: Sequence[CatalogItem], most: int) -> list[ChatMessage]:
    """The one prompt of the pick, in serving and in the preference pairs `assistant align` learns from."""
    lines = [f"- {item.id}: {item.title} ({item.category}; {'; '.join(item.facts())})" for item in items]
    system = (f"You pick products for a customer from the candidates below, best first, at most {most}. "
              "Answer with JSON {\"items\": [ids]} using only the candidates' ids.\n\nCandidates:\n" + "\n".join(lines))
    return [ChatMessage("system", system), ChatMessage("user", text)]


def pick_answer(ids: Sequence[str]) -> str:
    return json.dumps({"items": list(ids)})


def parse_picks(text: str, ids: Sequence[str], most: int) -> list[str]:
    """The ids the model picked, in its order, each once; [] when it wrote anything else."""
    try:
        chosen = json.loads(text)["items"]
    except (ValueError, KeyError, TypeError):
        return []
    if not isinstance(chosen, list):
        return []
    return list(dict.fromkeys(i for i in chosen if isinstance(i, str) and i in ids))[:most]


def contradicts(item: CatalogItem, text: str) -> bool:
    """The item says no to something the customer asked for by name: "waterproof" asked, `waterproof: no`."""
    words = set(re.findall(r"[\w-]+", text.lower()))
    return any(key.lower() in words and re.match(r"(?:no|false)\b|不", value.strip().lower())
               for key, value in item.attributes.items())


def _stem(word: str) -> str:
    return word.lower().rstrip("s")


def kind_named(text: str, items: Sequence[CatalogItem]) -> set[str]:
    """The items whose kind the customer named: the head word of the title ("boots" names "Cascade hiking boots")."""
    words = {_stem(w) for w in re.findall(r"[A-Za-z]{3,}", text)}
    heads = {item.id: re.findall(r"[A-Za-z]{3,}", re.sub(r"\(.*?\)", " ", item.title)) for item in items}
    return {item_id for item_id, found in heads.items() if found and _stem(found[-1]) in words}


def why(candidate: Candidate, request: RecommendationRequest, bought: CatalogItem | None) -> str:
    """Why this item, from catalogue facts and the customer's own history only."""
    item = candidate.item
    facts = item.facts(price=False)  # the answer and the card show the price beside it
    if request.chinese:
        parts = [f"符合您的需求（{item.category}）" if candidate.asked is not None else ""]
        if candidate.from_history and bought is not None:
            parts.append(f"购买过「{bought.title}」的顾客也常选它")
        return "；".join(p for p in [*parts, "，".join(facts)] if p)
    parts = []
    if candidate.asked is not None:
        parts.append(f"matches what you asked for ({item.category})" if item.category else "matches what you asked")
    if candidate.from_history and bought is not None:
        parts.append(f"often chosen by customers who bought {bought.title}")
    return "; ".join([*parts, ", ".join(facts)])


def reply_text(picks: Sequence[Pick], request: RecommendationRequest, basis: str, company: str) -> str:
    """The answer in words, composed from the picks (nothing the catalogue does not say)."""
    if request.chinese:
        head = {"request": "根据您的需求，从我们的商品中为您推荐：",
                "history": "根据您的购买记录，为您推荐：",
                "popular": "您还没有购买记录，以下是其他顾客最常选择的商品："}[basis]
        body = "\n".join(f"{n}. {p.item.title}" + (f"（{p.item.price:.2f} {p.item.currency}）" if p.item.price
                                                   is not None else "") for n, p in enumerate(picks, 1))
        return f"{head}\n{body}\n不合适的可以点「不适合我」，我会记住。"
    head = {"request": f"Here {'is one pick' if len(picks) == 1 else f'are {len(picks)} picks'} from the "
                       f"{company} catalogue for what you asked:",
            "history": "Based on what you bought from us, you might like:",
            "popular": "I don't know your taste yet, so here is what other customers choose most:"}[basis]
    body = "\n".join(f"{n}. {p.item.title}" + (f" ({p.item.price:.2f} {p.item.currency})" if p.item.price
                                              is not None else "") + f": {p.why}" for n, p in enumerate(picks, 1))
    return f"{head}\n{body}\nTap \"Not for me\" on any that don't fit and I'll remember."


def nothing_found_text(request: RecommendationRequest) -> str:
    if request.chinese:
        return "抱歉，我们的商品目录里没有符合这些条件的商品。您可以放宽条件（比如价格），或者让我为您转接同事。"
    return ("I couldn't find anything in our catalogue that fits that. You could loosen a condition (the price, say), "
            "or I can connect you with a colleague.")


class RecommendationService:
    """A deployment's recommendations: the catalogue index (rebuilt when the catalogue changes), the promoted
    recommender (swapped when another is promoted), and the conversation step."""

    def __init__(self, settings: RecommendSettings, store, encoder_name: str, home: Path, company: str):
        self.settings, self.store, self.encoder_name, self.home, self.company = (settings, store, encoder_name,
                                                                                 Path(home).expanduser(), company)
        self._index: CatalogIndex | None = None
        self._index_version: tuple | None = None
        self._recommender = None
        self._recommender_id: str | None = None
        self._lock = threading.Lock()

    # ---- what it is built on --------------------------------------------------------------------------------
    def prepare(self) -> None:
        """At start: the configured catalogue (the demo company's by default) while the store has none, and the
        index, so the first customer does not wait for it."""
        from assistant.recommend.ingest import prepare_demo

        try:
            if prepare_demo(self.store, self.settings.catalog, self.settings.interactions):
                self.index()
        except (ValueError, OSError) as exc:
            log.error("catalogue not prepared: %s", exc)

    def index(self) -> CatalogIndex:
        version = self.store.catalog.version()
        with self._lock:
            if self._index is None or version != self._index_version:
                from retrieval.embeddings import load_encoder

                self._index = CatalogIndex(self.store.catalog.items(), load_encoder(self.encoder_name),
                                           cache=self.home / "catalog" / "vectors.npz")
                self._index_version = version
            return self._index

    def recommender(self):
        """The promoted recommender, else one fitted now on the stored interactions (co-occurrence, with
        popularity for customers without history); None without any interaction."""
        registry = recommend_registry(self.home)
        active = registry.active_id()
        with self._lock:
            if self._recommender is not None and active == self._recommender_id:
                return self._recommender
            from assistant.recommend.kinds import load_recommender

            model = None
            if active is not None:
                try:
                    version = registry.get(active)
                    registry.verify(version)
                    model = load_recommender(version.model_dir)
                except (RegistryError, OSError, ValueError) as exc:
                    log.error("recommender %s cannot be loaded (%s): using co-occurrence on the store", active, exc)
            if model is None:
                from assistant.recommend.cooccurrence import CooccurrenceRecommender

                seen = histories(self.store.interactions.all())
                if not seen:
                    return None
                model = CooccurrenceRecommender()
                model.fit(seen)
            self._recommender, self._recommender_id = model, active
            return model

    # ---- the conversation step -----------------------------------------------------------------------------
    def request(self, text: str) -> RecommendationRequest | None:
        if recommendation_request(text, self.settings.mode) is None:  # the words first: no index needed to say no
            return None
        index = self.index()
        if not len(index):
            return None
        categories = sorted({item.category for item in index.items if item.category})
        return recommendation_request(text, self.settings.mode, categories)

    def candidates(self, customer: str, request: RecommendationRequest) -> tuple[list[Candidate], str]:
        """Up to `settings.candidates` items and what they came from: the request's words when the catalogue has
        a match (blended with the history's ranking), else the history, else what is popular."""
        index = self.index()
        admitted = {index.items[row].id for row in index.admitted(request.where)}
        found = [h for h in index.search(request.query, self.settings.candidates, request.where)
                 if not contradicts(h.item, request.text)]
        floor = self.settings.min_relevance
        if found and not index.encoder.understands(request.query):  # words only (Chinese, English encoder)
            floor = max(self.settings.min_word_relevance, 0.5 * max(h.relevance for h in found))
        hits = [h for h in found if h.relevance >= floor]
        named = kind_named(request.text, [h.item for h in hits]) if not request.where.category else set()
        if named:  # "boots": boots, and others only where they match the request as well as the boots do
            bar = max(h.relevance for h in hits if h.item.id in named)
            hits = [h for h in hits if h.item.id in named or h.relevance >= bar]
        history = histories(self.store.interactions.of_customer(customer, HISTORY_LIMIT)).get(customer, [])
        model = self.recommender()
        predicted: list[str] = []
        if model is not None and admitted:
            predicted = [i for i, _ in model.recommend(history, k=max(50, self.settings.candidates),
                                                        allowed=admitted)]
        if hits:
            asked = {h.item.id: h.relevance for h in hits}
            ranked = [h.item.id for h in hits]
            fused = reciprocal_rank_fusion([list(range(len(ranked))),
                                            [ranked.index(i) for i in predicted if i in asked]],
                                           weights=[1.0, self.settings.history_weight if history else 0.0])
            order = sorted(fused, key=fused.get, reverse=True)
            by_id = {h.item.id: h.item for h in hits}
            top = set(predicted[:self.settings.candidates])
            return [Candidate(by_id[ranked[r]], fused[r], asked[ranked[r]], bool(history) and ranked[r] in top)
                    for r in order], "request"
        general = len(request.query) <= 4 if request.chinese else len(re.findall(r"\w+", request.query)) <= 8
        if request.explicit and predicted and general and not request.where.category:
            items = self.store.catalog.get(predicted[:self.settings.candidates])
            basis = "history" if history else "popular"
            return [Candidate(items[i], 1.0 / (n + 1), None, bool(history))
                    for n, i in enumerate(predicted[:self.settings.candidates]) if i in items], basis
        return [], "request"

    async def pick(self, request: RecommendationRequest, candidates: list[Candidate], engine,
                   params: GenerationParams) -> tuple[list[Candidate], bool]:
        """Up to `max_items` of the candidates, in the chat model's order when it picks (constrained to their ids),
        else in the candidates' order."""
        most = self.settings.max_items
        if not self.settings.model_picks or engine is None or len(candidates) <= 1:
            return candidates[:most], False
        shortlist = candidates[:self.settings.shortlist]
        ids = [c.item.id for c in shortlist]
        asked = replace(params, max_new_tokens=16 * most + 16, temperature=0.0, top_p=1.0, stop=[],
                        json_schema=pick_schema(ids, most))
        try:
            messages = pick_messages(request.text, [c.item for c in shortlist], most)
            text = "".join([d.text async for d in engine.stream_chat(messages, asked)])
        except EngineError as exc:  # the candidates' own order still answers
            log.warning("the model could not pick recommendations (%s): candidates' order", exc)
            return candidates[:most], False
        chosen = parse_picks(text, ids, most)
        if not chosen:
            return candidates[:most], False
        by_id = {c.item.id: c for c in shortlist}
        return [by_id[i] for i in chosen], True

    async def turn(self, conversation_id: str, identity: dict | None, text: str, engine,
                   params: GenerationParams) -> RecommendationReply | None:
        """The reply to a recommendation request in `text`, or None when it is not one."""
        request = await asyncio.to_thread(self.request, text)
        if request is None:
            return None
        customer = customer_key(conversation_id, identity)
        candidates, basis = await asyncio.to_thread(self.candidates, customer, request)
        if not candidates:
            if not request.explicit:  # a wish the catalogue does not match: the support answer takes it
                return None
            return RecommendationReply(nothing_found_text(request), [], basis)
        chosen, by_model = await self.pick(request, candidates, engine, params)
        bought = await asyncio.to_thread(self._last_bought, customer)
        picks = [Pick(c.item, why(c, request, bought)) for c in chosen]
        return RecommendationReply(reply_text(picks, request, basis, self.company), picks, basis,
                                   [c.item.id for c in candidates[:self.settings.shortlist]], by_model)

    def _last_bought(self, customer: str) -> CatalogItem | None:
        mine = [i for i in self.store.interactions.of_customer(customer, HISTORY_LIMIT) if i.positive]
        if not mine:
            return None
        return self.store.catalog.get([mine[-1].item]).get(mine[-1].item)
