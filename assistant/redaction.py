"""PII redaction before anything is trained or stored in a dataset: emails, phone numbers (international and
Chinese), card numbers (Luhn-checked) and national ID numbers (Chinese resident ID with its check digit, US SSN).

Each match becomes a placeholder such as `[EMAIL]`; counts per kind go into the alignment summary.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

KINDS = ("email", "national_id", "card", "phone")
PLACEHOLDER = {"email": "[EMAIL]", "national_id": "[NATIONAL_ID]", "card": "[CARD]", "phone": "[PHONE]"}

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_CN_ID = re.compile(
    r"(?<![0-9A-Za-z])[1-9]\d{5}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?![0-9A-Za-z])"
)
_SSN = re.compile(r"(?<!\d)(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?!\d)")
_CARD = re.compile(r"(?<![\d+-])(?:\d[ -]?){12,18}\d(?![\d-])")
_PHONE = re.compile(
    r"(?<![0-9A-Za-z+])(?:"
    r"\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){2,4}"  # international: +49 30 1234 5678
    r"|(?:\+?86[ -]?)?1[3-9]\d[ -]?\d{4}[ -]?\d{4}"  # Chinese mobile: 138 1234 5678
    r"|0\d{2,3}-\d{7,8}"  # Chinese landline: 010-12345678
    r"|\(\d{3}\)[ .-]?\d{3}[ .-]?\d{4}|\d{3}[.-]\d{3}[.-]\d{4}"  # North American: (415) 555-0134
    r")(?![0-9A-Za-z])"
)
_CN_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def cn_id_valid(number: str) -> bool:
    """The ISO 7064 check character of an 18-character Chinese resident ID."""
    total = sum(int(d) * w for d, w in zip(number[:17], _CN_ID_WEIGHTS, strict=True))
    return "10X98765432"[total % 11] == number[17].upper()


@dataclass
class Redactor:
    """Replaces the enabled kinds of PII; `counts` accumulates over every call."""

    kinds: tuple[str, ...] = KINDS
    keep: tuple[str, ...] = ()  # the company's own contacts (support line, address): never redacted
    counts: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown PII kinds {sorted(unknown)}; known: {', '.join(KINDS)}")

    def _sub(self, kind: str, pattern: re.Pattern, text: str, check=None) -> str:
        if kind not in self.kinds:
            return text

        def replace(match: re.Match) -> str:
            if match.group(0) in self.keep or (check is not None and not check(match.group(0))):
                return match.group(0)
            self.counts[kind] += 1
            return PLACEHOLDER[kind]

        return pattern.sub(replace, text)

    def redact(self, text: str) -> str:
        text = self._sub("email", _EMAIL, text)
        text = self._sub("national_id", _CN_ID, text, cn_id_valid)
        text = self._sub("national_id", _SSN, text)
        text = self._sub("card", _CARD, text, lambda s: luhn_valid(re.sub(r"\D", "", s)))
        return self._sub("phone", _PHONE, text, lambda s: len(re.sub(r"\D", "", s)) >= 8)
