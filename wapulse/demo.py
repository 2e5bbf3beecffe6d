"""A business of its own for `wapulse demo`: three reps and a manager, two business numbers and
about 2,000 customers in ten countries over six months, written as the webhook bodies Meta would
have sent, so that replayed through the real path their tiers, follow-ups and figures come from
how they behaved.

Who they are decides how they behave: busy buyers write every few days, ask prices and order;
slow deciders ask now and then; some go quiet (a few of them crossing into cold today); some come
back after a reactivation campaign; some read nothing we send; a few questions wait on us right
now, a few 24-hour windows are about to close, a few customers are heating up, a few stopped our
marketing or can no longer be reached. Everything is drawn from a seeded generator: the same seed
gives the same business.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

DAY, HOUR, MINUTE = 86_400, 3600, 60
WABA_ID = "200000000000001"
NUMBERS = {"110000000000001": "15550001001", "110000000000002": "15550001002"}  # phone number id -> display
SALES, ASIA = NUMBERS
CAMPAIGN = "spring_reactivation"
PEOPLE = {"ana": ("Ana Ruiz", "Europe/Madrid"), "ben": ("Ben Okafor", "Africa/Lagos"),
          "chen": ("Chen Wei", "Asia/Singapore"), "maria": ("María López", "Europe/Madrid")}
MANAGER = "maria"
CONFIG = "# The demo business of `wapulse demo` (written by it; edits are overwritten).\n" + "".join(
    f'[[reps]]\nid = "{rep}"\nname = "{name}"\ntimezone = "{zone}"\n'
    + ('role = "manager"\n' if rep == MANAGER else
       f'channels = [{{ type = "webhook", url = "http://127.0.0.1:9/demo/{rep}", secret = "demo" }}]\n')
    + "\n"
    for rep, (name, zone) in PEOPLE.items()
) + f'[owners]\nby_number = {{ "{SALES}" = ["ana", "ben"], "{ASIA}" = "chen" }}\n'

COUNTRIES = [  # (prefix, digits after it, share, number, names)
    ("34", "6########", 14, SALES, ["Lucía Fernández", "Javier Moreno", "Carmen Ruiz", "Pablo Gil", "Elena Sanz"]),
    ("55", "119########", 14, SALES, ["João Silva", "Ana Souza", "Rafael Lima", "Beatriz Costa", "Thiago Alves"]),
    ("52", "155########", 9, SALES, ["María Hernández", "Luis Torres", "Sofía Ramírez", "Diego Flores"]),
    ("1", "650555####", 9, SALES, ["Emily Carter", "Michael Brooks", "Sarah Kim", "David Nguyen"]),
    ("49", "151########", 8, SALES, ["Max Müller", "Lena Schmidt", "Jonas Weber", "Mia Fischer"]),
    ("234", "803#######", 8, SALES, ["Chinedu Okeke", "Aisha Bello", "Tunde Adeyemi", "Ngozi Eze"]),
    ("971", "50#######", 8, ASIA, ["أحمد المنصوري", "فاطمة الهاشمي", "Omar Khalid", "Layla Haddad"]),
    ("91", "98########", 12, ASIA, ["Priya Sharma", "Rahul Verma", "अनिता देसाई", "Vikram Rao"]),
    ("62", "812########", 10, ASIA, ["Siti Rahayu", "Budi Santoso", "Dewi Lestari", "Agus Pratama"]),
    ("65", "9#######", 8, ASIA, ["Tan Wei Ming", "陈美玲", "Nur Aisyah", "Rajesh Kumar"]),
]
QUESTIONS = ["What is the price for 500 pieces?", "Can you send a sample?", "What is the MOQ?",
             "Do you have CE certificate?", "¿Cuál es el precio por mayor?", "Qual o prazo de entrega?",
             "When can you deliver?", "Is there a discount for 1,000 units?", "Kirimkan katalog dan harga grosir?"]
CHATTER = ["Thanks!", "ok 👍", "Great, thank you", "Let me check with my boss", "Received", "Perfect 🙏",
           "We will decide next week", "Sounds good"]
PERSONAS = [  # (name, share in thousandths)
    ("busy_buyer", 90), ("slow_decider", 230), ("went_quiet", 240), ("comeback", 60), ("receipts_off", 100),
    ("one_off", 200), ("unanswered", 20), ("window_closing", 12), ("heating_up", 15), ("cooling_today", 10),
    ("cold_today", 12), ("opted_out", 5), ("unreachable", 6),
]


@dataclass
class Business:
    """The demo's bodies (in the order they arrive) and how many customers they describe."""

    bodies: list[bytes] = field(default_factory=list)
    customers: int = 0


def business(customers: int, now: int, seed: int = 2026) -> Business:
    rng = random.Random(seed)
    items: list[tuple[int, str, str, dict, str]] = []  # (at, number, field, item, the customer's name)
    countries = [country for country in COUNTRIES for _ in range(country[2])]
    personas = [name for name, share in PERSONAS for _ in range(share)]
    numbers_given: set[str] = set()
    for n in range(customers):
        prefix, pattern, _, number, names = rng.choice(countries)
        wa_id = ""
        while not wa_id or wa_id in numbers_given:  # two people never share a number: they would be one customer
            wa_id = prefix + "".join(str(rng.randint(0, 9)) if char == "#" else char for char in pattern)
        numbers_given.add(wa_id)
        person = _Person(rng, n, wa_id, rng.choice(names), number, now)
        _BEHAVIOURS[rng.choice(personas)](person)
        items += person.items
    items.sort(key=lambda item: item[0])
    return Business([_body(*item) for item in items], customers)


class _Person:
    """One customer and what they, and we, sent, as webhook items."""

    def __init__(self, rng: random.Random, n: int, wa_id: str, name: str, number: str, now: int):
        self.rng, self.n, self.wa_id, self.name, self.number, self.now = rng, n, wa_id, name, number, now
        self.items: list[tuple[int, str, str, dict, str]] = []
        self.messages = self.ours = 0

    def says(self, at: int, text: str | None = None, kind: str = "text") -> None:
        self.messages += 1
        message = {"from": self.wa_id, "id": f"wamid.demo{self.n:05d}in{self.messages:04d}", "timestamp": str(at),
                   "type": kind}
        if kind == "text":
            message["text"] = {"body": text or self.rng.choice(CHATTER)}
        elif kind == "image":
            message["image"] = {"mime_type": "image/jpeg", "sha256": "demo", "id": f"media{self.n}{self.messages}",
                                "caption": text or ""}
        elif kind == "order":
            message["order"] = {"catalog_id": "demo", "text": "Please confirm", "product_items": [
                {"product_retailer_id": "sku-1", "quantity": self.rng.choice([50, 100, 200, 500]),
                 "item_price": self.rng.choice([2.5, 4.9, 12.0]), "currency": "USD"}]}
        self.items.append((at, self.number, "messages", message, self.name))

    def we_send(self, at: int, read: bool = True, campaign: str | None = None, fails: int | None = None) -> None:
        """A message of ours, as its statuses come back: sent, delivered, read (or failed)."""
        self.ours += 1
        message_id = f"wamid.demo{self.n:05d}out{self.ours:04d}"
        steps = [("failed", 2)] if fails else [("sent", 2), ("delivered", 40)] + ([("read", 900)] if read else [])
        for status, after in steps:
            item = {"id": message_id, "status": status, "timestamp": str(at + after), "recipient_id": self.wa_id}
            if campaign:
                item["biz_opaque_callback_data"] = campaign
            if fails:
                item["errors"] = [{"code": fails, "title": "failed"}]
            self.items.append((at + after, self.number, "statuses", item, self.name))

    def conversation(self, start: int, end: int, every_days: tuple[float, float], asks: float, orders: float = 0.0,
                     we_reply: float = 0.9, read: bool = True) -> int:
        """Messages every so many days from `start` until `end`, some asking, some ordering, most
        answered by us within hours, the last one always. Returns the instant of their last message."""
        at, last = start, start
        while at < end:
            closing = at + int(self.rng.uniform(*every_days) * DAY) >= end
            roll = self.rng.random()
            if roll < orders:
                self.says(at, kind="order")
            elif roll < orders + asks:
                self.says(at, self.rng.choice(QUESTIONS))
            elif roll < orders + asks + 0.1:
                self.says(at, "Here is the photo of the part", kind="image")
            else:
                self.says(at)
            last = at
            if closing or self.rng.random() < we_reply:
                self.we_send(at + self.rng.randint(5 * MINUTE, 3 * HOUR), read=read)
            at += int(self.rng.uniform(*every_days) * DAY)
        return last

    def ago(self, low_days: float, high_days: float) -> int:
        return self.now - int(self.rng.uniform(low_days, high_days) * DAY)


def _busy_buyer(person: _Person) -> None:
    person.conversation(person.ago(120, 180), person.ago(1.5, 4), (1, 3), asks=0.3, orders=0.12)


def _slow_decider(person: _Person) -> None:
    person.conversation(person.ago(90, 180), person.ago(2, 25), (10, 25), asks=0.5, we_reply=0.8)


def _went_quiet(person: _Person) -> None:
    stop = person.ago(35, 150)
    person.conversation(stop - int(person.rng.uniform(20, 60) * DAY), stop, (3, 9), asks=0.3, orders=0.05)


def _comeback(person: _Person) -> None:
    first = person.ago(150, 180)
    person.conversation(first, first + 30 * DAY, (3, 8), asks=0.3, orders=0.08)
    person.we_send(person.ago(4, 6), campaign=CAMPAIGN)
    back = person.now - int(person.rng.uniform(0.1, 3.5) * DAY)
    person.says(back, "Hi again, is this offer still valid?")
    person.we_send(back + person.rng.randint(10 * MINUTE, 2 * HOUR))


def _receipts_off(person: _Person) -> None:
    person.conversation(person.ago(60, 170), person.ago(1, 40), (6, 15), asks=0.3, read=False)


def _one_off(person: _Person) -> None:
    at = person.ago(5, 175)
    person.says(at, person.rng.choice(QUESTIONS))
    person.we_send(at + person.rng.randint(10 * MINUTE, 3 * HOUR))


def _unanswered(person: _Person) -> None:
    person.conversation(person.ago(30, 90), person.ago(3, 10), (5, 12), asks=0.3)
    person.says(person.now - person.rng.randint(90 * MINUTE, 20 * HOUR), person.rng.choice(QUESTIONS))


def _window_closing(person: _Person) -> None:
    person.conversation(person.ago(20, 60), person.ago(2, 6), (4, 10), asks=0.2)
    person.says(person.now - person.rng.randint(22 * HOUR, 23 * HOUR), "Please send me the invoice details")


def _heating_up(person: _Person) -> None:
    person.conversation(person.ago(40, 80), person.ago(15, 30), (7, 14), asks=0.2)
    start = person.now - int(person.rng.uniform(1.2, 1.8) * DAY)
    for step in range(6):
        person.says(start + step * 3 * HOUR, person.rng.choice(QUESTIONS) if step % 2 else None)
    person.we_send(start + 16 * HOUR)


def _crossing_today(days: int):
    """Active until `days` days ago to within the last day: crosses that threshold today."""

    def behave(person: _Person) -> None:
        last = person.now - days * DAY + person.rng.randint(HOUR, 20 * HOUR)
        person.conversation(last - int(person.rng.uniform(20, 40) * DAY), last - DAY, (1, 3), asks=0.3)
        person.says(last)

    return behave


def _opted_out(person: _Person) -> None:
    person.conversation(person.ago(40, 120), person.ago(5, 20), (5, 12), asks=0.2)
    at = person.now - person.rng.randint(HOUR, 20 * HOUR)
    person.items.append((at, person.number, "user_preferences",
                         {"wa_id": person.wa_id, "detail": "User requested to stop marketing messages",
                          "category": "marketing_messages", "value": "stop", "timestamp": at}, person.name))


def _unreachable(person: _Person) -> None:
    person.conversation(person.ago(60, 150), person.ago(20, 40), (5, 12), asks=0.2)
    person.we_send(person.now - person.rng.randint(HOUR, 20 * HOUR), fails=131026)


_BEHAVIOURS = {
    "busy_buyer": _busy_buyer, "slow_decider": _slow_decider, "went_quiet": _went_quiet, "comeback": _comeback,
    "receipts_off": _receipts_off, "one_off": _one_off, "unanswered": _unanswered,
    "window_closing": _window_closing, "heating_up": _heating_up, "cooling_today": _crossing_today(7),
    "cold_today": _crossing_today(30), "opted_out": _opted_out, "unreachable": _unreachable,
}


def _body(at: int, number: str, field_name: str, item: dict, name: str) -> bytes:
    """One item as the body Meta sends it in (one item a body, as a live number mostly gets)."""
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": NUMBERS[number], "phone_number_id": number}}
    if field_name == "messages":
        value["contacts"] = [{"profile": {"name": name}, "wa_id": item["from"]}]
        value["messages"] = [item]
    elif field_name == "statuses":
        value["statuses"] = [item]
        field_name = "messages"
    else:
        value[field_name] = [item]
    return json.dumps({"object": "whatsapp_business_account",
                       "entry": [{"id": WABA_ID, "changes": [{"value": value, "field": field_name}]}]},
                      separators=(",", ":")).encode()
