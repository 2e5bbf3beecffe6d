"""What a reminder says to a person: `[reminders.headlines]` and `[reminders.templates]` of
wapulse.toml, English by default.

Templates are Jinja2 over the reminder's JSON fields (the webhook channel's body) plus
`headline`. They are compiled and tried on every rule at start-up, so a typo or an unknown
field stops the process with one line instead of failing a delivery at 3 a.m.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from jinja2 import Environment, StrictUndefined, Template, TemplateError

from scoring.reminders import CustomerFacts, ReminderRules, Rule, compose
from scoring.tiers import Tier

HEADLINES = {
    Rule.WENT_COLD: "Went cold", Rule.COOLING: "Cooling down", Rule.HEATING: "Heating up",
    Rule.REACTIVATED: "Came back", Rule.UNREACHABLE: "Unreachable", Rule.UNANSWERED: "Question unanswered",
    Rule.WINDOW_CLOSING: "Window closing",
}
TEXT = (
    "{{ headline }}: {{ customer.name or customer.key }}"
    "{% if customer.wa_id %} (+{{ customer.wa_id }}){% endif %}"
    "{% if days_silent is not none %}, {{ days_silent }} days silent{% endif %}."
    "{% if reason == 'opted_out' %} They stopped marketing messages.{% endif %}"
    "{% if reason == 'undeliverable' %} Our message could not be delivered (not on WhatsApp?).{% endif %}"
    "{% if signals %} Last signals: {{ signals | join(', ') }}.{% endif %}"
    "{% if customer_local_time %} Their local time: {{ customer_local_time[11:16] }}.{% endif %}"
    " {{ 'Outside the 24-hour window: a template is needed.' if template_required"
    " else 'Within the 24-hour window: a free-form message is allowed.' }}"
    " Next: {{ suggested_action }}"
)
DIGEST = "{{ count }} reminders for {{ rep }}"
FIELDS_ADDED_LATER = {"type": "reminder", "phone_number_id": None, "reason": None}
"""Fields a reminder stored by an older release lacks: templates may use them all the same."""

_jinja = Environment(undefined=StrictUndefined, autoescape=False)


@dataclass(frozen=True)
class Wording:
    headlines: Mapping[Rule, str] = field(default_factory=lambda: dict(HEADLINES))
    text: Template = field(default_factory=lambda: _jinja.from_string(TEXT))
    digest_title: Template = field(default_factory=lambda: _jinja.from_string(DIGEST))

    def headline(self, content: Mapping) -> str:
        return self.headlines[Rule(content["rule"])]

    def render(self, content: Mapping) -> str:
        return self.text.render({**FIELDS_ADDED_LATER, **content, "headline": self.headline(content)}).strip()

    def digest(self, rep_name: str, contents: list[Mapping]) -> tuple[str, str, str]:
        """(headline, text, summary) of several reminders sent as one: the title, then each
        reminder; the summary is one short line (the title and who each one is about) for
        channels that take little text, such as a WhatsApp template parameter."""
        title = self.digest_title.render(count=len(contents), rep=rep_name).strip()
        text = "\n\n".join([title] + [f"• {self.render(content)}" for content in contents])
        names = [f"{self.headline(c)}: {c['customer']['name'] or c['customer']['key']}" for c in contents]
        return title, text, f"{title}: {'; '.join(names)}."

    @classmethod
    def from_config(cls, table: Mapping) -> Wording:
        """`table` is `[reminders]`; raises ValueError naming the bad key."""
        headlines = dict(HEADLINES)
        for name, text in _table(table.get("headlines", {}), "[reminders.headlines]").items():
            try:
                rule = Rule(name)
            except ValueError:
                raise ValueError(f"[reminders.headlines] {name!r} is not a rule; rules: "
                                 f"{', '.join(rule.value for rule in Rule)}") from None
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"[reminders.headlines] {name} must be a non-empty text")
            headlines[rule] = text.strip()
        templates = _table(table.get("templates", {}), "[reminders.templates]")
        if unknown := set(templates) - {"text", "digest"}:
            raise ValueError(f"[reminders.templates] has unknown keys {sorted(unknown)}; known: digest, text")
        wording = cls(headlines, _compile(templates.get("text", TEXT), "text"),
                      _compile(templates.get("digest", DIGEST), "digest"))
        wording._try_on_every_rule()
        return wording

    def _try_on_every_rule(self) -> None:
        """Render each rule once with sample values, so a bad field name fails now."""
        sample = CustomerFacts("16505551234", "16505551234", "US.1", "Sample", "America/New_York", 0, ("question",))
        for rule in Rule:
            content = compose("rem_sample", rule, "rep", Tier.WARM, Tier.COLD, 0, sample, ReminderRules(), 86_400,
                              "opted_out" if rule == Rule.UNREACHABLE else None)
            try:
                self.render(content)
            except TemplateError as error:
                raise ValueError(f"[reminders.templates] text fails on a {rule.value} reminder: {error}") from None
        try:
            self.digest("rep", [content])
        except TemplateError as error:
            raise ValueError(f"[reminders.templates] digest fails: {error} (it knows count and rep)") from None


def _compile(source, key: str) -> Template:
    if not isinstance(source, str) or not source.strip():
        raise ValueError(f"[reminders.templates] {key} must be a non-empty text")
    try:
        return _jinja.from_string(source)
    except TemplateError as error:
        raise ValueError(f"[reminders.templates] {key} is not a valid template: {error}") from None


def _table(value, where: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where} must be a table")
    return value
