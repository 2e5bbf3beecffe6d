"""`wapulse record`: webhook bodies a deployment received, written out as fixtures that
`wapulse replay` (or a test suite) replays, by default without the personal data in them.

Bodies are taken from the archive as received, in the order they arrived, one file each, named as
this project names its fixtures (`<field>__<type>__<n>.json`: the body's first field and item
type, then its place in the recording). With scrubbing (`cloudapi.scrub`), every number, BSUID,
username, name, text, media id and message id is replaced by a fake, the same fake for the same
original in every file, so the recording replays into the same counters, tiers, signals and
report figures. Chats imported from exports are not traffic and are left out.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from cloudapi.body import decode
from cloudapi.parse import as_dict, as_list, parse_body
from cloudapi.scrub import Scrubber
from store import queries
from workers.context import Context
from workers.settings import ConfigError


def record(context: Context, folder: Path, since: int, until: int | None = None, number: str | None = None,
           customer: str | None = None, scrub: bool = True, shift_s: int = 0, seed: str = "wapulse") -> int:
    """Write the bodies received in [since, until) (Unix seconds) that went through `number` or
    hold `customer`'s events into `folder`; returns how many. Raises ConfigError saying why not."""
    if folder.exists() and any(folder.iterdir()):
        raise ConfigError(f"{folder} is not empty: record into an empty or new folder")
    scrubber = Scrubber(context.settings.signal_matcher, seed, shift_s) if scrub else None
    written = 0
    partial = folder.with_name(f".{folder.name}.partial")  # renamed once complete: no half recording is left
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    with context.engine.connect() as connection:
        holding = None
        if customer is not None:
            customer_id = queries.customer_id_for(connection, customer)
            if customer_id is None:
                raise ConfigError(f"--customer {customer!r}: no customer is known by that key, number, BSUID or username")
            holding = queries.bodies_of(connection, customer_id)
        for body in queries.archived_bodies(connection, since * 1000, None if until is None else until * 1000, holding):
            document = decode(body)
            if not _kept(document, number):
                continue
            written += 1
            (partial / f"{_name(document)}__{written:06d}.json").write_bytes(
                scrubber.scrub(body) if scrubber is not None else body)
    partial.replace(folder)
    return written


def _changes(document) -> list[dict]:
    """The body's `entry[].changes[]`, whatever shape a body that is JSON has."""
    return [change for entry in as_list(as_dict(document).get("entry")) for change in as_list(as_dict(entry).get("changes"))
            if isinstance(change, dict)]


def _kept(document, number: str | None) -> bool:
    """Traffic (not an imported chat) that went through the number asked for, if any."""
    values = [as_dict(change.get("value")) for change in _changes(document)]
    if any(value.get("wapulse_import") for value in values):
        return False
    return number is None or any(as_dict(value.get("metadata")).get("phone_number_id") == number for value in values)


def _name(document) -> str:
    """`<field>__<type>`: the body's first change's field and first item's type."""
    field = next((change.get("field") for change in _changes(document)), None) or "unknown"
    items = parse_body(document, 0).items
    kind = items[0].event.type if items else "none"
    return f"{_safe(field)}__{_safe(kind)}"


def _safe(part: str) -> str:
    """A part of a file name: letters, digits, hyphens and single underscores only."""
    return "".join(char if char.isalnum() or char == "-" else "-" for char in str(part))[:40] or "unknown"
