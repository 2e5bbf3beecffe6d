"""Seeded, realistic Cloud API webhook bodies for the benchmarks: distinct, a mix of inbound
messages and statuses of our messages, 1 to 50 updates a body, non-ASCII escaped as Meta does."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

SEED = 20261122
PHONE_NUMBER_ID, WABA_ID, DISPLAY = "106540352242922", "102290129340398", "15550783881"
COUNTRY_PREFIXES = ["34", "55", "91", "1", "49", "62", "86", "52", "971", "33"]
TEXTS = [
    "Hi, what is the price for 500 pieces?", "¿Cuál es el precio por mayor?", "Can you send a sample?",
    "Do you have CE certificate? What is the MOQ?", "We want to place an order next month", "Thanks!",
    "Olá, qual o prazo de entrega?", "Bonjour, quel est le délai?", "请问最小起订量是多少？", "ok 👍",
    "Not interested anymore, please stop", "Kirimkan katalog dan harga grosir", "Wie ist die Lieferzeit?",
]
SIZE_WEIGHTS = [(1, 70), (5, 20), (30, 8), (50, 2)]  # updates per body → share of bodies


@dataclass(frozen=True)
class Corpus:
    bodies: list[bytes]
    sizes: list[int]  # messages + statuses in each body

    @property
    def updates(self) -> int:
        return sum(self.sizes)


def _customer(rng: random.Random, n: int) -> tuple[str, str]:
    prefix = COUNTRY_PREFIXES[n % len(COUNTRY_PREFIXES)]
    wa_id = prefix + str(600_000_000 + n * 7919 % 399_999_999).rjust(10 - len(prefix) + 2, "0")
    return wa_id, f"Customer {n}"


def _message(rng: random.Random, serial: int, wa_id: str, at: int) -> dict:
    kind = rng.random()
    message = {"from": wa_id, "id": f"wamid.bench{serial:012d}", "timestamp": str(at)}
    if kind < 0.75:
        message |= {"type": "text", "text": {"body": rng.choice(TEXTS)}}
    elif kind < 0.85:
        message |= {"type": "image", "image": {"mime_type": "image/jpeg", "sha256": "x" * 44, "id": str(serial)}}
    elif kind < 0.92:
        message |= {"type": "reaction", "reaction": {"message_id": f"wamid.out{serial:012d}", "emoji": "👍"}}
    elif kind < 0.97:
        message |= {"type": "interactive", "interactive": {"type": "button_reply",
                                                           "button_reply": {"id": "yes", "title": "Yes, send it"}}}
    else:
        items = [{"product_retailer_id": f"sku{k}", "quantity": rng.randint(1, 20), "item_price": 12.5,
                  "currency": "USD"} for k in range(rng.randint(1, 3))]
        message |= {"type": "order", "order": {"catalog_id": "1", "product_items": items}}
    return message


def _status(outbound: dict[str, list[int]], wa_id: str, at: int) -> dict:
    """The next status of the customer's latest message from us: sent, delivered, read, then a
    new message."""
    number, stage = outbound.get(wa_id, [0, 3])
    if stage == 3:
        number, stage = number + 1, 0
    outbound[wa_id] = [number, stage + 1]
    return {
        "id": f"wamid.out{wa_id}x{number:06d}", "status": ("sent", "delivered", "read")[stage],
        "timestamp": str(at), "recipient_id": wa_id,
        "pricing": {"billable": True, "pricing_model": "PMP", "category": "utility", "type": "regular"},
    }


def make_corpus(bodies: int, customers: int = 2000, start: int = 1_790_000_000, span_s: int = 30 * 86_400,
                spread: int = 50, seed: int = SEED) -> Corpus:
    """`bodies` distinct bodies about `customers` customers, their timestamps spread evenly over
    `span_s` seconds from `start`. Who each update is about follows a Pareto law over customers,
    scaled by `spread`: with 50, the busiest customer has about 2% of the updates and the busiest
    hundred about three quarters; a larger spread makes the busiest less busy."""
    rng = random.Random(seed)
    size_pool = [size for size, weight in SIZE_WEIGHTS for _ in range(weight)]
    out, out_sizes, serial, outbound = [], [], 0, {}
    for n in range(bodies):
        at = start + n * span_s // bodies
        size = rng.randint(1, rng.choice(size_pool))
        statuses = rng.random() < 0.5
        people = [_customer(rng, int((rng.paretovariate(1.2) - 1) * spread) % customers) for _ in range(size)]
        value = {"messaging_product": "whatsapp",
                 "metadata": {"display_phone_number": DISPLAY, "phone_number_id": PHONE_NUMBER_ID}}
        if statuses:
            value["statuses"] = []
            for wa_id, _ in people:
                value["statuses"].append(_status(outbound, wa_id, at))
        else:
            value["contacts"] = [{"profile": {"name": name}, "wa_id": wa_id} for wa_id, name in dict(people).items()]
            value["messages"] = []
            for wa_id, _ in people:
                serial += 1
                value["messages"].append(_message(rng, serial, wa_id, at))
        out_sizes.append(size)
        body = {"object": "whatsapp_business_account",
                "entry": [{"id": WABA_ID, "changes": [{"value": value, "field": "messages"}]}]}
        out.append(json.dumps(body, separators=(",", ":")).encode())
    return Corpus(out, out_sizes)
