"""Meta's `X-Hub-Signature-256`: HMAC-SHA256 of the exact body bytes, keyed with the app secret.

The header has no timestamp, so replays are handled by deduplication downstream, not here. The
check runs on raw bytes before any JSON parsing: Meta signs the body with non-ASCII characters
escaped as `\\uXXXX`, which no re-serialisation reproduces.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Hub-Signature-256"
_PREFIX = "sha256="


def sign(secret: str, body: bytes) -> str:
    """The header value Meta would send for `body` (used by `wapulse replay --url` and tests)."""
    return _PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def is_valid(secret: str, body: bytes, header: str | None) -> bool:
    """Whether `header` is the signature of `body`, compared in constant time."""
    if not header or not header.startswith(_PREFIX) or not header.isascii():  # compare_digest takes ASCII only
        return False
    return hmac.compare_digest(sign(secret, body), header.strip().lower())
