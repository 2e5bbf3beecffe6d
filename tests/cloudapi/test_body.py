"""The body check of the ack path: JSON text in UTF-8 that a decoder can follow."""

from __future__ import annotations

import sys

from cloudapi.body import decode, is_json


def test_json_check_accepts_what_python_accepts_and_refuses_the_rest():
    assert is_json(b'{"a":[1,2,{"b":null}]}')
    assert is_json(b'{"a":"\\ud83d"}')  # a lone surrogate: msgspec refuses, JSON allows
    assert is_json(b"[1]")
    assert not is_json(b'{"a":1,}')
    assert not is_json(b"")
    assert not is_json(b'{"a":1} trailing')
    assert not is_json(b'{"a":"\xff"}')  # invalid UTF-8 inside a string
    assert not is_json(b"[" * 100_000 + b"]" * 100_000)  # deeper than any decoder follows


def test_decode_takes_what_msgspec_refuses_and_json_allows():
    assert decode(b'{"a":"\\ud83d"}') == {"a": "\ud83d"}


def test_an_integer_too_long_for_any_decoder_is_no_value_not_a_failed_body():
    assert is_json(b'{"a":' + b"9" * 5000 + b',"b":1}')
    assert decode(b'{"a":' + b"9" * 5000 + b',"b":1,"c":-12}') == {"a": None, "b": 1, "c": -12}


def test_integers_keep_their_value_when_pythons_digit_limit_is_switched_off():
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        assert decode(b'{"a":[12345678901234567890123,7,"\\ud800"]}') == {"a": [12345678901234567890123, 7, "\ud800"]}
    finally:
        sys.set_int_max_str_digits(limit)
