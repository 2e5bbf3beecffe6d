"""One person cut out of a webhook body, for erasure.

Every element of a body that is theirs goes: a message they sent, a status or an echo of a
message to them, their contact entry, their preference or identity change, a history thread with
them, a contact card of theirs that someone else shared. An element is theirs when one of the
fields that name a person (`OWNER_FIELDS`) holds one of their identifiers, as a string or as the
`previous`/`current` of an identity change, or when one of its phones is theirs (a shared card).
Any other string that names them, one of their identifiers as a whole (a number inside a longer
number is someone else's), is blanked. What remains parses to the other people's events, as before.
"""

from __future__ import annotations

import re

OWNER_FIELDS = (
    "from", "from_user_id", "from_parent_user_id",  # messages
    "recipient_id", "recipient_user_id", "recipient_parent_user_id",  # statuses
    "to", "to_user_id", "to_parent_user_id",  # echoes and history messages
    "wa_id", "user_id", "parent_user_id", "username",  # contacts, preferences, identity changes, shared cards
    "id",  # a history thread is the customer's number
)
MIN_IDENTIFIER_LENGTH = 5  # shorter values (a username of a few letters) are blanked only where they are a whole field


def naming(identifiers: frozenset[str]) -> re.Pattern | None:
    """A pattern that finds one of `identifiers` (those long enough to search for) as a whole: not
    inside a longer number or name. It searches text, and bytes through `.pattern`."""
    searched = sorted((i for i in identifiers if len(i) >= MIN_IDENTIFIER_LENGTH), key=len, reverse=True)
    if not searched:
        return None
    return re.compile(r"(?<![\w.+])(?:" + "|".join(map(re.escape, searched)) + r")(?![\w])")


def redact(document, identifiers: frozenset[str]):
    """`document` (a decoded body) without what belongs to the person known by `identifiers`;
    a new value, the argument is left as it was."""
    return _cut(document, identifiers, naming(identifiers))


def _cut(value, identifiers: frozenset[str], pattern: re.Pattern | None):
    if isinstance(value, dict):
        return {key: _cut(item, identifiers, pattern) for key, item in value.items()}
    if isinstance(value, list):
        return [_cut(item, identifiers, pattern) for item in value if not _theirs(item, identifiers)]
    if isinstance(value, str) and (value in identifiers or (pattern is not None and pattern.search(value))):
        return ""
    return value


def _theirs(element, identifiers: frozenset[str]) -> bool:
    if not isinstance(element, dict):
        return False
    phones = element.get("phones")
    if isinstance(phones, list) and any(_theirs(phone, identifiers) for phone in phones):
        return True  # a card of theirs: their name, e-mail and address go with it
    for field in OWNER_FIELDS:
        value = element.get(field)
        if isinstance(value, dict):  # an identity change: {"previous": ..., "current": ...}
            if any(isinstance(side, str) and side in identifiers for side in value.values()):
                return True
        elif isinstance(value, str) and value in identifiers:
            return True
    return False
