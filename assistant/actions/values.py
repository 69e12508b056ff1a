"""Argument values as services take them: what the customer said ("next Friday", "half past 3 in the afternoon",
"下周五", "晚上8点") becomes an ISO date or a 24-hour time when the parameter is a date or a time.

A small model copies the customer's words well and does calendar arithmetic badly; our code does the arithmetic,
relative to the day of the conversation. A parameter is a date (time) when its schema says `format: date` (`time`)
or its name says so (`date`, `check_in_date`, `pickup_time`); a value that does not read as one is left as written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, timedelta

WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december"]
_CN_WEEKDAY = "一二三四五六日天"
_CN_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
              "十": 10}
_MONTH = "|".join(m[:3] + r"[a-z]*\.?" for m in MONTHS)
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"

_ISO = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_MONTH_DAY = re.compile(rf"\b({_MONTH})\s+(?:the\s+)?{_DAY}\b")
_DAY_MONTH = re.compile(rf"\b(?:the\s+)?{_DAY}\s+(?:of\s+)?({_MONTH})\b")
_SLASH = re.compile(r"\b(\d{1,2})/(\d{1,2})(?:/(\d{2,4}))?\b")
_THE_DAY = re.compile(r"\b(?:the|on)\s+(\d{1,2})(?:st|nd|rd|th)\b|\b(\d{1,2})(?:st|nd|rd|th)\b")
_WEEKDAY = re.compile(r"\b(?:(this|next|coming|following)\s+)?(?:week\s+)?(" + "|".join(WEEKDAYS) + r")\b")
_CN_DATE = re.compile(r"(?:(\d{1,2}|[一二三四五六七八九十]+)月)?(\d{1,2}|[一二三四五六七八九十]+)[日号]")
_CN_WEEK = re.compile(r"(下下|下个?|这个?|本)?(?:周|星期|礼拜)([" + _CN_WEEKDAY + "])")

_CLOCK = re.compile(r"\b(\d{1,2})(?::|\.)(\d{2})\s*(a\.?m\.?|p\.?m\.?)?")
_HOUR = re.compile(r"\b(\d{1,2})\s*(a\.?m\.?|p\.?m\.?|o'?\s?clock)")
_PAST = re.compile(r"\b(half|quarter|\d{1,2})(?:\s+minutes)?\s+(past|after|to|till|before)\s+(\d{1,2})\b")
_BARE_HOUR = re.compile(r"\b(?:at|around|about|by)\s+(\d{1,2})\b(?!\s*(?:st|nd|rd|th|people|person|seat|ticket|"
                        r"day|night|room|bed|bath|star|min|hour|week|month|year|adult|kid|child))")
_NUMBER_WORDS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]
_NUMBER_WORD = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b")
_CN_TIME = re.compile(r"(早上|上午|中午|下午|傍晚|晚上|夜里|凌晨)?(\d{1,2}|[一二三四五六七八九十两]+)[点點时]"
                      r"(?:(\d{1,2})分?|(半)|(一刻)|(三刻))?")
_AFTERNOON = re.compile(r"\b(afternoon|evening|night|tonight|p\.?m\.?)\b")
_MORNING = re.compile(r"\b(morning|a\.?m\.?)\b")


def _cn_number(text: str) -> int:
    if text.isdigit():
        return int(text)
    if text.startswith("十"):
        return 10 + (_CN_DIGITS.get(text[1:], 0) if len(text) > 1 else 0)
    if "十" in text:
        tens, _, ones = text.partition("十")
        return _CN_DIGITS[tens] * 10 + (_CN_DIGITS[ones] if ones else 0)
    return _CN_DIGITS.get(text, 0)


def _on_or_after(today: date, month: int, day: int) -> date | None:
    """That day of the month in the current year, or the next year's when it has passed."""
    try:
        found = date(today.year, month, day)
        return found if found >= today else date(today.year + 1, month, day)
    except ValueError:
        return None


def _day_of_month(today: date, day: int) -> date | None:
    """'the 7th': this month's when it is still to come, else next month's."""
    month, year = (today.month, today.year) if day >= today.day else (today.month % 12 + 1,
                                                                      today.year + (today.month == 12))
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _weekday(today: date, weekday: int, strictly_after: bool) -> date:
    ahead = (weekday - today.weekday()) % 7
    return today + timedelta(days=ahead or (7 if strictly_after else 0))


def parse_date(text: str, today: date) -> date | None:
    """The first date `text` names, relative to `today`; None when it names none."""
    lowered = text.lower()
    if m := _ISO.search(lowered):
        try:
            return date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            return None
    for word, days in (("day after tomorrow", 2), ("tomorrow", 1), ("today", 0), ("tonight", 0),
                       ("大后天", 3), ("后天", 2), ("明天", 1), ("明日", 1), ("今天", 0), ("今日", 0), ("今晚", 0)):
        if word in lowered:
            return today + timedelta(days=days)
    if m := _MONTH_DAY.search(lowered):
        return _on_or_after(today, _month(m[1]), int(m[2]))
    if m := _DAY_MONTH.search(lowered):
        return _on_or_after(today, _month(m[2]), int(m[1]))
    if m := _CN_WEEK.search(text):
        weekday = min(_CN_WEEKDAY.index(m[2]), 6)
        found = _weekday(today, weekday, strictly_after=bool(m[1] and m[1].startswith("下")))
        return found + timedelta(days=7) if m[1] == "下下" else found
    if m := _CN_DATE.search(text):
        day = _cn_number(m[2])
        return _on_or_after(today, _cn_number(m[1]), day) if m[1] else _day_of_month(today, day)
    if m := _WEEKDAY.search(lowered):
        later = m[1] in ("next", "following") or "next week" in lowered
        return _weekday(today, WEEKDAYS.index(m[2]), strictly_after=later)
    if m := _SLASH.search(lowered):
        return _on_or_after(today, int(m[1]), int(m[2])) if 1 <= int(m[1]) <= 12 else None
    if m := _THE_DAY.search(lowered):
        return _day_of_month(today, int(m[1] or m[2]))
    return None


def _month(name: str) -> int:
    return next(i for i, month in enumerate(MONTHS, 1) if name.rstrip(".").startswith(month[:3]))


def _hour_24(hour: int, text: str, marker: str | None) -> int:
    """Afternoon and evening (said, or 'pm') move hours 1-11 past noon; 'am' or morning keep them; 12 am is 0."""
    marker = (marker or "").replace(".", "")
    if marker.startswith("p") or (not marker.startswith("a") and _AFTERNOON.search(text)
                                  and not _MORNING.search(text)):
        return hour + 12 if hour < 12 else hour
    if marker.startswith("a") and hour == 12:
        return 0
    return hour


def parse_time(text: str) -> str | None:
    """The first clock time `text` names, as HH:MM (24-hour); None when it names none."""
    lowered = text.lower()
    if re.search(r"\bnoon\b|\bmidday\b", lowered) or "中午12点" in text:
        return "12:00"
    if re.search(r"\bmidnight\b", lowered):
        return "00:00"
    lowered = _NUMBER_WORD.sub(lambda m: str(_NUMBER_WORDS.index(m[0]) + 1), lowered)
    if m := _PAST.search(lowered):
        minutes = {"half": 30, "quarter": 15}.get(m[1]) or int(m[1])
        hour = int(m[3])
        hour_24 = _hour_24(hour, lowered, None)
        total = hour_24 * 60 + (minutes if m[2] in ("past", "after") else -minutes)
        return f"{total // 60 % 24:02d}:{total % 60:02d}"
    if m := _CLOCK.search(lowered):
        hour, minute = int(m[1]), int(m[2])
        if hour < 24 and minute < 60:
            return f"{_hour_24(hour, lowered, m[3]) % 24:02d}:{minute:02d}"
    if m := _HOUR.search(lowered):
        hour = int(m[1])
        if hour <= 12:
            return f"{_hour_24(hour, lowered, m[2] if not m[2].startswith('o') else None):02d}:00"
    if m := _CN_TIME.search(text):
        hour = _cn_number(m[2])
        minute = int(m[3]) if m[3] else 30 if m[4] else 15 if m[5] else 45 if m[6] else 0
        if m[1] in ("下午", "傍晚", "晚上", "夜里") and hour < 12:
            hour += 12
        if hour < 24 and minute < 60:
            return f"{hour:02d}:{minute:02d}"
    if m := _BARE_HOUR.search(lowered):
        hour = int(m[1])
        if 1 <= hour <= 12 and (_AFTERNOON.search(lowered) or _MORNING.search(lowered)):
            return f"{_hour_24(hour, lowered, None):02d}:00"
    return None


def value_kind(name: str, schema: Mapping) -> str | None:
    """'date', 'time' or None: what a string parameter holds, from its schema's format or its name."""
    declared = schema.get("format")
    if declared in ("date", "time"):
        return declared
    if schema.get("enum") or schema.get("type", "string") != "string":
        return None
    words = re.split(r"[_\W]+", name.lower())
    if "date" in words or name.lower().endswith("date"):
        return "date"
    if "time" in words and not {"zone", "timezone"} & set(words):
        return "time"
    return None


def reads_as(kind: str | None, text: str) -> bool:
    """Whether `text` names a date (time) for a parameter of that kind; any text for other kinds."""
    if kind == "date":
        return parse_date(text, date(2000, 1, 1)) is not None
    return parse_time(text) is not None if kind == "time" else True


def normalise_arguments(properties: Mapping[str, Mapping], arguments: Mapping, today: date) -> dict:
    """`arguments` with date and time values written as services take them (YYYY-MM-DD, HH:MM)."""
    out = dict(arguments)
    for name, value in arguments.items():
        kind = value_kind(name, properties.get(name, {})) if isinstance(value, str) else None
        if kind == "date":
            found = parse_date(value, today)
            out[name] = found.isoformat() if found else value
        elif kind == "time":
            out[name] = parse_time(value) or value
    return out
