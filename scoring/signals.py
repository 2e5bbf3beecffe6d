"""Content signals from message text: what a customer's words say about their intent.

Keyword lists come from the caller (the shipped `keywords.toml`, extended by `wapulse.toml`); this
module only normalises and matches, so it is tested with plain strings. Text and keywords are
normalised the same way (NFKD, combining marks dropped, casefolded, spaces collapsed), so
"¿Cuánto cuesta?" matches "cuanto cuesta" and Arabic matches with or without harakat. Keywords in
scripts written without spaces (Chinese, Japanese, Korean) match anywhere; all others match whole
words or phrases only, so "price" does not fire on "priceless".
"""

from __future__ import annotations

import re
import unicodedata
from typing import Iterable, Mapping

QUESTION = "question"
RAPPORT = "rapport"
STRUCTURAL_SIGNALS = frozenset({
    "image", "video", "voice", "audio", "document", "sticker", "location", "contacts", "reaction",
    "reaction_removed", "interactive_reply", "template_button", "order", "product_inquiry", "ad_referral",
    "forwarded", "rapport",
})
"""Signals a message carries by its kind rather than its words (the Cloud API parser sets them)."""

_QUESTION_MARKS = re.compile("[?\u00bf\u061f\uff1f\u037e\u2047\u2048\u2049\ufe56]")  # ? ¿ ؟ ？ ; ⁇ ⁈ ⁉ ﹖
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_EMOJI = re.compile(
    "[\U0001f300-\U0001f5ff\U0001f600-\U0001f64f\U0001f680-\U0001f6ff\U0001f900-\U0001f9ff"
    "\U0001fa70-\U0001faff\U0001f1e6-\U0001f1ff\u2600-\u26ff\u2700-\u27bf\u2b50\u2b55\u2764]"
)
_SPACED_OUT = re.compile(r"\s+")
_UNSPACED_SCRIPT = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")


def normalise(text: str) -> str:
    """The form both keywords and messages are compared in."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(char for char in decomposed if unicodedata.category(char) != "Mn")
    return _SPACED_OUT.sub(" ", stripped.casefold()).strip()


def _pattern(keywords: Iterable[str]) -> re.Pattern | None:
    """One alternation per signal, longest first: whole words for spaced scripts, substrings for
    unspaced ones."""
    forms = sorted({normalise(keyword) for keyword in keywords} - {""}, key=lambda form: (-len(form), form))
    worded = [re.escape(form) for form in forms if not _UNSPACED_SCRIPT.search(form)]
    unspaced = [re.escape(form) for form in forms if _UNSPACED_SCRIPT.search(form)]
    parts = []
    if worded:
        parts.append(r"(?<!\w)(?:" + "|".join(worded) + r")(?!\w)")
    if unspaced:
        parts.append("(?:" + "|".join(unspaced) + ")")
    return re.compile("|".join(parts)) if parts else None


class SignalMatcher:
    """Finds the signals a text carries: keyword lists, question marks of any script, emoji."""

    def __init__(self, patterns: Mapping[str, re.Pattern]):
        self._patterns = dict(patterns)

    @classmethod
    def from_keywords(cls, keywords: Mapping[str, Iterable[str]]) -> SignalMatcher:
        patterns = {name: pattern for name, words in keywords.items() if (pattern := _pattern(words))}
        return cls(patterns)

    @property
    def signal_names(self) -> frozenset[str]:
        return frozenset(self._patterns) | {QUESTION, RAPPORT}

    def match(self, text: str | None) -> frozenset[str]:
        if not text or not text.strip():
            return frozenset()
        found = set()
        if _QUESTION_MARKS.search(_URL.sub(" ", text)):
            found.add(QUESTION)
        if _EMOJI.search(text):
            found.add(RAPPORT)
        normalised = normalise(text)
        found.update(name for name, pattern in self._patterns.items() if name not in found and pattern.search(normalised))
        return frozenset(found)


def merge_keywords(base: Mapping[str, Iterable[str]], extra: Mapping[str, object]) -> dict[str, list[str]]:
    """The shipped lists extended by a user's: lists add to a signal, new names add signals.

    Raises ValueError naming the signal when a list is not a list of non-empty strings.
    """
    merged = {name: list(words) for name, words in base.items()}
    for name, words in extra.items():
        if not isinstance(words, list):
            raise ValueError(f"signal {name!r}: keywords must be a list of strings, not {type(words).__name__}")
        for word in words:
            if not isinstance(word, str) or not word.strip():
                raise ValueError(f"signal {name!r}: {word!r} is not a non-empty keyword string")
        merged.setdefault(name, []).extend(words)
    return merged
