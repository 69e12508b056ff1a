"""The facts in a text that must never be invented: numbers, amounts, durations, dates, times, e-mail addresses
and URLs, normalised so that the same fact written two ways compares equal.

"3–5 business days" gives 3 and 5; "€4.95", "4.95 EUR" and "4,95 €" give 4.95; "24 hours" and "24 小时" give 24;
"三十天" and "30 天" give 30; "five" gives 5; "14:00" gives 14:00; "1,500" gives 1500. Citation markers like [1]
and list numbering ("1. ") are not facts.
"""

from __future__ import annotations

import re

_EN_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000,
    "once": 1, "twice": 2, "single": 1, "double": 2, "half": 0.5,
}
_ZH_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
              "九": 9}
_ZH_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10000}
# bracketed citation markers and numbered list items are structure, not facts
_STRUCTURE = re.compile(r"\[\d{1,2}\]|^\s*\d{1,2}[.)](?=\s)", re.MULTILINE)
_TIME = re.compile(r"\b([01]?\d|2[0-3])[:.]([0-5]\d)\b(?!\d)")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"https?://[^\s)\]>]+|\b[\w-]+(?:\.[\w-]+)*\.(?:com|org|net|example|io|de|cn)\b(?:/[^\s)\]>]*)?")
# digits with thousands separators or a decimal part ("1,500", "4.95", "4,95")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[ ,.]\d{3})*(?:[.,]\d+)?(?![\d])")
_ZH_NUMBER = re.compile(r"[零〇一二两三四五六七八九十百千万]+")
_EN_WORD = re.compile(r"\b(" + "|".join(_EN_NUMBER_WORDS) + r")\b", re.IGNORECASE)
# words that are numbers in a source ("within one hour") but mostly not facts in an answer ("one of our agents")
_LOOSE_WORDS = frozenset({"one", "once", "single", "double", "half"})
_ZH_NOT_A_NUMBER = ("一下", "一起", "一直", "一般", "一定", "一些", "统一", "唯一", "万一", "一旦", "之一", "一切",
                    "进一步", "一样", "一致", "一键", "一次性", "第一", "一律", "十分", "百分")


def _plain(number: str) -> str:
    """'4.950' -> '4.95', '30.0' -> '30', '1,500' -> '1500', '4,95' -> '4.95'."""
    text = number.replace(" ", "")
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", text):
        text = text.replace(",", "")
    elif re.fullmatch(r"\d{1,3}(?:\.\d{3})+,\d+", text):  # 1.500,50 (German)
        text = text.replace(".", "").replace(",", ".")
    elif re.fullmatch(r"\d+,\d{1,2}", text):  # 4,95
        text = text.replace(",", ".")
    else:
        text = text.replace(",", "")
    value = float(text)
    return str(int(value)) if value == int(value) else f"{value:g}"


def _zh_value(text: str) -> int | None:
    """'三十' -> 30, '二十四' -> 24, '十' -> 10, '一百五十' -> 150, '两' -> 2; None when it is not a number."""
    total, current = 0, 0
    for char in text:
        if char in _ZH_DIGITS:
            current = _ZH_DIGITS[char]
        elif char in _ZH_UNITS:
            unit = _ZH_UNITS[char]
            if unit == 10000:
                total = (total + current) * unit
            else:
                total += (current or 1) * unit
            current = 0
        else:
            return None
    return total + current


def quantities(text: str, loose_words: bool = True) -> set[str]:
    """The normalised facts of `text`: numbers as plain decimals, times as HH:MM, e-mail addresses and URLs
    lower-cased. Without `loose_words`, "one", "once", "half"... are not counted (how an answer is read)."""
    text = _STRUCTURE.sub(" ", text)
    found: set[str] = set()
    for pattern in (_EMAIL, _URL):
        for match in pattern.findall(text):
            found.add(match.lower().rstrip(".,;:"))
        text = pattern.sub(" ", text)
    for hour, minute in _TIME.findall(text):
        found.add(f"{int(hour):02d}:{minute}")
    text = _TIME.sub(" ", text)
    for match in _NUMBER.findall(text):
        found.add(_plain(match))
    for match in _EN_WORD.findall(text):
        if not loose_words and match.lower() in _LOOSE_WORDS:
            continue
        value = _EN_NUMBER_WORDS[match.lower()]
        found.add(str(value) if value == int(value) else f"{value:g}")
    for match in _ZH_NUMBER.finditer(text):
        span = text[max(0, match.start() - 1): match.end() + 2]
        if any(word in span for word in _ZH_NOT_A_NUMBER):
            continue
        value = _zh_value(match.group(0))
        if value is not None:
            found.add(str(value))
    return found


def unsupported_quantities(answer: str, sources: str | set[str]) -> set[str]:
    """The facts of `answer` that the sources do not state."""
    known = sources if isinstance(sources, set) else quantities(sources)
    return quantities(answer, loose_words=False) - known
