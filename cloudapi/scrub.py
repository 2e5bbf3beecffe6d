"""Personal data out of recorded webhook bodies, so that live traffic can be kept as test fixtures.

A `Scrubber` serves one recording: the same original gets the same fake in every body, so that a
message and its statuses, a reply and what it replies to, a person across bodies stay linked, and
two people stay two. `FIELDS` says what each field holds, and so how it is replaced:

- customers' phone numbers, in fields and written in text, by valid numbers of the same country
  (the store reads a customer's country from the number);
- names, word by word, by letters of the same script;
- message text by words of the same script and about the same length (within 10% or one
  character) that carry the same keyword signals: the keywords that fired, the fakes of the
  numbers and BSUIDs it mentions, and filler that fires nothing, checked with the matcher;
- coordinates by others; timestamps are shifted by `shift_s`, keeping their JSON type;
- anything else, including fields this module does not know (so that a field Meta adds later
  leaks nothing): BSUIDs, usernames, message, media and call ids, hashes, URLs, e-mails, file
  names, letter for letter and digit for digit with punctuation kept, so that a BSUID keeps its
  country prefix, a wamid its `wamid.` and a URL its scheme.

Kept as they are, because the parser reads them and they name no customer: the business's own
numbers and ids (`display_phone_number`, `phone_number_id`, the WABA id, wherever they appear),
campaign tags (`biz_opaque_callback_data`), ad attribution, catalog and product ids, button
payloads and reply ids (all the business's own), emoji reactions, error codes with Meta's wording,
prices and quantities, and the protocol's vocabulary (`type`, `status`, `category`...).
"""

from __future__ import annotations

import json
import random
import re
import unicodedata
from functools import lru_cache
from typing import Any, Callable

import phonenumbers
from phonenumbers import timezone as number_zones

from cloudapi.body import decode
from scoring.signals import SignalMatcher, normalise

KEEP, OWN, PHONE, NAME, TEXT, MENTIONS = "keep", "own", "phone", "name", "text", "mentions"
SCRAMBLE, TIME, PLACE = "scramble", "time", "place"

FIELDS: dict[str, str] = {
    **dict.fromkeys((
        "object", "field", "messaging_product", "type", "status", "event", "category", "mime_type",
        "currency", "biz_opaque_callback_data", "referral", "catalog_id", "product_retailer_id", "payload",
        "button_reply/id", "list_reply/id", "nfm_reply/name", "errors", "detail", "pricing", "origin",
        "recipient_type", "user_preferences/value", "country_code", "action", "direction", "sdp_type", "response",
        "response_source", "period", "current_limit", "reason", "message_template_name",
        "message_template_language", "previous_quality_score", "new_quality_score", "phone_number_id", "entry/id",
    ), KEEP),
    **dict.fromkeys(("display_phone_number", "value/phone_number"), OWN),
    **dict.fromkeys((
        "wa_id", "from", "to", "recipient_id", "recipient_participant_id", "new_wa_id", "customer", "phone",
        "phone_number", "threads/id",
    ), PHONE),
    **dict.fromkeys(("name", "full_name", "first_name"), NAME),
    **dict.fromkeys((
        "body", "caption", "text", "title", "description", "address", "location/name", "poll/name", "options/name",
    ), TEXT),
    "error_data/details": MENTIONS,  # Meta's wording, which may quote a number; an error's code, title and message stay
    **dict.fromkeys(("timestamp", "time", "expiration_timestamp", "created_timestamp", "insights/start",
                     "insights/end"), TIME),
    **dict.fromkeys(("latitude", "longitude"), PLACE),
    "referral/ctwa_clid": SCRAMBLE,  # the click of one person on an ad
}
"""What a field holds, by `parent/field` or by field name. An object or list under a named field
is all of that kind (the `errors`, the `referral`, a shared card's `name`), except where a
`parent/field` entry says otherwise. Unnamed strings are scrambled."""

_KEPT_AFFIXES = re.compile(r"^(?:wa[a-z]id\.|[A-Z]{2}\.(?:ENT\.)?|https?://)|\.[a-z][a-z0-9]{1,3}$")
"""What a scrambled value keeps: a wamid's `wamid.`, a BSUID's country, a URL's scheme, an extension."""
_BARE_NUMBER = re.compile(r"(?<![\w+.])(?<!\d[\s().-])\d{8,15}(?!\w)")
"""A number written as bare digits, not the last group of a spaced one: `+` makes it one phonenumbers finds."""
_WRITTEN_NUMBER = re.compile(r"\+?\d[\d\s().-]{6,18}\d")
"""A phone number as people write one in a sentence: digits, maybe a `+`, spaces, dots, dashes."""
_BSUID = re.compile(r"\b[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{8,128}\b")
_TRIES = 64


class Scrubber:
    """One recording's replacements: the same original always gets the same fake, in every body."""

    def __init__(self, signals: SignalMatcher, seed: str = "wapulse", shift_s: int = 0):
        self._signals, self._seed, self._shift = signals, seed, shift_s
        self._fakes: dict[tuple[str, str], str] = {}
        self._taken: set[str] = set()
        self._originals: set[str] = set()
        self._own: set[str] = set()  # the business's numbers, seen in `display_phone_number`

    def scrub(self, body: bytes) -> bytes:
        """`body` with its personal data replaced, as compact JSON with non-ASCII escaped, as Meta
        sends it. Raises ValueError for a body that is not a JSON object."""
        document = decode(body)
        if not isinstance(document, dict):
            raise ValueError("a webhook body is a JSON object")
        return json.dumps(self._walk(document, "", None), separators=(",", ":")).encode()

    def originals(self) -> set[str]:
        """Every original value replaced so far (numbers, ids, names, texts, coordinates)."""
        return set(self._originals)

    def _walk(self, node: Any, field: str, kind: str | None) -> Any:
        if isinstance(node, dict):
            # `metadata` first: the business's number must be known before a `from` that is it
            done = {key: self._walk(node[key], key, FIELDS.get(f"{field}/{key}") or kind or FIELDS.get(key))
                    for key in sorted(node, key=lambda key: key != "metadata")}
            return {key: done[key] for key in node}
        if isinstance(node, list):
            return [self._walk(item, field, kind) for item in node]
        return self._leaf(kind or SCRAMBLE, node)

    def _leaf(self, kind: str, value: Any) -> Any:
        if kind == TIME:
            return self._shifted(value)
        if kind == PLACE and isinstance(value, (int, float)) and not isinstance(value, bool):
            self._originals.add(json.dumps(value))
            return round(self._rng(PLACE, repr(value), 0).uniform(-90, 90), 6)
        if kind == OWN and isinstance(value, str):
            self._own.add(value.lstrip("+"))
        if kind in (KEEP, OWN) or not isinstance(value, str) or not _says_anything(value):
            return value  # the business's, the protocol's, or nothing that could name anyone
        fake = {PHONE: self._phone, NAME: self._name, TEXT: self._text, MENTIONS: self._mentions}.get(
            kind, self._scrambled)(value)
        if fake != value:
            self._originals.add(value)
        return fake

    def _shifted(self, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return value + self._shift
        if isinstance(value, str) and value.isascii() and value.isdigit():
            return str(int(value) + self._shift)
        return value

    def _rng(self, kind: str, key: str, attempt: int) -> random.Random:
        return random.Random(f"{self._seed}\x00{kind}\x00{key}\x00{attempt}")

    def _fake(self, kind: str, key: str, make: Callable[[random.Random], str], unique: bool = True) -> str:
        """The fake of `key`, made once from the seed; an identifier's is never the original's nor
        another identifier's fake, so that two people stay two."""
        if (kind, key) not in self._fakes:
            for attempt in range(_TRIES):  # past them, a value that cannot change (a bare `https://`) stays
                fake = make(self._rng(kind, key, attempt))
                if not unique or (fake != key and fake not in self._taken):
                    break
            self._fakes[kind, key] = fake
            self._taken.add(fake)
        return self._fakes[kind, key]

    def _scrambled(self, value: str, kind: str = SCRAMBLE) -> str:
        return self._fake(kind, value, lambda rng: _scramble(value, rng)) if _says_anything(value) else value

    def _name(self, value: str) -> str:
        """Word by word, so a card's first name and its formatted name stay alike."""
        return " ".join(self._scrambled(word, NAME) for word in value.split(" "))

    def _phone(self, value: str) -> str:
        """A valid number of the same country, written the way the original is (digits, `+`
        and digits, or spaced); the business's own numbers stay."""
        digits = re.sub(r"[\s().+-]", "", value)
        if digits in self._own:
            return value
        if not digits.isdigit():
            return self._scrambled(value)  # a group's id
        example = _example(digits)
        fake = (self._fake(PHONE, digits, lambda rng: _number_like(digits, example, rng)) if example
                else self._scrambled(digits))
        if value.isdigit():
            return fake
        if value == "+" + digits or example is None:
            return "+" + fake
        return phonenumbers.format_number(phonenumbers.parse("+" + fake), phonenumbers.PhoneNumberFormat.INTERNATIONAL)

    def _mentions(self, text: str) -> str:
        """The text as written, but for the numbers and BSUIDs it mentions: their fakes."""
        text = _WRITTEN_NUMBER.sub(lambda number: self._leaf(PHONE, number.group()), text)
        return _BSUID.sub(lambda bsuid: self._leaf(SCRAMBLE, bsuid.group()), text)

    def _text(self, text: str) -> str:
        """Keywords that fired (normalised), the fakes of the numbers and BSUIDs it mentions, and
        filler of its own scripts that fires nothing, shuffled to its length."""
        signals = self._signals.match(text)

        def make(rng: random.Random) -> str:
            written = phonenumbers.PhoneNumberMatcher(_BARE_NUMBER.sub(r"+\g<0>", text), None)
            pieces = [self._leaf(PHONE, match.raw_string) for match in written]
            pieces += [self._leaf(SCRAMBLE, bsuid) for bsuid in _BSUID.findall(text)]
            normalised = normalise(text)
            pieces += dict.fromkeys(self._firing(normalised, signal) for signal in sorted(signals))
            letters = [char for char in normalised if char.isalnum()]
            for _ in range(_TRIES):
                fake = " ".join(self._filled(list(pieces), letters, len(text), rng))
                if self._signals.match(fake) == signals:
                    return fake
            raise RuntimeError(f"no text of {len(text)} characters keeps the signals {sorted(signals)}")

        return self._fake(TEXT, text, make, unique=False)

    def _firing(self, text: str, signal: str) -> str:
        """The shortest stretch of `text` that still fires `signal`: its ends cut in halving steps."""
        start, end = 0, len(text)
        for left in (True, False):
            step = end - start
            while step:
                cut = (start + step, end) if left else (start, end - step)
                if cut[0] < cut[1] and signal in self._signals.match(text[cut[0]:cut[1]]):
                    start, end = cut
                else:
                    step //= 2
        return text[start:end]

    def _filled(self, words: list[str], letters: list[str], length: int, rng: random.Random) -> list[str]:
        """`words` shuffled among filler words drawn like `letters`, to `length` characters."""
        rng.shuffle(words)
        room = length - len(" ".join(words)) - bool(words)
        while letters and room > 0:
            size = room if room <= 8 else rng.randint(2, min(8, room - 2))
            word = "".join(rng.choice(_like(rng.choice(letters))) for _ in range(size))
            if not self._signals.match(word):
                words.insert(rng.randint(0, len(words)), word)
                room -= size + 1
        return words


def _says_anything(value: str) -> bool:
    """Whether a string has a letter or a digit: punctuation and emoji alone name no one."""
    return any(char.isalnum() for char in value)


def _scramble(value: str, rng: random.Random) -> str:
    kept = {index for match in _KEPT_AFFIXES.finditer(value) for index in range(*match.span())}
    return "".join(rng.choice(_like(char)) if char.isalnum() and index not in kept else char
                   for index, char in enumerate(value))


def _example(digits: str) -> phonenumbers.PhoneNumber | None:
    """The example mobile number of the country `digits` are a possible number of, if any."""
    try:
        number = phonenumbers.parse("+" + digits)
    except phonenumbers.NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(number) or phonenumbers.region_code_for_country_code(
        number.country_code)
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)


def _number_like(digits: str, example: phonenumbers.PhoneNumber, rng: random.Random) -> str:
    """Digits (country code first, no `+`) of a valid number of the same country, on the same
    clocks (wapulse takes a customer's time zone from their number): the original's first three
    national digits kept (an area code, where the country has them), the others drawn until the
    number is valid there; for a number that is not valid itself, the country's example's."""
    original = phonenumbers.parse("+" + digits)
    region = phonenumbers.region_code_for_number(example)
    valid = phonenumbers.is_valid_number(original)
    start = original if valid else example
    zones = number_zones.time_zones_for_number(original) if valid else None
    national = phonenumbers.national_significant_number(start)
    for attempt in range(2000):
        candidate = f"{start.country_code}{national[:3]}" + "".join(rng.choice("0123456789") for _ in national[3:])
        number = phonenumbers.parse("+" + candidate)
        if (phonenumbers.is_valid_number(number) and phonenumbers.region_code_for_number(number) == region
                and (zones is None or attempt >= 1000 or number_zones.time_zones_for_number(number) == zones)):
            return candidate
    return _number_like(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)[1:], example, rng)


def _script(char: str) -> str:
    """LATIN, ARABIC, CYRILLIC, CJK, DEVANAGARI, DIGIT...: the first word of the character's name."""
    return unicodedata.name(char, "").partition(" ")[0]


@lru_cache(maxsize=4096)
def _like(char: str) -> str:
    """Characters that can stand for `char`: those of its base letter's script, case and kind near
    it in Unicode, without accents or compatibility forms (so "ã" is stood for by "a" to "z")."""
    base = unicodedata.normalize("NFKD", char)[0]
    near = map(chr, range(max(0, ord(base) - 48), min(ord(base) + 49, 0x110000)))
    return "".join(other for other in near if unicodedata.category(other) == unicodedata.category(base)
                   and _script(other) == _script(base) and unicodedata.normalize("NFKD", other) == other) or base
