"""Reps and who owns a customer (`[[reps]]` and `[owners]` of wapulse.toml).

A rep has a time zone, optional quiet hours and an optional daily digest (reminders wait, then go
as one digest) and one or more channels. A customer without an imported owner gets the default of the business number
they write to: a fixed rep, or the next of a list in turn.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from scoring.reminders import Rule

CHANNEL_FIELDS = {
    "webhook": ({"url", "secret"}, set()),
    "slack": ({"url"}, set()),
    "email": ({"to"}, set()),
    "whatsapp": ({"to"}, {"from", "template", "language"}),
}
"""Channel type -> (required keys, optional keys) besides `type`."""
WHATSAPP_TEMPLATE = "wapulse_reminder"  # the approved template a WhatsApp reminder uses outside the window
WHATSAPP_LANGUAGE = "en"

_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class Channel:
    type: str
    settings: Mapping[str, str]


ROLES = ("rep", "manager")
"""A rep sees and works their own customers in the desk; a manager sees everyone's."""


@dataclass(frozen=True)
class Rep:
    id: str
    name: str
    timezone: str
    channels: tuple[Channel, ...]
    quiet_hours: tuple[int, int] | None = None  # (start, end) in minutes after local midnight
    daily_digest: int | None = None  # minutes after local midnight: everything waits for it...
    immediate: frozenset[Rule] = frozenset()  # ...except these rules
    role: str = "rep"

    @property
    def is_manager(self) -> bool:
        return self.role == "manager"

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def hold_until(self, at: int, rule: Rule) -> int | None:
        """When a reminder owed at `at` may go out, if it has to wait (to go in a digest): the
        next daily digest unless the rule is immediate, and in any case the end of quiet hours."""
        if self.daily_digest is not None and rule not in self.immediate:
            digest = self._next_local(at, self.daily_digest)
            return self.quiet_until(digest) or digest
        return self.quiet_until(at)

    def _next_local(self, at: int, minute: int) -> int:
        """The first instant at or after `at` when the rep's clock shows `minute` after midnight."""
        local = datetime.fromtimestamp(at, UTC).astimezone(self.zone())
        for days_ahead in (0, 1):
            candidate = datetime.combine(local.date() + timedelta(days=days_ahead), datetime.min.time(), self.zone())
            instant = int((candidate + timedelta(minutes=minute)).timestamp())
            if instant >= at:
                return instant
        raise AssertionError("a clock time recurs within two days")

    def quiet_until(self, at: int) -> int | None:
        """When the quiet hours that `at` falls in end (Unix seconds), or None outside them."""
        if self.quiet_hours is None:
            return None
        start, end = self.quiet_hours
        local = datetime.fromtimestamp(at, UTC).astimezone(self.zone())
        minute = local.hour * 60 + local.minute
        inside = start <= minute < end if start < end else minute >= start or minute < end
        if not inside:
            return None
        days_ahead = 1 if start > end and minute >= start else 0
        ends = datetime.combine(local.date() + timedelta(days=days_ahead), datetime.min.time(), self.zone())
        return int((ends + timedelta(minutes=end)).timestamp())

    def channel_labels(self) -> list[str]:
        """A label per channel, numbered when a type repeats: `webhook`, `email`, `email#2`."""
        seen: dict[str, int] = {}
        labels = []
        for channel in self.channels:
            seen[channel.type] = seen.get(channel.type, 0) + 1
            labels.append(channel.type if seen[channel.type] == 1 else f"{channel.type}#{seen[channel.type]}")
        return labels

    @classmethod
    def from_config(cls, table: Mapping, where: str) -> Rep:
        """Raises ValueError naming the bad key."""
        known = {"id", "name", "timezone", "quiet_hours", "daily_digest", "immediate", "channels", "role"}
        if unknown := set(table) - known:
            raise ValueError(f"{where} has unknown keys {sorted(unknown)}; known: {', '.join(sorted(known))}")
        rep_id = table.get("id")
        if not isinstance(rep_id, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", rep_id):
            raise ValueError(f"{where} id must be 1 to 64 letters, digits, '.', '_' or '-'")
        timezone = table.get("timezone", "UTC")
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise ValueError(f"{where} ({rep_id}) timezone = {timezone!r} is not an IANA zone such as Europe/Madrid") from None
        role = table.get("role", "rep")
        if role not in ROLES:
            raise ValueError(f"{where} ({rep_id}) role = {role!r} must be one of {', '.join(ROLES)}")
        channels = table.get("channels", [])
        if not isinstance(channels, list) or (not channels and role != "manager"):
            raise ValueError(f"{where} ({rep_id}) needs channels = [...] with at least one channel (a manager may have none)")
        return cls(
            id=rep_id,
            name=str(table.get("name") or rep_id),
            timezone=timezone,
            channels=tuple(_channel(channel, f"{where} ({rep_id}) channel {n + 1}") for n, channel in enumerate(channels)),
            quiet_hours=_quiet_hours(table.get("quiet_hours"), f"{where} ({rep_id}) quiet_hours"),
            daily_digest=_clock(table["daily_digest"], f"{where} ({rep_id}) daily_digest") if "daily_digest" in table else None,
            immediate=_rules(table.get("immediate", []), f"{where} ({rep_id}) immediate"),
            role=role,
        )


def _channel(table, where: str) -> Channel:
    if not isinstance(table, Mapping) or table.get("type") not in CHANNEL_FIELDS:
        raise ValueError(f"{where} needs type = one of {', '.join(CHANNEL_FIELDS)}")
    required, optional = CHANNEL_FIELDS[table["type"]]
    settings = {key: value for key, value in table.items() if key != "type"}
    if missing := required - set(settings):
        raise ValueError(f"{where} ({table['type']}) needs {', '.join(sorted(missing))}")
    if unknown := set(settings) - required - optional:
        raise ValueError(f"{where} ({table['type']}) has unknown keys {sorted(unknown)}")
    if bad := [key for key, value in settings.items() if not isinstance(value, str) or not value.strip()]:
        raise ValueError(f"{where} ({table['type']}) {', '.join(sorted(bad))} must be non-empty text")
    if "url" in settings and not settings["url"].startswith(("https://", "http://")):
        raise ValueError(f"{where} ({table['type']}) url must start with https:// or http://")
    if table["type"] == "email" and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", settings["to"]):
        raise ValueError(f"{where} (email) to must be an e-mail address")
    if table["type"] == "whatsapp":
        settings["to"] = settings["to"].removeprefix("+")
        if not re.fullmatch(r"[1-9]\d{7,14}", settings["to"]):
            raise ValueError(f"{where} (whatsapp) to must be the rep's number with its country code, e.g. 34600000000")
        if not re.fullmatch(r"\d{1,32}", settings.get("from", "0")):
            raise ValueError(f"{where} (whatsapp) from must be a business phone number id (digits)")
        settings.setdefault("template", WHATSAPP_TEMPLATE)
        settings.setdefault("language", WHATSAPP_LANGUAGE)
    return Channel(table["type"], settings)


def _quiet_hours(value, where: str) -> tuple[int, int] | None:
    if value is None:
        return None
    start, _, end = str(value).partition("-")
    clocks = [_CLOCK.match(part.strip()) for part in (start, end)]
    if not all(clocks) or start.strip() == end.strip():
        raise ValueError(f"{where} = {value!r} must read like \"22:00-07:00\" (two different times)")
    return tuple(int(m.group(1)) * 60 + int(m.group(2)) for m in clocks)


def _clock(value, where: str) -> int:
    if not (clock := _CLOCK.match(str(value).strip())):
        raise ValueError(f"{where} = {value!r} must be a time of day such as \"18:00\"")
    return int(clock.group(1)) * 60 + int(clock.group(2))


def _rules(value, where: str) -> frozenset[Rule]:
    names = value if isinstance(value, list) else [value]
    try:
        return frozenset(Rule(name) for name in names)
    except ValueError:
        raise ValueError(f"{where} must list rules among {', '.join(rule.value for rule in Rule)}") from None


@dataclass(frozen=True)
class OwnerPolicy:
    """`[owners]`: `default` and `by_number` (business phone number id -> rep), each a rep id
    (fixed) or a list of rep ids (in turn)."""

    default: tuple[str, ...] = ()
    by_number: Mapping[str, tuple[str, ...]] | None = None

    def candidates(self, phone_number_id: str | None) -> tuple[str, ...]:
        return (self.by_number or {}).get(phone_number_id or "", self.default)

    def pick(self, phone_number_id: str | None, customer_id: int) -> str | None:
        """The rep for a new customer of this number: of a list, each in turn by the customer's id
        (ids count up from 1), which needs no counter that every writer would have to update."""
        reps = self.candidates(phone_number_id)
        return reps[(customer_id - 1) % len(reps)] if reps else None

    @classmethod
    def from_config(cls, table: Mapping, rep_ids: frozenset[str]) -> OwnerPolicy:
        if unknown := set(table) - {"default", "by_number"}:
            raise ValueError(f"[owners] has unknown keys {sorted(unknown)}; known: by_number, default")

        def reps(value, where: str) -> tuple[str, ...]:
            names = [value] if isinstance(value, str) else value
            if not isinstance(names, list) or not names or not all(isinstance(name, str) for name in names):
                raise ValueError(f"{where} must be a rep id or a list of rep ids")
            if strangers := [name for name in names if name not in rep_ids]:
                raise ValueError(f"{where} names {strangers}, which are not reps ([[reps]] ids)")
            return tuple(names)

        by_number = table.get("by_number", {})
        if not isinstance(by_number, Mapping):
            raise ValueError("[owners] by_number must be a table of phone number id = rep")
        return cls(
            default=reps(table["default"], "[owners] default") if "default" in table else (),
            by_number={str(number): reps(value, f"[owners.by_number] {number}") for number, value in by_number.items()},
        )
