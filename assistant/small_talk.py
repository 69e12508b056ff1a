"""Greetings, thanks and goodbyes: a customer's message that is only small talk gets a short polite reply, not a
search of the help center that finds nothing and offers a human.

Only a whole message of small talk counts ("thanks!", "hi there", "谢谢，再见"); anything with a question in it
("hi, my parcel is late") goes on to retrieval as before.
"""

from __future__ import annotations

import re
from typing import Literal

from assistant.prompt import CJK

SmallTalk = Literal["greeting", "thanks", "goodbye"]

_KEYWORDS: dict[SmallTalk, frozenset[str]] = {
    "greeting": frozenset("hi hello hey hiya howdy morning afternoon evening".split()),
    "thanks": frozenset("thanks thank thx ty cheers appreciated".split()),
    "goodbye": frozenset("bye goodbye later farewell cya".split()),
}
# words that may surround the keywords without asking anything
_FILLER = frozenset(
    "good a an the there you all team folks everyone so very much many lot lots again great perfect awesome cool "
    "nice ok okay that this it was is helps helped helpful have day see for your help and oh ah wow super "
    "excellent wonderful".split())
_KNOWN = frozenset().union(*_KEYWORDS.values()) | _FILLER
_ZH: dict[SmallTalk, tuple[str, ...]] = {
    "greeting": ("你好", "您好", "嗨", "哈喽", "早上好", "下午好", "晚上好", "在吗"),
    "thanks": ("谢谢", "多谢", "感谢", "谢了"),
    "goodbye": ("再见", "拜拜", "回头见"),
}
_ZH_FILLER = ("非常", "十分", "太好了", "好的", "好", "明白了", "知道了", "了", "啊", "呀", "哈", "的", "你", "您",
              "啦", "嗯", "哦", "客服", "大家")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_HOW_ARE_YOU = re.compile(r"\bhow (?:are you doing|are you|is it going|'s it going)\b|\bhow's it going\b")
_NOT_SPOKEN = re.compile(r"[\s\W_]+", re.UNICODE)  # punctuation, emoji, spaces


def small_talk(message: str) -> SmallTalk | None:
    """What kind of small talk the whole message is, or None when it says or asks anything else. A goodbye
    outranks thanks, thanks outranks a greeting ("thanks, bye" is a goodbye)."""
    text = _HOW_ARE_YOU.sub(" hello ", message.strip().lower().replace("’", "'"))
    if not text.strip() or len(text) > 80:
        return None
    if CJK.search(text):
        rest, found = _NOT_SPOKEN.sub("", text), set()
        for kind, phrases in _ZH.items():
            for phrase in phrases:
                if phrase in rest:
                    found.add(kind)
                    rest = rest.replace(phrase, "")
        for filler in _ZH_FILLER:
            rest = rest.replace(filler, "")
        if rest and not set(rest) <= set("吗么呢"):
            return None
    else:
        words = set(_WORD.findall(text))
        if not words or not words <= _KNOWN:
            return None
        found = {kind for kind, keys in _KEYWORDS.items() if keys & words}
    for kind in ("goodbye", "thanks", "greeting"):
        if kind in found:
            return kind  # type: ignore[return-value]
    return None


def small_talk_reply(kind: SmallTalk, message: str, company: str) -> str:
    """The assistant's reply to small talk, in the message's language."""
    if CJK.search(message):
        return {"greeting": f"您好！欢迎咨询 {company}，请问有什么可以帮您？",
                "thanks": "不客气！还有其他可以帮您的吗？",
                "goodbye": f"感谢您联系 {company}，祝您愉快，再见！"}[kind]
    return {"greeting": f"Hello, and welcome to {company}! How can I help you today?",
            "thanks": "You're welcome! Is there anything else I can help you with?",
            "goodbye": f"Thank you for contacting {company}. Have a nice day!"}[kind]
