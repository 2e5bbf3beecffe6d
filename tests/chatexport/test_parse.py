"""The export reader on small exports written inline, as the apps write them (marks included)."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime

import pytest

from chatexport import parse as module
from chatexport.parse import ChatMessage, Export, ExportError, parse_export, read_export

LRM, RLM, NNBSP = "\u200e", "\u200f", "\u202f"
ANA = "12/03/2024, 14:05 - Ana: "  # an Android header, Ana the author


def only(text: str, media_files: frozenset[str] = frozenset()) -> ChatMessage:
    [message] = parse_export(text, media_files)
    return message


def fields(text: str, *names: str, media_files: frozenset[str] = frozenset()) -> tuple:
    """The named fields of the one message `text` holds."""
    message = only(text, media_files)
    return tuple(getattr(message, name) for name in names)


def test_android_24_hour_day_first():
    assert only("12/03/2024, 14:05 - Ana Ruiz: hello") == ChatMessage(
        line=1, at=datetime(2024, 3, 12, 14, 5), author="Ana Ruiz", kind="text", text="hello")


@pytest.mark.parametrize("space", [" ", NNBSP])
def test_android_us_12_hour_month_first(space):
    assert fields(f"3/12/24, 2:05{space}PM - Ana: hello", "at", "author", "text") == (
        datetime(2024, 3, 12, 14, 5), "Ana", "hello")


def test_ios_brackets_and_seconds():
    assert fields("[12/03/2024, 14:05:33] Ana Ruiz: hello", "at", "author", "text") == (
        datetime(2024, 3, 12, 14, 5, 33), "Ana Ruiz", "hello")


def test_ios_12_hour():
    assert only("[3/12/24, 2:05:33 PM] Ana: hello").at == datetime(2024, 3, 12, 14, 5, 33)


def test_ios_left_to_right_marks_before_the_line_and_the_marker():
    line = f"{LRM}[12/03/2024, 14:05:33] Ana: {LRM}image omitted"
    assert fields(line, "author", "kind", "media_type") == ("Ana", "media", "image")


@pytest.mark.parametrize("line, at", [
    ("12.03.24, 14:05 - Ana: Hallo", datetime(2024, 3, 12, 14, 5)),
    ("[12.03.24, 14:05:33] Ana: Hallo", datetime(2024, 3, 12, 14, 5, 33)),
])
def test_german_dotted_dates(line, at):
    assert fields(line, "at", "author", "text") == (at, "Ana", "Hallo")


@pytest.mark.parametrize("line, at", [
    ("12/3/24, 14:05 - Ana: hola", datetime(2024, 3, 12, 14, 5)),
    (f"12/3/24, 2:05{NNBSP}p.{NNBSP}m. - Ana: hola", datetime(2024, 3, 12, 14, 5)),
    (f"12/3/24, 12:05{NNBSP}a.{NNBSP}m. - Ana: hola", datetime(2024, 3, 12, 0, 5)),
    ("12/3/24, 12:05 p. m. - Ana: hola", datetime(2024, 3, 12, 12, 5)),
])
def test_spanish_24_and_12_hour(line, at):
    assert fields(line, "at", "author", "text") == (at, "Ana", "hola")


def test_arabic_marks_comma_and_eastern_arabic_digits():
    export = (f"١٢{RLM}/٣{RLM}/٢٠٢٤، ٢:٠٥ م - Ana: مرحبا\n"
              f"١٣{RLM}/٣{RLM}/٢٤، ٩:٠٠ ص - Ana: صباح الخير")
    first, second = parse_export(export)
    assert (first.at, first.author, first.text) == (datetime(2024, 3, 12, 14, 5), "Ana", "مرحبا")
    assert second.at == datetime(2024, 3, 13, 9, 0)


def test_ios_arabic_phone_number_author_loses_its_embedding_marks():
    line = f"[١٨{RLM}/٣{RLM}/٢٠٢٢، ٢:٥٦:٠٠\u00a0م] \u202a+40\u00a0521\u202c: hi"
    assert fields(line, "at", "author") == (datetime(2022, 3, 18, 14, 56), "+40\u00a0521")


@pytest.mark.parametrize("export, dates", [
    # a first number above 12 anywhere makes every date day-first
    ("01/02/2024, 10:00 - Ana: a\n13/02/2024, 10:00 - Ana: b", [(2024, 2, 1), (2024, 2, 13)]),
    # a second number above 12 makes them month-first
    ("01/02/2024, 10:00 - Ana: a\n02/13/2024, 10:00 - Ana: b", [(2024, 1, 2), (2024, 2, 13)]),
    # all ambiguous: day-first ...
    ("01/02/24, 10:00 - Ana: a", [(2024, 2, 1)]),
    ("01/02/24, 10:00 am - Ana: a", [(2024, 2, 1)]),
    ("[01.02.2024, 10:00:00] Ana: a", [(2024, 2, 1)]),
    # ... unless the clock is US English
    ("01/02/24, 10:00 AM - Ana: a", [(2024, 1, 2)]),
    (f"[01/02/2024, 10:00:00{NNBSP}PM] Ana: a", [(2024, 1, 2)]),
])
def test_date_order_decided_once_for_the_file(export, dates):
    assert [message.at.date() for message in parse_export(export)] == [datetime(*d).date() for d in dates]


def test_multi_line_messages_keep_their_empty_lines_and_start_lines():
    export = ("\n"
              "12/03/2024, 14:05 - Ana: first line\n"
              "\n"
              "third line\n"
              "12/03/2024, 14:06 - Ben: next\n"
              "\n")
    ana, ben = parse_export(export)
    assert (ana.line, ana.text) == (2, "first line\n\nthird line")
    assert (ben.line, ben.text) == (5, "next")


@pytest.mark.parametrize("line", [
    "12/03/2024, 14:05 - Messages and calls are end-to-end encrypted. No one outside of this chat, "
    "not even WhatsApp, can read or listen to them. Tap to learn more.",
    '12/03/2024, 14:05 - Ana created group "Team: sales"',
    "12/03/2024, 14:05 - Ana changed their phone number to a new number. Tap to message or add the new number.",
    f"[12/03/2024, 14:05:33] {LRM}Ana added Ben",
    f"[12/03/2024, 14:05:33] {LRM}Ana changed the subject to “Team: sales”",
    f"[12/03/2024, 14:05:33] Ana Ruiz: {LRM}Messages and calls are end-to-end encrypted. No one "
    "outside of this chat, not even WhatsApp, can read or listen to them.",
    f"[12/03/2024, 14:05:33] Ana Ruiz: {LRM}{LRM}Your security code with Ana changed. {LRM}Tap to learn more.",
])
def test_system_lines_have_no_author(line):
    assert only(line) == ChatMessage(1, datetime(2024, 3, 12, 14, 5, 33 if "[" in line else 0), None, "system")


def test_a_quoted_name_in_an_author_is_still_an_author():
    assert only('12/03/2024, 14:05 - Robert "Bob" Smith: hi').author == 'Robert "Bob" Smith'


def test_ios_marked_media_line_in_an_unknown_language_keeps_its_author():
    line = f"{LRM}[12/03/2024, 14:05:33] Ana: {LRM}immagine omessa"
    assert fields(line, "author", "kind", "text") == ("Ana", "text", "immagine omessa")


def test_android_text_starting_with_a_mark_is_text():
    assert fields(f"{ANA}{LRM}hola", "author", "kind", "text") == ("Ana", "text", "hola")


@pytest.mark.parametrize("body, media_type", [
    ("<Media omitted>", None),
    ("<Medien ausgeschlossen>", None),
    ("<Multimedia omitido>", None),
    (f"{LRM}image omitted", "image"),
    (f"{LRM}video omitted", "video"),
    (f"{LRM}audio omitted", "audio"),
    (f"{LRM}sticker omitted", "sticker"),
    (f"{LRM}document omitted", "document"),
    (f"{LRM}GIF omitted", "video"),
    (f"{LRM}Bild weggelassen", "image"),
    (f"{LRM}imagen omitida", "image"),
    (f"{LRM}Video omitido", "video"),
    (f"<{LRM}image omitted>", "image"),
])
def test_media_omitted(body, media_type):
    assert fields(ANA + body, "author", "kind", "media_type", "text") == ("Ana", "media", media_type, "")


def test_media_omitted_keeps_the_caption_and_a_documents_title():
    caption = only(ANA + "<Media omitted>\nlook at this")
    document = only(f"[12/03/2024, 14:05:33] Ana: Template.docx {LRM}document omitted")
    assert (caption.kind, caption.text) == ("media", "look at this")
    assert (document.kind, document.media_type, document.text) == ("media", "document", "Template.docx")


def test_only_a_document_marker_follows_other_words():
    assert only(ANA + "the best part of the video omitted").kind == "text"


def test_contact_card_omitted():
    line = f"{LRM}[12/03/2024, 14:05:33] Ana: {LRM}Contact card omitted"
    assert fields(line, "kind", "media_type") == ("contacts", None)


@pytest.mark.parametrize("body, name, media_type", [
    ("IMG-20240312-WA0001.jpg (file attached)", "IMG-20240312-WA0001.jpg", "image"),
    ("VID-20240312-WA0002.mp4 (Datei angehängt)", "VID-20240312-WA0002.mp4", "video"),
    ("PTT-20240312-WA0003.opus (archivo adjunto)", "PTT-20240312-WA0003.opus", "audio"),
    (f"{LRM}STK-20240312-WA0004.webp (file attached)", "STK-20240312-WA0004.webp", "sticker"),
    ("offer (v2).pdf (file attached)", "offer (v2).pdf", "document"),
    (f"{LRM}<attached: 00000012-PHOTO-2024-03-12-14-05-33.jpg>", "00000012-PHOTO-2024-03-12-14-05-33.jpg", "image"),
    (f"{LRM}<attached: 00000013-STICKER-2024-03-12-14-05-40.webp>", "00000013-STICKER-2024-03-12-14-05-40.webp",
     "sticker"),
    (f"{LRM}<attached: 00000014-GIF-2024-03-12-14-06-00.mp4>", "00000014-GIF-2024-03-12-14-06-00.mp4", "video"),
    (f"{LRM}<attached: 00000015-AUDIO-2024-03-12-14-06-10.m4a>", "00000015-AUDIO-2024-03-12-14-06-10.m4a", "audio"),
    (f"{LRM}<Anhang: 00000016-Preise.xlsx>", "00000016-Preise.xlsx", "document"),
    (f"{LRM}<adjunto: 00000017-PHOTO-2024-03-12-14-07-00.png>", "00000017-PHOTO-2024-03-12-14-07-00.png", "image"),
])
def test_attached_media(body, name, media_type):
    assert fields(ANA + body, "author", "kind", "attachment", "media_type", "text") == (
        "Ana", "media", name, media_type, "")


def test_attachment_caption_and_ios_document_title():
    android = only(ANA + "IMG-20240312-WA0001.jpg (file attached)\nour new shop\nopen today")
    ios = only(f"{LRM}[12/03/2024, 14:05:33] Ana: Offer.pdf • {LRM}2 pages {LRM}<attached: 00000047-Offer.pdf>")
    assert (android.attachment, android.text) == ("IMG-20240312-WA0001.jpg", "our new shop\nopen today")
    assert (ios.attachment, ios.media_type, ios.text) == ("00000047-Offer.pdf", "document", "Offer.pdf • 2 pages")


@pytest.mark.parametrize("body, name", [
    ("Ana Ruiz.vcf (file attached)", "Ana Ruiz.vcf"),
    (f"{LRM}<attached: 00000042-Ana Ruiz.vcf>", "00000042-Ana Ruiz.vcf"),
])
def test_contact_card_attached(body, name):
    assert fields(ANA + body, "kind", "attachment", "media_type") == ("contacts", name, None)


def test_attachment_in_another_language_is_read_by_the_media_files_name():
    export = "12/03/2024, 14:05 - Ana: IMG-20240312-WA0001.jpg (fichier joint)"
    assert only(export).kind == "text"
    assert fields(export, "kind", "attachment", "media_type", media_files=frozenset({"IMG-20240312-WA0001.jpg"})) == (
        "media", "IMG-20240312-WA0001.jpg", "image")


def test_a_text_in_parentheses_is_no_attachment():
    assert only(ANA + "see you (maybe)").kind == "text"


@pytest.mark.parametrize("body", [
    "This message was deleted", "You deleted this message", f"{LRM}This message was deleted.",
    f"{LRM}You deleted this message.", "Diese Nachricht wurde gelöscht", "Se eliminó este mensaje",
    f"{LRM}Eliminaste este mensaje.",
])
def test_deleted(body):
    assert fields(ANA + body, "author", "kind", "text") == ("Ana", "deleted", "")


@pytest.mark.parametrize("body, call", [
    ("Missed voice call", "voice"), ("Missed video call", "video"),
    (f"{LRM}Missed voice call, {LRM}Tap to call back", "voice"),
    (f"{LRM}Missed video call, {LRM}Tap to call back", "video"),
    ("Verpasster Sprachanruf", "voice"), ("Llamada perdida", "voice"), ("Videollamada perdida", "video"),
])
def test_missed_calls(body, call):
    assert fields(ANA + body, "author", "kind", "call", "text") == ("Ana", "call", call, "")


@pytest.mark.parametrize("body, text", [
    ("location: https://maps.google.com/?q=41.38,2.17", "https://maps.google.com/?q=41.38,2.17"),
    (f"{LRM}Location: https://maps.google.com/?q=41.38,2.17", "https://maps.google.com/?q=41.38,2.17"),
    ("Standort: https://maps.google.com/?q=52.52,13.40", "https://maps.google.com/?q=52.52,13.40"),
    ("live location shared", ""),
])
def test_locations(body, text):
    assert fields(ANA + body, "author", "kind", "text") == ("Ana", "location", text)


def test_a_text_that_mentions_a_location_is_text():
    assert only(ANA + "Location: the usual bar").kind == "text"


@pytest.mark.parametrize("body", [
    "see you at 5 <This message was edited>", f"see you at 5 {LRM}<This message was edited>",
    "see you at 5 <Diese Nachricht wurde bearbeitet>", "see you at 5 <Se editó este mensaje.>",
])
def test_edited(body):
    assert fields(ANA + body, "kind", "text", "edited") == ("text", "see you at 5", True)


def test_unedited():
    assert only(ANA + "see you at 5").edited is False


@pytest.mark.parametrize("export, line, words", [
    ("hello\n12/03/2024, 14:05 - Ana: hi", 1, "does not start"),
    ("\n\nSaved chat\n12/03/2024, 14:05 - Ana: hi", 3, "does not start"),
    ("12/03/2024, 14:05 - Ana: hi\n13/45/2024, 14:06 - Ana: bad month", 2, "'13/45/2024, 14:06'"),
    ("12/03/2024, 14:05 - Ana: hi\n12/03/2024, 25:99 - Ana: bad time", 2, "'12/03/2024, 25:99'"),
    ("12/03/2024, 14:05 - Ana: hi\n\n31/02/2024, 14:06 - Ana: no such day", 3, "'31/02/2024, 14:06'"),
    ("3/12/24, 2:05 PM - Ana: hi\n3/12/24, 13:05 PM - Ana: hour and meridiem", 2, "12-hour"),
    ("", 0, "no message"),
])
def test_malformed_exports_are_refused_naming_the_line(export, line, words):
    with pytest.raises(ExportError) as refused:
        parse_export(export)
    assert refused.value.line == line
    assert str(refused.value).startswith(f"line {line}: ") and words in str(refused.value)


def test_a_header_of_the_other_platform_is_text():
    message = only("[12/03/2024, 14:05:33] Ana: hi\n45/13/2024, 14:05 - Ana: quoted from Android")
    assert message.text == "hi\n45/13/2024, 14:05 - Ana: quoted from Android"


def test_read_a_txt_with_or_without_bom(tmp_path):
    for name, encoded in [("plain.txt", b""), ("bom.txt", b"\xef\xbb\xbf")]:
        path = tmp_path / name
        path.write_bytes(encoded + "12/03/2024, 14:05 - Ana: olé\r\n".encode())
        assert read_export(path) == Export([only(ANA + "olé")], frozenset())


@pytest.mark.parametrize("chat_name", ["_chat.txt", "WhatsApp Chat with Ana.txt"])
def test_read_a_zip_with_media_and_a_txt_document(tmp_path, chat_name):
    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("00000013-notes.txt", "shopping list")
        archive.writestr(chat_name, "\ufeff" + f"{LRM}[12/03/2024, 14:05:33] Ana: {LRM}<attached: "
                         "00000012-PHOTO-2024-03-12-14-05-33.jpg>\n"
                         f"{LRM}[12/03/2024, 14:06:00] Ana: notes.txt {LRM}<attached: 00000013-notes.txt>\n")
        archive.writestr("00000012-PHOTO-2024-03-12-14-05-33.jpg", b"\xff\xd8")
    export = read_export(path)
    assert export.media_files == {"00000012-PHOTO-2024-03-12-14-05-33.jpg", "00000013-notes.txt"}
    assert [(m.attachment, m.media_type) for m in export.messages] == [
        ("00000012-PHOTO-2024-03-12-14-05-33.jpg", "image"), ("00000013-notes.txt", "document")]


def test_a_zip_without_a_chat_not_a_zip_or_not_utf8_is_refused(tmp_path):
    no_text = tmp_path / "media.zip"
    with zipfile.ZipFile(no_text, "w") as archive:
        archive.writestr("IMG-20240312-WA0001.jpg", b"\xff\xd8")
    not_zip = tmp_path / "chat.zip"
    not_zip.write_text("12/03/2024, 14:05 - Ana: hi")
    two_chats = tmp_path / "two.zip"
    with zipfile.ZipFile(two_chats, "w") as archive:
        archive.writestr("_chat.txt", "12/03/2024, 14:05 - Ana: hi")
        archive.writestr("WhatsApp Chat with Ben.txt", "12/03/2024, 14:05 - Ben: hi")
    latin1 = tmp_path / "chat.txt"
    latin1.write_bytes("12/03/2024, 14:05 - Ana: olé".encode("latin-1"))
    for path in (no_text, not_zip, two_chats, latin1):
        with pytest.raises(ExportError) as refused:
            read_export(path)
        assert refused.value.line == 0 and str(refused.value).startswith("line 0: ")


def test_an_encrypted_or_oversized_zip_is_refused(tmp_path, monkeypatch):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("_chat.txt", "[12/03/2026, 10:01:00] Marta: hola\n")
    data = bytearray(buffer.getvalue())
    data[6] |= 1  # the local header and the central directory both say: encrypted
    data[data.find(b"PK\x01\x02") + 8] |= 1
    (tmp_path / "locked.zip").write_bytes(bytes(data))
    with pytest.raises(ExportError, match="line 0"):
        read_export(tmp_path / "locked.zip")
    with zipfile.ZipFile(tmp_path / "big.zip", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("_chat.txt", "[12/03/2026, 10:01:00] Marta: " + " " * 5000 + "\n")
    monkeypatch.setattr(module, "MAX_CHAT_BYTES", 4096)
    with pytest.raises(ExportError, match="larger than"):
        read_export(tmp_path / "big.zip")
