"""What a webhook body must be before anything reads it: JSON text in UTF-8 (RFC 8259) that a
decoder can follow; and decoding one, quickly, into Python objects."""

from __future__ import annotations

import json
import sys

import msgspec


class _AnyJson(msgspec.Struct):
    """Decoding into an empty struct checks the JSON syntax and skips every value unbuilt."""


_json_syntax = msgspec.json.Decoder(_AnyJson)


def is_json(body: bytes) -> bool:
    """Whether `body` is JSON text in UTF-8 (RFC 8259) that a worker can decode. Objects pass the
    fast check; anything msgspec refuses is given a second opinion from the standard library, so
    no JSON that Python accepts is ever refused. Nesting deeper than a decoder can follow (Meta's
    bodies are about ten levels deep) is no JSON a worker could use."""
    try:
        if not body.isascii():  # Meta escapes non-ASCII; the fast check does not look inside strings
            body.decode("utf-8")
        _json_syntax.decode(body)
        return True
    except UnicodeDecodeError:
        return False
    except (msgspec.DecodeError, msgspec.ValidationError):
        pass
    except RecursionError:
        return False
    try:
        json.loads(body)
        return True
    except (ValueError, RecursionError):
        return False


def decode(body: bytes):
    """JSON into Python objects: msgspec for speed, the standard library for the rare body msgspec
    refuses and JSON allows (a lone UTF-16 surrogate escape, an integer beyond 64 bits). An
    integer too long for Python to read (4,300 digits and more) is no value: None."""
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError:
        return json.loads(body, parse_int=_integer)


def _integer(digits: str) -> int | None:
    limit = sys.get_int_max_str_digits()  # 0: the limit is switched off
    return int(digits) if not limit or len(digits.lstrip("-")) <= limit else None
