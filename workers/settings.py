"""Configuration: environment first (12-factor), rules from an optional `wapulse.toml`.

Every process (web, worker, cron, CLI) builds one `Settings` at start-up; a missing or invalid
value raises `ConfigError` with one line naming it, which the entry points print instead of a
traceback.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:  # imported where used: the web process never loads the scoring rules (scipy)
    from scoring.figures import FigureRules
    from scoring.followups import MessageTemplate
    from scoring.reps import Rep
    from scoring.signals import SignalMatcher
    from scoring.tiers import TierRules
    from store.reminders import ReminderSetup
    from workers.retention import Retention
    from workers.wording import Wording

DEFAULT_DATABASE_URL = "sqlite:///var/wapulse.db"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_CONFIG_FILE = "wapulse.toml"
DEFAULT_GRAPH_URL = "https://graph.facebook.com/v24.0"
MAX_BODY_BYTES = 4 * 1024 * 1024
DEFAULT_CHAT_URL = "https://wa.me/{wa_id}"
CHAT_URL_FIELDS = ("wa_id", "user_id", "key", "phone_number_id")
MAX_DELIVERY_DEADLINE_S = 300  # well under the 10 minutes after which a send is taken for a dead worker's


class ConfigError(Exception):
    """A setting is missing or wrong; the message names it and says what is expected."""


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = DEFAULT_REDIS_URL
    app_secret: str | None = None
    verify_token: str | None = None
    api_token: str | None = None
    metrics_token: str | None = None  # WAPULSE_METRICS_TOKEN: /metrics only (else the API token opens it)
    secret_key: str | None = None  # WAPULSE_SECRET_KEY: signs the desk's session cookies and sign-in links
    public_url: str | None = None  # WAPULSE_PUBLIC_URL: where people reach the desk (for sign-in links)
    smtp_url: str | None = None  # SMTP_URL: smtp://user:password@host:587?starttls=1, or smtps://... for e-mail reminders
    mail_from: str = "wapulse@localhost"  # WAPULSE_MAIL_FROM: the sender of e-mail reminders
    whatsapp_token: str | None = None  # WHATSAPP_ACCESS_TOKEN: sends WhatsApp reminders to reps
    graph_url: str = DEFAULT_GRAPH_URL  # WHATSAPP_GRAPH_URL: the Graph API base, with its version
    alert_sender: str | None = None  # WHATSAPP_ALERT_PHONE_NUMBER_ID: the number WhatsApp reminders come from
    now: datetime | None = None  # WAPULSE_NOW: the instant the whole system takes as now
    batch_size: int = 500  # WAPULSE_BATCH_SIZE: inbox entries per worker transaction
    stale_after_ms: int = 60_000  # WAPULSE_STALE_AFTER_MS: unacknowledged this long = worker died
    body_deadline_s: int = 10  # WAPULSE_BODY_DEADLINE_S: a request body, first byte to last
    web_threads: int = 4  # WEB_THREADS: threads a web process runs the Flask app on
    delivery_deadline_s: int = 15  # WAPULSE_DELIVERY_DEADLINE_S: one reminder send, first byte to last
    deliveries_in_flight: int = 8  # WAPULSE_DELIVERIES_IN_FLIGHT: reminder sends at once per worker
    config_path: Path | None = None
    rules: Mapping = field(default_factory=dict)  # the parsed wapulse.toml

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        config_path = _config_path(env)
        return cls(
            database_url=env.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            redis_url=env.get("REDIS_URL") or DEFAULT_REDIS_URL,
            app_secret=env.get("WHATSAPP_APP_SECRET") or None,
            verify_token=env.get("WHATSAPP_VERIFY_TOKEN") or None,
            api_token=env.get("WAPULSE_API_TOKEN") or None,
            metrics_token=env.get("WAPULSE_METRICS_TOKEN") or None,
            secret_key=_secret(env, "WAPULSE_SECRET_KEY"),
            public_url=_url(env, "WAPULSE_PUBLIC_URL"),
            smtp_url=env.get("SMTP_URL") or None,
            mail_from=env.get("WAPULSE_MAIL_FROM") or "wapulse@localhost",
            whatsapp_token=env.get("WHATSAPP_ACCESS_TOKEN") or None,
            graph_url=env.get("WHATSAPP_GRAPH_URL") or DEFAULT_GRAPH_URL,
            alert_sender=_digits(env, "WHATSAPP_ALERT_PHONE_NUMBER_ID"),
            now=_instant(env.get("WAPULSE_NOW"), "WAPULSE_NOW"),
            batch_size=_positive_int(env, "WAPULSE_BATCH_SIZE", 500),
            stale_after_ms=_positive_int(env, "WAPULSE_STALE_AFTER_MS", 60_000, minimum=0),
            body_deadline_s=_positive_int(env, "WAPULSE_BODY_DEADLINE_S", 10, maximum=300),
            web_threads=_positive_int(env, "WEB_THREADS", 4, maximum=256),
            delivery_deadline_s=_positive_int(env, "WAPULSE_DELIVERY_DEADLINE_S", 15, maximum=MAX_DELIVERY_DEADLINE_S),
            deliveries_in_flight=_positive_int(env, "WAPULSE_DELIVERIES_IN_FLIGHT", 8, maximum=64),
            config_path=config_path,
            rules=_load_toml(config_path) if config_path else {},
        )

    @cached_property
    def signal_matcher(self) -> SignalMatcher:
        """Keyword signals: the shipped lists, extended by `[signals.<name>] keywords = [...]`."""
        from scoring.signals import SignalMatcher, merge_keywords

        base = tomllib.loads(resources.files("scoring").joinpath("keywords.toml").read_text("utf-8"))
        extra = {
            name: _table(table, f"[signals.{name}]").get("keywords", [])
            for name, table in _table(self.rules.get("signals", {}), "[signals]").items()
        }
        try:
            merged = merge_keywords({name: table["keywords"] for name, table in base.items()}, extra)
        except ValueError as error:
            raise ConfigError(f"{self.config_path}: {error}") from None
        return SignalMatcher.from_keywords(merged)

    @cached_property
    def retention(self) -> Retention:
        """`[retention]`: days each kind of record is kept (workers.retention)."""
        from workers.retention import Retention

        return self._rules_table("retention", lambda table: Retention.from_config(
            table, self.reminder_setup.rules.max_age_s))

    @cached_property
    def tier_rules(self) -> TierRules:
        """`[tiers]`: a preset (default, b2b_long_cycle, fast_moving) and per-threshold overrides."""
        from scoring.tiers import TierRules

        return self._rules_table("tiers", TierRules.from_config)

    @cached_property
    def figure_rules(self) -> FigureRules:
        """`[figures]`: the windows of RFM frequency and of the frequency band."""
        from scoring.figures import FigureRules

        return self._rules_table("figures", FigureRules.from_config)

    @cached_property
    def reps(self) -> dict[str, Rep]:
        """`[[reps]]`: each rep with their time zone, quiet hours and channels, by id."""
        from scoring.reps import Rep

        reps: dict[str, Rep] = {}
        for where, rep in self._array_of_tables("reps", Rep.from_config):
            if rep.id in reps:
                raise ConfigError(f"{self.config_path}: {where}: id {rep.id!r} is used twice")
            accounts = {"email": ("SMTP_URL", self.smtp_url), "whatsapp": ("WHATSAPP_ACCESS_TOKEN", self.whatsapp_token)}
            for channel in rep.channels:
                variable, value = accounts.get(channel.type, ("", True))
                if not value:
                    raise ConfigError(f"{self.config_path}: {where} ({rep.id}): its {channel.type} channel "
                                      f"needs {variable}")
            reps[rep.id] = rep
        return self._with_managers(reps)

    @cached_property
    def owner_ids(self) -> frozenset[str]:
        """The reps who may own customers: every rep but the managers, who oversee them."""
        return frozenset(rep.id for rep in self.reps.values() if not rep.is_manager)

    def _with_managers(self, reps: dict[str, Rep]) -> dict[str, Rep]:
        """`[managers] ids = [...]`: reps who are managers, besides those with role = "manager"."""
        from dataclasses import replace

        managers = _table(self.rules.get("managers", {}), "[managers]")
        if unknown := set(managers) - {"ids"}:
            raise ConfigError(f"{self.config_path}: [managers] has unknown keys {sorted(unknown)}; known: ids")
        ids = managers.get("ids", [])
        if not isinstance(ids, list) or not all(isinstance(rep_id, str) for rep_id in ids):
            raise ConfigError(f"{self.config_path}: [managers] ids must be a list of [[reps]] ids")
        if strangers := [rep_id for rep_id in ids if rep_id not in reps]:
            raise ConfigError(f"{self.config_path}: [managers] ids names {strangers}, which are not [[reps]] ids")
        return {rep_id: replace(rep, role="manager") if rep_id in ids else rep for rep_id, rep in reps.items()}

    @cached_property
    def templates(self) -> dict[str, MessageTemplate]:
        """`[[templates]]`: the approved templates reps may send customers from the desk, by name."""
        from scoring.followups import MessageTemplate

        return {template.name: template for _, template in self._array_of_tables("templates", MessageTemplate.from_config)}

    @cached_property
    def chat_url(self) -> str:
        """`[desk] chat_url`: where a rep opens a customer's chat, with `{wa_id}`, `{user_id}`,
        `{key}` or `{phone_number_id}` filled in (wa.me, for the WhatsApp Business app, by default)."""
        desk = _table(self.rules.get("desk", {}), "[desk]")
        if unknown := set(desk) - {"chat_url"}:
            raise ConfigError(f"{self.config_path}: [desk] has unknown keys {sorted(unknown)}; known: chat_url")
        url = desk.get("chat_url", DEFAULT_CHAT_URL)
        try:
            url.format_map({name: "x" for name in CHAT_URL_FIELDS}) if isinstance(url, str) else None
        except (KeyError, ValueError, IndexError):
            url = None
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise ConfigError(f"{self.config_path}: [desk] chat_url must be an http(s) URL using only "
                              f"{', '.join('{' + name + '}' for name in CHAT_URL_FIELDS)}")
        return url

    @cached_property
    def reminder_setup(self) -> ReminderSetup:
        """`[reminders]` and `[owners]`, checked against the reps."""
        from scoring.reminders import ReminderRules
        from scoring.reps import OwnerPolicy
        from store.reminders import ReminderSetup

        rep_ids = frozenset(self.reps)
        return ReminderSetup(
            rules=self._rules_table("reminders", lambda table: ReminderRules.from_config(table, rep_ids)),
            reps=self.reps,
            owners=self._rules_table("owners", lambda table: OwnerPolicy.from_config(table, rep_ids)),
        )

    @cached_property
    def reminder_wording(self) -> Wording:
        """`[reminders.headlines]` and `[reminders.templates]`: what reminders say."""
        from workers.wording import Wording

        return self._rules_table("reminders", Wording.from_config)

    def _array_of_tables(self, name: str, build) -> list[tuple[str, object]]:
        """`[[name]]` tables, each built by `build(table, where)`, with where it stands."""
        tables = self.rules.get(name, [])
        if not isinstance(tables, list):
            raise ConfigError(f"{self.config_path}: {name} must be written as [[{name}]] tables")
        built = []
        for number, table in enumerate(tables, 1):
            where = f"[[{name}]] {number}"
            try:
                built.append((where, build(_table(table, where), where)))
            except ValueError as error:
                raise ConfigError(f"{self.config_path}: {error}") from None
        return built

    def _rules_table(self, name: str, build):
        try:
            return build(_table(self.rules.get(name, {}), f"[{name}]"))
        except ValueError as error:
            raise ConfigError(f"{self.config_path}: {error}") from None

    def check(self) -> Settings:
        """Load everything loaded lazily, so a bad wapulse.toml stops start-up, not a job."""
        self.signal_matcher, self.tier_rules, self.figure_rules, self.reminder_setup, self.reminder_wording, self.chat_url, self.templates
        self.retention
        return self

    def clock(self) -> datetime:
        """Now, as the system sees it: WAPULSE_NOW when set, else the real clock."""
        return self.now or datetime.now(UTC)

    def now_ts(self) -> int:
        """Now as Unix seconds, the unit of every event instant."""
        return int(self.clock().timestamp())

    def desk_url(self) -> str:
        """Where people reach the desk: WAPULSE_PUBLIC_URL, else the address `wapulse web` serves."""
        host, port = os.environ.get("HOST", "127.0.0.1"), os.environ.get("PORT", "8000")
        return self.public_url or f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"

    def require_secret(self) -> str:
        if not self.app_secret:
            raise ConfigError("WHATSAPP_APP_SECRET is not set: it is needed to verify webhook signatures")
        return self.app_secret


def _config_path(env: Mapping[str, str]) -> Path | None:
    explicit = env.get("WAPULSE_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"WAPULSE_CONFIG names {explicit}, which is not a readable file")
        return path
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def _load_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None


def _table(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table")
    return value


def _positive_int(env: Mapping[str, str], name: str, default: int, minimum: int = 1, maximum: int | None = None) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum or (maximum is not None and value > maximum):
        limits = f"from {minimum} to {maximum}" if maximum is not None else f"of at least {minimum}"
        raise ConfigError(f"{name}={raw!r} must be a whole number {limits}")
    return value


def _secret(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name) or None
    if value is not None and len(value) < 32:
        raise ConfigError(f"{name} must be at least 32 characters (make run generates one into .env)")
    return value


def _url(env: Mapping[str, str], name: str) -> str | None:
    value = (env.get(name) or "").rstrip("/") or None
    if value is not None and not value.startswith(("https://", "http://")):
        raise ConfigError(f"{name}={value!r} must start with https:// or http://")
    return value


def _digits(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name) or None
    if value is not None and not value.isdigit():
        raise ConfigError(f"{name}={value!r} must be a phone number id (digits), as WhatsApp Manager shows it")
    return value


def _instant(value: str | None, name: str) -> datetime | None:
    """An ISO-8601 instant; one without a zone is taken as UTC."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not an ISO-8601 instant such as 2026-11-22T09:30:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_instant(value: str, name: str) -> datetime:
    """`--now` and friends: the same rules as WAPULSE_NOW."""
    return _instant(value, name)
