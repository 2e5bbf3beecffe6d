"""Keyword signals with plain strings: the shipped lists in every supported language, and the rules."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from scoring.signals import SignalMatcher, merge_keywords, normalise

KEYWORDS = {
    name: table["keywords"]
    for name, table in tomllib.loads((Path(__file__).parents[2] / "scoring" / "keywords.toml").read_text()).items()
}
MATCHER = SignalMatcher.from_keywords(KEYWORDS)

EXPECTED = [
    # (language, text, signals that must be found)
    ("en", "How much for 500 units FOB Shenzhen?", {"price_inquiry", "question"}),
    ("en", "Can you send a free sample first", {"question", "sample_request"}),
    ("en", "Do you have the CE certificate, and what is the MOQ", {"question", "spec_question"}),
    ("en", "OK we are ready to buy, please send the proforma invoice", {"order_intent"}),
    ("en", "Not interested, please stop messaging me", {"negative"}),
    ("en", "haha thank you my friend", {"rapport"}),
    ("es", "¿Cuánto cuesta el envío a Lima?", {"price_inquiry", "question"}),
    ("es", "Necesito una muestra antes del pedido", {"sample_request"}),
    ("es", "Quiero hacer un pedido de 300 unidades", {"order_intent"}),
    ("es", "No me interesa, gracias", {"negative"}),
    ("es", "jajaja gracias amigo", {"rapport"}),
    ("pt", "Qual o preço por unidade?", {"price_inquiry", "question"}),
    ("pt", "Vocês têm amostra grátis", {"question", "sample_request"}),
    ("pt", "Quero fechar o pedido, mando o PIX", {"order_intent"}),
    ("pt", "kkkk valeu amigo", {"rapport"}),
    ("fr", "Quel est le prix unitaire ?", {"price_inquiry", "question"}),
    ("fr", "Pouvez-vous envoyer un échantillon", {"question", "sample_request"}),
    ("fr", "Non merci, trop cher", {"negative"}),
    ("de", "Was kostet das Stück?", {"price_inquiry", "question"}),
    ("de", "Haben Sie ein Datenblatt und die Mindestbestellmenge", {"question", "spec_question"}),
    ("de", "Ich möchte bestellen", {"order_intent"}),
    ("ar", "كم السعر؟", {"price_inquiry", "question"}),
    ("ar", "هل يوجد عينة", {"question", "sample_request"}),
    ("ar", "غير مهتم شكرا", {"negative"}),
    ("ar", "كَمِ السِّعْرُ", {"price_inquiry", "question"}),  # with harakat
    ("id", "Berapa harganya kak?", {"price_inquiry", "question"}),
    ("id", "Mau order 50 pcs, ini bukti transfer", {"order_intent"}),
    ("id", "wkwkwk makasih kak", {"rapport"}),
    ("hi", "bhai iska daam kitna hai", {"price_inquiry", "question"}),
    ("hi", "sample chahiye pehle", {"sample_request"}),
    ("hi", "abhi nahi chahiye", {"negative"}),
    ("zh", "这个多少钱？", {"price_inquiry", "question"}),
    ("zh", "可以先寄样品吗", {"question", "sample_request"}),
    ("zh", "起订量是多少", {"question", "spec_question"}),
    ("zh", "我们决定下单", {"order_intent"}),
    ("zh", "不需要了，谢谢", {"negative"}),
]


@pytest.mark.parametrize("language, text, expected", EXPECTED, ids=[f"{lang}-{n}" for n, (lang, *_) in enumerate(EXPECTED)])
def test_the_shipped_lists_find_the_signal_in_every_language(language, text, expected):
    assert expected <= MATCHER.match(text)


def test_every_shipped_signal_fires_in_every_supported_language():
    covered = {(signal, language) for language, _, signals in EXPECTED for signal in signals}
    for signal in ("price_inquiry", "question"):
        assert {language for s, language in covered if s == signal} == {"en", "es", "pt", "fr", "de", "ar", "id", "hi", "zh"}


@pytest.mark.parametrize(
    "text",
    ["priceless memories", "ok", "Thanks, received", "yes po", "ce produit est bien", "the sampled data",
     "Good morning", "Bom dia", "see https://example.com/p?id=3", "   "],
)
def test_ordinary_text_fires_nothing(text):
    assert MATCHER.match(text) == frozenset()


def test_question_marks_of_every_script_count_outside_urls():
    for text in ("ready?", "¿listo", "جاهز؟", "好了？", "ready\u037e"):
        assert "question" in MATCHER.match(text), text
    assert "question" not in MATCHER.match("link: https://shop.example/cart?item=9")


def test_emoji_are_rapport_but_digits_are_not():
    assert MATCHER.match("👍") == {"rapport"}
    assert MATCHER.match("Thanks 🙏") == {"rapport"}
    assert "rapport" not in MATCHER.match("order #123 *urgent*")


def test_normalisation_ignores_case_accents_marks_and_spacing():
    assert normalise("  ¿CUÁNTO   Cuesta? ") == "¿cuanto cuesta?"
    assert normalise("كَمِ") == normalise("كم")


def test_keywords_match_whole_words_but_chinese_anywhere():
    matcher = SignalMatcher.from_keywords({"price_inquiry": ["price", "价格"]})
    assert matcher.match("the price is fine") == {"price_inquiry"}
    assert matcher.match("priceless") == frozenset()
    assert matcher.match("请问价格表") == {"price_inquiry"}


def test_merge_keywords_extends_lists_and_adds_signals():
    merged = merge_keywords({"price_inquiry": ["price"]}, {"price_inquiry": ["tarifa"], "competitor": ["alibaba"]})
    assert merged == {"price_inquiry": ["price", "tarifa"], "competitor": ["alibaba"]}
    assert SignalMatcher.from_keywords(merged).match("Alibaba tarifa") == {"price_inquiry", "competitor"}


@pytest.mark.parametrize("extra", [{"price_inquiry": "tarifa"}, {"x": [3]}, {"x": [""]}, {"x": ["  "]}])
def test_merge_keywords_names_the_signal_of_a_bad_entry(extra):
    with pytest.raises(ValueError, match=repr(next(iter(extra)))):
        merge_keywords({"price_inquiry": ["price"]}, extra)
