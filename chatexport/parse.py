"""The text of a WhatsApp "Export chat", as messages.

Each message starts on a line with a header, the date and time as the phone's locale writes them:
`12/03/2024, 14:05 - Ana: hello` (Android) or `[12/03/2024, 14:05:33] Ana: hello` (iOS); any line
without one continues the message above it. The style (Android or iOS) is the first line's, and only
headers of that style start messages.

Date order: the header says neither which of its first two numbers is the day nor which is the
month, so the file as a whole decides, once. The first header whose first number is above 12 makes
it day-first; the first whose second number is above 12 makes it month-first. When every date could
be either, it is day-first, as in most locales, unless the clock is English 12-hour with capital
`AM`/`PM` (the United States' default); a time with lower-case `am`/`pm`, `a. m.`/`p. m.` or `ص`/`م`
does not change that. Two-digit years are 20xx. Digits may be Eastern Arabic (`١٢`): they count as
the digits they are.

System lines (group events, the encryption notice, number changes) have no author and keep no text.
Android writes them without `Author: `; the author ends at the first `: ` outside quotation marks,
so `Ana created group "Team: sales"` is one. iOS writes some as messages from the chat's name, their
words after a left-to-right or right-to-left mark, on a line that does not itself start with one
(iOS marks the lines that carry media): such a message, when its words are no marker this module
knows, is a system line. Direction marks are then dropped from authors and texts.

Markers (media left out or attached, deletions, missed calls, locations, edits) are read in English,
German and Spanish; `MARKERS` holds their wordings. An attachment in another language is still read
when its file name is among the export's media files.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import NamedTuple

MARKS = "\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
"""Invisible marks: the direction marks (left-to-right, right-to-left, Arabic letter mark), the
embedding, override and isolate controls, and a byte-order mark, which files joined from several
exports carry inside."""
WRITTEN_BY_WHATSAPP = ("\u200e", "\u200f")
"""The marks WhatsApp puts before words it writes itself (left-to-right, right-to-left); a sender's
name written as a phone number is wrapped in embedding marks instead, which say nothing."""

_UNMARK = str.maketrans("", "", MARKS)


def _header(template: str) -> re.Pattern[str]:
    """A header pattern in which `~` stands for any run of direction marks: Arabic exports put them
    inside dates, iOS before the lines that carry media."""
    return re.compile(template.replace("~", f"[{MARKS}]*"))


_DATE = r"(?P<first>\d{1,2})~(?P<sep>[./-])~(?P<second>\d{1,2})~(?P=sep)~(?P<year>\d{4}|\d{2})"
_TIME = (r"(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<seconds>\d{2}))?"
         r"(?:[ \u00a0\u202f]?(?P<meridiem>[AaPp]\.?[ \u00a0\u202f]?[Mm]\.?|ص|م))?")


class HeaderStyle(NamedTuple):
    """A platform's message header. `names_its_notices`: the platform writes WhatsApp's notices
    (encryption, security code) as messages from the chat's name, their words marked, on lines that
    are not (iOS marks a line before its `[` when it carries media)."""

    pattern: re.Pattern[str]
    names_its_notices: bool


HEADERS = (
    # Android: 12/03/2024, 14:05 - Ana: hello
    HeaderStyle(_header(r"~" + _DATE + r"~[,،]? ~" + _TIME + r"~ [-–] "), names_its_notices=False),
    # iOS: [12/03/2024, 14:05:33] Ana: hello
    HeaderStyle(_header(r"~\[~" + _DATE + r"~[,،]? ~" + _TIME + r"~\] "), names_its_notices=True),
)
"""Message headers: a date, a time to the minute or second (12-hour with a meridiem, which Android
puts after a narrow no-break space), then the author. Numbers out of range still match, so that a
header with a wrong date is refused rather than read as text."""

US_MERIDIEMS = frozenset({"AM", "PM"})
PM_MERIDIEMS = frozenset({"pm", "م"})  # as `_meridiem` writes them


class Place(Enum):
    """Where a marker's wording stands in a message, which decides how it is looked for."""

    OMITTED = "the first line, or its end after a document's title (iOS)"
    ATTACHMENT = "the label of `NAME (label)` (Android) or `<label: NAME>` (iOS) on the first line"
    WHOLE = "the whole text, a final full stop aside"
    CALL = "the first clause of the text (iOS adds `, Tap to call back`)"
    LINK = "the label of `label: https://...`, the whole text"
    EDITED = "the end of the text"


class Marker(NamedTuple):
    place: Place
    kind: str | None = None  # the message's kind; None: from the file name, or (edited) unchanged
    detail: str | None = None  # media_type for media, "voice" or "video" for calls


MARKERS: dict[str, Marker] = {
    # English
    "<Media omitted>": Marker(Place.OMITTED, "media"),
    "image omitted": Marker(Place.OMITTED, "media", "image"),
    "video omitted": Marker(Place.OMITTED, "media", "video"),
    "audio omitted": Marker(Place.OMITTED, "media", "audio"),
    "sticker omitted": Marker(Place.OMITTED, "media", "sticker"),
    "document omitted": Marker(Place.OMITTED, "media", "document"),
    "GIF omitted": Marker(Place.OMITTED, "media", "video"),  # WhatsApp sends GIFs as MP4 videos
    "Contact card omitted": Marker(Place.OMITTED, "contacts"),
    "file attached": Marker(Place.ATTACHMENT),
    "attached": Marker(Place.ATTACHMENT),
    "This message was deleted": Marker(Place.WHOLE, "deleted"),
    "You deleted this message": Marker(Place.WHOLE, "deleted"),
    "live location shared": Marker(Place.WHOLE, "location"),
    "Missed voice call": Marker(Place.CALL, "call", "voice"),
    "Missed video call": Marker(Place.CALL, "call", "video"),
    "Missed group voice call": Marker(Place.CALL, "call", "voice"),
    "Missed group video call": Marker(Place.CALL, "call", "video"),
    "location": Marker(Place.LINK, "location"),
    "<This message was edited>": Marker(Place.EDITED),
    # German
    "<Medien ausgeschlossen>": Marker(Place.OMITTED, "media"),
    "Bild weggelassen": Marker(Place.OMITTED, "media", "image"),
    "Video weggelassen": Marker(Place.OMITTED, "media", "video"),
    "Audio weggelassen": Marker(Place.OMITTED, "media", "audio"),
    "Sticker weggelassen": Marker(Place.OMITTED, "media", "sticker"),
    "Dokument weggelassen": Marker(Place.OMITTED, "media", "document"),
    "GIF weggelassen": Marker(Place.OMITTED, "media", "video"),
    "Kontaktkarte ausgelassen": Marker(Place.OMITTED, "contacts"),
    "Datei angehängt": Marker(Place.ATTACHMENT),
    "Anhang": Marker(Place.ATTACHMENT),
    "Diese Nachricht wurde gelöscht": Marker(Place.WHOLE, "deleted"),
    "Du hast diese Nachricht gelöscht": Marker(Place.WHOLE, "deleted"),
    "Verpasster Sprachanruf": Marker(Place.CALL, "call", "voice"),
    "Verpasster Videoanruf": Marker(Place.CALL, "call", "video"),
    "Standort": Marker(Place.LINK, "location"),
    "<Diese Nachricht wurde bearbeitet>": Marker(Place.EDITED),
    # Spanish
    "<Multimedia omitido>": Marker(Place.OMITTED, "media"),
    "imagen omitida": Marker(Place.OMITTED, "media", "image"),
    "video omitido": Marker(Place.OMITTED, "media", "video"),
    "audio omitido": Marker(Place.OMITTED, "media", "audio"),
    "sticker omitido": Marker(Place.OMITTED, "media", "sticker"),
    "documento omitido": Marker(Place.OMITTED, "media", "document"),
    "GIF omitido": Marker(Place.OMITTED, "media", "video"),
    "Tarjeta de contacto omitida": Marker(Place.OMITTED, "contacts"),
    "archivo adjunto": Marker(Place.ATTACHMENT),
    "adjunto": Marker(Place.ATTACHMENT),
    "Se eliminó este mensaje": Marker(Place.WHOLE, "deleted"),
    "Eliminaste este mensaje": Marker(Place.WHOLE, "deleted"),
    "Llamada perdida": Marker(Place.CALL, "call", "voice"),
    "Llamada de voz perdida": Marker(Place.CALL, "call", "voice"),
    "Videollamada perdida": Marker(Place.CALL, "call", "video"),
    "Ubicación": Marker(Place.LINK, "location"),
    "<Se editó este mensaje.>": Marker(Place.EDITED),
}
"""Every wording WhatsApp writes in place of, or around, a message's text; matched in any case."""

_MARKERS_AT = {place: {wording.casefold(): marker for wording, marker in MARKERS.items()
                       if marker.place is place} for place in Place}

MEDIA_TYPES = {
    **dict.fromkeys(("jpg", "jpeg", "png", "webp", "gif", "heic", "heif"), "image"),
    **dict.fromkeys(("mp4", "3gp", "mov", "m4v", "mkv", "webm"), "video"),
    **dict.fromkeys(("opus", "ogg", "m4a", "mp3", "aac", "amr", "wav"), "audio"),
}
"""media_type by file extension; any other file was sent as a document."""
STICKER_NAMES = re.compile(r"^STK-|STICKER", re.IGNORECASE)  # Android STK-…, iOS …-STICKER-…
CONTACT_CARD_EXTENSION = "vcf"

_ATTACHED = (
    re.compile(r"^(?P<name>.+?) \((?P<label>[^()]+)\)$"),  # IMG-20240312-WA0001.jpg (file attached)
    re.compile(r"^(?P<before>.*?)<(?P<label>[^<>:]+?) ?: ?(?P<name>[^<>]+)>$"),  # <attached: NAME>
)
_LINK = re.compile(r"^(?P<label>[^:]+): (?P<url>https?://\S+)$")
_QUOTES = "\"“”„«»"


@dataclass(frozen=True, slots=True)
class ChatMessage:
    line: int  # 1-based line number where the message starts in the .txt
    at: datetime  # naive local wall-clock time as written (seconds 0 when the export has none)
    author: str | None  # the sender's name as written, marks stripped; None for system lines
    kind: str  # "text" | "media" | "deleted" | "location" | "contacts" | "call" | "system"
    text: str = ""  # lines joined with "\n", marks stripped; "" for bare media, calls, system
    attachment: str | None = None  # the attached file's name, as the export and its .zip name it
    media_type: str | None = None  # "image" | "video" | "audio" | "document" | "sticker" | None
    call: str | None = None  # "voice" | "video" for a missed call
    edited: bool = False  # the export marked it "<This message was edited>" (or the locale's wording)


@dataclass(frozen=True)
class Export:
    messages: list[ChatMessage]
    media_files: frozenset[str]  # file names in the .zip besides the .txt (empty for a .txt)


class ExportError(ValueError):
    """An export this module cannot read; `line` is where (0: the file as a whole)."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")
        self.line = line


def parse_export(text: str, media_files: frozenset[str] = frozenset()) -> list[ChatMessage]:
    """The messages of an export's text, in the file's order.

    `media_files` are the names of the files that came with it: an attachment whose label is in no
    language `MARKERS` knows is still recognised by its name. Raises ExportError on the first line
    that cannot be read; nothing is returned then."""
    lines = _lines(text)
    style = _header_style(lines)
    headers = {number: match for number, line in enumerate(lines, 1)
               if (match := style.pattern.match(line))}
    day_first = _day_first(list(headers.values()))
    starts = list(headers)
    messages = []
    for start, next_start in zip(starts, [*starts[1:], len(lines) + 1]):
        header = headers[start]
        at = _timestamp(header, day_first, start)
        notice = style.names_its_notices and not header.string.startswith(tuple(MARKS))
        following = lines[start:next_start - 1]
        messages.append(_message(start, at, header.string[header.end():], following, notice,
                                 media_files))
    return messages


MAX_CHAT_BYTES = 256 * 2**20
"""The largest chat text read: a year of a busy chat is a few megabytes, and a small zip can
unpack into gigabytes."""


def read_export(path: Path) -> Export:
    """An export as WhatsApp shares it: the .txt (UTF-8, with or without BOM), or the .zip holding
    the .txt and the media files. Raises ExportError, line 0 when the file itself is wrong."""
    path = Path(path)
    if path.suffix.casefold() != ".zip":
        if path.stat().st_size > MAX_CHAT_BYTES:
            raise ExportError(0, f"{path.name} is larger than {MAX_CHAT_BYTES // 2**20} MiB")
        return Export(parse_export(_decoded(path.read_bytes(), path.name)), frozenset())
    try:
        with zipfile.ZipFile(path) as archive:
            names = [entry.filename for entry in archive.infolist() if not entry.is_dir()]
            chat_name, text = _chat_text(archive, names)
    except zipfile.BadZipFile as error:
        raise ExportError(0, f"{path.name} is not a zip archive") from error
    except ExportError:
        raise
    except (RuntimeError, NotImplementedError, zlib.error, EOFError, ValueError) as error:  # encrypted, damaged
        raise ExportError(0, f"{path.name} cannot be unpacked ({type(error).__name__})") from error
    media_files = frozenset(names) - {chat_name}
    return Export(parse_export(text, media_files), media_files)


def _chat_text(archive: zipfile.ZipFile, names: list[str]) -> tuple[str, str]:
    """The name and text of the chat in a zip. A document sent in the chat may be a .txt too, so
    when there are several the chat is the one whose first line is a message header."""
    texts = [name for name in names if name.casefold().endswith(".txt")]
    if len(texts) == 1:
        return texts[0], _decoded(_unpacked(archive, texts[0]), texts[0])
    chats = []
    for name in texts:
        try:
            text = _decoded(_unpacked(archive, name), name)
            _header_style(_lines(text))
        except ExportError:
            continue
        chats.append((name, text))
    if len(chats) != 1:
        found = "no chat text" if not chats else f"{len(chats)} chat texts"
        raise ExportError(0, f"the zip holds {found} (.txt starting with a message header)")
    return chats[0]


def _unpacked(archive: zipfile.ZipFile, name: str) -> bytes:
    """One file of the zip, refused when it unpacks to more than MAX_CHAT_BYTES (its stated size
    is checked first; the reading stops past the limit whatever the header says)."""
    if archive.getinfo(name).file_size > MAX_CHAT_BYTES:
        raise ExportError(0, f"{name} is larger than {MAX_CHAT_BYTES // 2**20} MiB")
    with archive.open(name) as entry:
        data = entry.read(MAX_CHAT_BYTES + 1)
    if len(data) > MAX_CHAT_BYTES:
        raise ExportError(0, f"{name} is larger than {MAX_CHAT_BYTES // 2**20} MiB")
    return data


def _decoded(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ExportError(0, f"{name} is not UTF-8 text") from error


def _lines(text: str) -> list[str]:
    return re.split(r"\r\n|\r|\n", text)


def _header_style(lines: list[str]) -> HeaderStyle:
    """The header style of the export: the one its first non-empty line has."""
    for number, line in enumerate(lines, 1):
        if line.translate(_UNMARK).strip():
            for style in HEADERS:
                if style.pattern.match(line):
                    return style
            raise ExportError(number, "the export does not start with a message's date and time")
    raise ExportError(0, "the export holds no message")


def _day_first(headers: list[re.Match[str]]) -> bool:
    """Whether the export writes the day before the month (see the module's docstring)."""
    for header in headers:
        first, second = int(header["first"]), int(header["second"])
        if first > 12 >= second:
            return True
        if second > 12 >= first:
            return False
    return not any(header["meridiem"] in US_MERIDIEMS for header in headers)


def _timestamp(header: re.Match[str], day_first: bool, line: int) -> datetime:
    first, second = header["first"], header["second"]
    day, month = (first, second) if day_first else (second, first)
    year = int(header["year"]) + (2000 if len(header["year"]) == 2 else 0)
    hour, minute, seconds = int(header["hour"]), int(header["minute"]), int(header["seconds"] or 0)
    try:
        if header["meridiem"]:
            if not 1 <= hour <= 12:
                raise ValueError("hour must be in 1..12 on a 12-hour clock")
            hour = hour % 12 + (12 if _meridiem(header["meridiem"]) in PM_MERIDIEMS else 0)
        return datetime(year, int(month), int(day), hour, minute, seconds)
    except ValueError as error:
        written = header[0].translate(_UNMARK).strip(" -–[]")
        order = "day first" if day_first else "month first"
        raise ExportError(line, f"{written!r} is no date and time ({order}: {error})") from None


def _meridiem(written: str) -> str:
    """`p. m.`, `PM`, `pm` → `pm`."""
    return re.sub(r"[.\s]", "", written).casefold()


def _message(line: int, at: datetime, rest: str, following: list[str], may_be_notice: bool,
             media_files: frozenset[str]) -> ChatMessage:
    """The message a header starts; `may_be_notice`: a marked text that is no known marker is a
    notice of WhatsApp's (see HeaderStyle)."""
    author, body = _author_and_body(rest)
    if author is None:
        return ChatMessage(line, at, None, "system")
    lines = [body.translate(_UNMARK), *(more.translate(_UNMARK) for more in following)]
    text, edited = _without_edited_marker("\n".join(lines).strip())
    fields = _read(text, media_files)
    if fields is None:
        if may_be_notice and body.startswith(WRITTEN_BY_WHATSAPP):
            return ChatMessage(line, at, None, "system")
        fields = {"kind": "text", "text": text}
    return ChatMessage(line, at, author, edited=edited, **fields)


def _author_and_body(rest: str) -> tuple[str | None, str]:
    """`Ana: hello` → ("Ana", "hello"); a system line has no author. The author ends at the first
    `: ` outside quotation marks, as a group's name may hold one (`Ana created group "A: B"`)."""
    for end in re.finditer(": ", rest):
        author = rest[:end.start()]
        if sum(author.count(quote) for quote in _QUOTES) % 2 == 0:
            return author.translate(_UNMARK).strip(), rest[end.end():]
    return None, rest


def _without_edited_marker(text: str) -> tuple[str, bool]:
    before = _before_marker(text, _MARKERS_AT[Place.EDITED])
    return (text, False) if before is None else (before[0].rstrip(), True)


def _before_marker(text: str, markers: dict[str, Marker]) -> tuple[str, Marker] | None:
    """What precedes the marker `text` ends with, in any case, and the marker."""
    for wording, marker in markers.items():
        start = len(text) - len(wording)
        if start >= 0 and text[start:].casefold() == wording:
            return text[:start], marker
    return None


def _read(text: str, media_files: frozenset[str]) -> dict | None:
    """The fields a marker gives the message, or None for a text that carries none."""
    first, _, caption = text.partition("\n")
    folded = text.rstrip(".").casefold()
    if marker := _MARKERS_AT[Place.WHOLE].get(folded):
        return {"kind": marker.kind}
    clause = first.split(",")[0].strip().casefold()
    if marker := _MARKERS_AT[Place.CALL].get(clause):
        return {"kind": marker.kind, "call": marker.detail}
    link = _LINK.match(text)
    if link and (marker := _MARKERS_AT[Place.LINK].get(link["label"].strip().casefold())):
        return {"kind": marker.kind, "text": link["url"]}
    for pattern in _ATTACHED:
        attached = pattern.match(first)
        if attached and (attached["label"].strip().casefold() in _MARKERS_AT[Place.ATTACHMENT]
                         or attached["name"] in media_files):
            before = attached.groupdict().get("before") or ""
            return _attachment(attached["name"], _joined(before, caption))
    unbracketed = first[1:-1] if first.startswith("<") and first.endswith(">") else first
    for written in (first, unbracketed):  # iOS wrote <image omitted> until 2017
        omitted = _before_marker(written, _MARKERS_AT[Place.OMITTED])
        if omitted and (not omitted[0] or omitted[1].detail == "document"):
            before, marker = omitted
            text = _joined(before, caption)
            return {"kind": marker.kind, "media_type": marker.detail, "text": text}
    return None


def _attachment(name: str, text: str) -> dict:
    extension = name.rpartition(".")[2].casefold()
    if extension == CONTACT_CARD_EXTENSION:
        return {"kind": "contacts", "attachment": name, "text": text}
    media_type = MEDIA_TYPES.get(extension, "document")
    if media_type == "image" and STICKER_NAMES.search(name):
        media_type = "sticker"
    return {"kind": "media", "attachment": name, "media_type": media_type, "text": text}


def _joined(before: str, caption: str) -> str:
    """The words around a media marker: a document's title before it (iOS), a caption after it."""
    return "\n".join(part for part in (before.strip(), caption.strip()) if part)
