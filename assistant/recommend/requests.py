"""Does the customer ask for a recommendation, and with which limits (price, category)?

Two modes (setting `recommend.mode`): `ask` answers only an explicit ask ("what do you recommend", "suggest", "推荐");
`invite` also answers shopping wishes ("I'm looking for a rain jacket", "do you have ...", "想买") when the catalogue
has something that matches. A support question ("I'm looking for my order", "where is my refund") is never one:
recommendations never take the place of a support answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.prompt import CJK
from assistant.recommend.catalog_index import CatalogFilter
from retrieval.lexical import tokenize

ASK = re.compile(
    r"\b(recommend\w*|suggest\w*|what (?:should|would|could) i (?:buy|get|wear|take|choose|pick)|"
    r"which (?:one|\w+) (?:should|would) (?:i|you)|any (?:ideas|tips) for|gift (?:for|idea)|"
    r"help me (?:choose|pick|find))"
    r"|推荐|建议.{0,6}(?:买|选)|买什么|选哪|送什么", re.IGNORECASE)
INVITE = re.compile(
    r"\b(?:i(?:'m| am) (?:looking|searching|shopping) for|looking for|i (?:need|want)(?: to buy)? (?:a|an|some|new)|"
    r"do you (?:have|sell|carry)|have you got|show me|can i buy|i'd like (?:a|an|some))\b"
    r"|想买|想要(?:一|个|件|双|条)|有没有.{0,10}(?:卖|款|的)|有卖|需要(?:一|个|件|双|条)", re.IGNORECASE)
SUPPORT = re.compile(
    r"\b(order|orders|refund\w*|return\w*|parcel|package|deliver\w*|shipping|tracking|invoice|account|password|"
    r"payment|charged|cancel\w*|complain\w*|broken|damaged|warranty)\b"
    r"|订单|退款|退货|快递|物流|发票|账户|账号|密码|付款|扣款|取消|投诉|坏了|损坏|保修", re.IGNORECASE)
ZH_FILLER = re.compile(r"我想(?:买|要|找)?|有没有|有什么|有推荐吗|有吗|推荐(?:一下|一款|一个|一件|一双|一些|点)?|"
                       r"请|帮我|给我|(?:一|几)(?:款|个|件|双|条|些)|东西|吗|呢|吧|[，。？！?!]")  # the ask itself
NUMBER = r"(\d+(?:[.,]\d+)?)"
MONEY = r"(?:€|\$|£|eur|euro|euros|usd|dollars?|元|块|rmb)?"
MAX_PRICE = re.compile(rf"(?:under|below|less than|cheaper than|at most|max(?:imum)?|up to|no more than|within)\s*"
                       rf"{MONEY}\s*{NUMBER}\s*{MONEY}|{NUMBER}\s*{MONEY}\s*(?:以下|以内|之内)|(?:低于|不超过|少于|便宜于){NUMBER}",
                       re.IGNORECASE)
MIN_PRICE = re.compile(rf"(?:over|above|more than|at least|from)\s*{MONEY}\s*{NUMBER}\s*{MONEY}|"
                       rf"{NUMBER}\s*{MONEY}\s*以上|"
                       rf"(?:高于|超过|至少){NUMBER}", re.IGNORECASE)
BETWEEN = re.compile(rf"between\s*{MONEY}\s*{NUMBER}\s*{MONEY}\s*and\s*{MONEY}\s*{NUMBER}|"
                     rf"{NUMBER}\s*{MONEY}\s*(?:-|–|到|至)\s*{NUMBER}\s*{MONEY}", re.IGNORECASE)


@dataclass(frozen=True)
class RecommendationRequest:
    text: str  # what the customer wrote
    query: str  # what to look for in the catalogue (the text without the price phrases)
    explicit: bool  # they asked for a recommendation in so many words (else: a shopping wish)
    where: CatalogFilter
    chinese: bool


def _number(match: re.Match) -> float:
    return float(next(g for g in match.groups() if g).replace(",", "."))


def price_limits(text: str) -> tuple[float | None, float | None, str]:
    """(min, max, the text without the price phrases)."""
    low = high = None
    if between := BETWEEN.search(text):
        values = [float(g.replace(",", ".")) for g in between.groups() if g]
        low, high = min(values), max(values)
        text = text.replace(between.group(0), " ")
    else:
        if found := MAX_PRICE.search(text):
            high = _number(found)
            text = text.replace(found.group(0), " ")
        if found := MIN_PRICE.search(text):
            low = _number(found)
            text = text.replace(found.group(0), " ")
    return low, high, text


def category_named(text: str, categories: list[str]) -> str | None:
    """The catalogue category the text names by a word of it ("jacket" names "Jackets"), if exactly one."""
    words = set(tokenize(text))
    named = [c for c in categories if c and set(tokenize(c.replace("/", " "))) & words]
    return named[0] if len(set(named)) == 1 else None


def recommendation_request(text: str, mode: str, categories: list[str] | None = None) -> RecommendationRequest | None:
    """The request in `text`, or None when it is not one (or `mode` is off)."""
    if mode == "off" or not text.strip():
        return None
    explicit = bool(ASK.search(text))
    wish = mode == "invite" and bool(INVITE.search(text))
    if not (explicit or wish):
        return None
    if SUPPORT.search(text) and not explicit:
        return None
    low, high, rest = price_limits(text)
    where = CatalogFilter(category=category_named(rest, categories or []), min_price=low, max_price=high)
    chinese = bool(CJK.search(text))
    query = ZH_FILLER.sub(" ", rest) if chinese else rest
    return RecommendationRequest(text, re.sub(r"\s+", " ", query).strip(), explicit, where, chinese)
