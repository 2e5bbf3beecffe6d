"""The signature check Meta's POSTs pass before anything reads them."""

from __future__ import annotations

import pytest

from cloudapi.signature import is_valid, sign

BODY = b'{"object":"whatsapp_business_account","entry":[]}'


def test_the_signature_of_the_exact_bytes_passes_in_either_case():
    assert is_valid("s", BODY, sign("s", BODY))
    assert is_valid("s", BODY, sign("s", BODY).upper().replace("SHA256=", "sha256="))


@pytest.mark.parametrize("header", [None, "", "sha1=abc", "sha256=" + "0" * 64, "sha256=é" + "0" * 63,
                                    "sha256=\udcff", "sha256=" + "０" * 64])
def test_anything_else_fails_without_an_error(header):
    assert not is_valid("s", BODY, header)
