"""`wapulse`: the one console entry point."""

from __future__ import annotations

import csv
import fcntl
import logging
import os
import shutil
import socket
import sys
import secrets
import tempfile
from datetime import timedelta
from functools import wraps
from pathlib import Path
from typing import IO

import click
import msgspec
from dotenv import load_dotenv
from redis import Redis
from redis.exceptions import RedisError
from rq import SimpleWorker
from rq.worker_pool import WorkerPool
from rq.cron import CronScheduler
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from tqdm import tqdm

from report.visible import visible
from store import db, queries
from wapulse import replay as replaying
from wapulse.services import ensure_redis
from scoring.events import iso
from scoring.tiers import Tier
from workers import inbox, metrics
from workers.context import Context, install
from workers.rebuild import rebuild as rebuild_all
from workers.reminders import REMINDER_QUEUE, request_delivery
from store.accounts import create_link, password_set_at, set_password
from store.reminders import CANCELLED, FAILED, PENDING, SENDING, SENT, assign_owners, delivery_rows, retry_delivery
from workers.figures import refresh_figures
from workers.sweep import sweep_tiers
from workers.settings import ConfigError, Settings, parse_instant

_json = msgspec.json.Encoder(decimal_format="number")


def _settings() -> Settings:
    return Settings.from_env()


def _context(now: str | None = None) -> Context:
    """What this command's work runs with: the environment's settings, checked, and time fixed
    at `--now` when given."""
    return Context.from_env().as_of(parse_instant(now, "--now") if now else None)


def _clear_errors(command):
    """Turn configuration, Redis and database failures into one readable line and exit 2."""

    @wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except ConfigError as error:
            raise click.ClickException(str(error)) from None
        except RedisError as error:
            raise click.ClickException(f"Redis ({_settings().redis_url}): {error}") from None
        except SQLAlchemyError as error:
            raise click.ClickException(f"database: {str(error).splitlines()[0]}") from None

    return run


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """wapulse: WhatsApp Business webhooks turned into live customer activity."""
    load_dotenv(".env", override=False)  # what `make run` generated; real environment wins
    logging.basicConfig(level=os.environ.get("WAPULSE_LOG_LEVEL", "WARNING"), format="%(levelname)s %(name)s: %(message)s")


# ---- running it -------------------------------------------------------------------------------


@main.group("db")
def db_group():
    """Database schema."""


@db_group.command("upgrade")
@_clear_errors
def db_upgrade():
    """Apply every migration (make run and wapulse up do it first)."""
    settings = _settings()
    db.upgrade(settings.database_url)
    click.echo(f"database is at the newest schema ({_safe_url(settings.database_url)})")


@main.command()
@_clear_errors
def web():
    """Serve the webhook, health, the API and the desk on HOST:PORT (default 127.0.0.1:8000)."""
    _serve(_settings().check())


def _serve(settings: Settings, held: socket.socket | IO | None = None) -> None:
    """Become granian serving webhook.intake, as the environment configures it (`held`: the
    port's claim, when the caller took it already)."""
    settings.require_secret()  # fail here with one line, not in the server's workers
    host, port = os.environ.get("HOST", "127.0.0.1"), os.environ.get("PORT", "8000")
    held = held or hold_the_port(host, port)  # noqa: F841 - open until the exec, which keeps it
    workers = os.environ.get("WEB_CONCURRENCY", "2")
    granian = shutil.which("granian") or os.path.join(os.path.dirname(sys.executable), "granian")
    argv = [granian, "--interface", "asgi", "--loop", "uvloop", "--factory", "--host", host, "--port", port,
            "--workers", workers, "--http1-header-read-timeout", str(min(settings.body_deadline_s, 60) * 1000),
            "--no-ws", "webhook.intake:create_intake"]
    os.execv(granian, argv)


def hold_the_port(host: str, port: str) -> socket.socket | IO:
    """granian binds with SO_REUSEPORT, so a second server on a busy port would share it with the
    first and take half its requests. A claim on the port, held by the server for as long as it
    runs (its descriptor survives the exec), keeps out a second `wapulse web` started even at the
    same moment and under any spelling of the host; a bind without SO_REUSEPORT keeps out any
    other program listening there. On Linux the claim is a socket in the abstract namespace,
    which vanishes with the server; elsewhere, a lock on a file in the temporary folder."""
    try:
        claim = _claim_port(int(port))
    except OSError:
        raise ConfigError(f"cannot listen on {host}:{port}: another wapulse web runs there (set PORT to another "
                          "port)") from None
    try:
        with socket.create_server((host, int(port))):
            pass
    except OSError as error:
        raise ConfigError(f"cannot listen on {host}:{port}: {os.strerror(error.errno)} (set PORT to another "
                          "port)") from None
    os.set_inheritable(claim.fileno(), True)
    return claim


def _claim_port(port: int) -> socket.socket | IO:
    if sys.platform == "linux":
        claim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        claim.bind(f"\0wapulse-web-{port}")
        return claim
    lock = open(Path(tempfile.gettempdir()) / f"wapulse-web-{port}.lock", "a")
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return lock


WORKER_QUEUES = {"ingest": [inbox.INGEST_QUEUE], "reminders": [REMINDER_QUEUE]}


@main.command()
@click.option("--queue", "queue", type=click.Choice(sorted(WORKER_QUEUES)), default="ingest", show_default=True,
              help="ingest: the webhook inbox, sweeps and rebuilds; reminders: delivery to reps, on workers of "
                   "its own so that a slow rep's endpoint never holds up ingestion.")
@click.option("--burst", is_flag=True, help="Drain the queue, then exit (as rq worker --burst).")
@click.option("--processes", type=click.IntRange(1), default=1, envvar="WORKER_PROCESSES", show_default=True,
              help="Worker processes, kept alive by an RQ worker pool (env WORKER_PROCESSES).")
@_clear_errors
def worker(queue: str, burst: bool, processes: int):
    """Run RQ workers on one queue (in-process jobs: no fork per batch).

    Two ingest processes drain at once: one parses while the other holds the write transaction."""
    redis = install(_context()).redis  # the jobs this process runs take it (pool processes build their own)
    if queue == "ingest":
        inbox.request_drain_if_backlog(redis)
    queues = WORKER_QUEUES[queue]
    if processes == 1:
        SimpleWorker(queues, connection=redis).work(burst=burst)
    else:
        WorkerPool(queues, connection=redis, num_workers=processes, worker_class=SimpleWorker).start(burst=burst)


@main.command()
@_clear_errors
def cron():
    """Run the rq cron scheduler with workers.cron_config."""
    scheduler = CronScheduler(connection=Redis.from_url(_settings().redis_url))
    scheduler.load_config_from_file("workers.cron_config")
    scheduler.start()


@main.command()
@_clear_errors
def up():
    """Migrate, make sure Redis answers, then start web, worker and cron from the Procfile."""
    settings = _settings().check()
    settings.require_secret()
    db.upgrade(settings.database_url)
    click.echo(ensure_redis(settings.redis_url))
    metrics.clear_folder()  # the processes about to start count from zero
    host, port = os.environ.get("HOST", "127.0.0.1"), os.environ.get("PORT", "8000")
    click.echo(f"webhook: http://{host}:{port}/webhook   health: http://{host}:{port}/health   "
               f"metrics: http://{host}:{port}/metrics")
    click.echo("next: wapulse replay fixtures/cloudapi --url http://%s:%s/webhook ; wapulse customers" % (host, port))
    honcho = shutil.which("honcho") or os.path.join(os.path.dirname(sys.executable), "honcho")
    os.execv(honcho, [honcho, "start", "-f", "Procfile", "--port", port])  # web, first, gets PORT


@main.command("metrics")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on (keep it private: no token).")
@click.option("--port", type=click.IntRange(1, 65535), default=9108, show_default=True)
@_clear_errors
def serve_metrics(host, port):
    """Serve /metrics for this host's processes without a token, on an address of its own (for
    a host that runs workers but no `wapulse web`)."""
    from prometheus_client import start_http_server

    settings = _settings()
    _, serving = start_http_server(port, host, metrics.registry(Redis.from_url(settings.redis_url)))
    click.echo(f"metrics of this host's wapulse processes: http://{host}:{port}/metrics")
    serving.join()


@main.command()
@click.option("--customers", type=click.IntRange(50, 20_000), default=2000, show_default=True)
@click.option("--seed", type=int, default=2026, show_default=True, help="The same seed makes the same business.")
@click.option("--port", default="8001", show_default=True, help="Where the demo desk is served (beside `make run`'s 8000).")
@click.option("--no-serve", is_flag=True, help="Build the demo database and print the sign-in links, then stop.")
@_clear_errors
def demo(customers, seed, port, no_serve):
    """Build a demo business in var/demo.db (never the live database) and serve the desk on it.

    Three reps and a manager, two business numbers, customers in ten countries over six months,
    written as webhook bodies and committed through the worker's own code, then one sign-in link
    per person."""
    from wapulse.demo import CONFIG, PEOPLE, business

    held = None  # claimed before anything is built: a demo already serving keeps its database
    if not no_serve:
        try:
            held = hold_the_port(os.environ.get("HOST", "127.0.0.1"), port)
        except ConfigError:
            raise click.ClickException(f"port {port} is taken (a demo or wapulse web runs there): stop it, or choose "
                                       "another with --port") from None
    home = Path("var")
    database, config = home / "demo.db", home / "demo" / "wapulse.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(CONFIG)
    for stale in home.glob("demo.db*"):
        stale.unlink()
    click.echo(ensure_redis(_settings().redis_url))  # the desk limits sign-in attempts there
    os.environ.update(DATABASE_URL=f"sqlite:///{database.resolve()}", WAPULSE_CONFIG=str(config.resolve()),
                      PORT=port, WAPULSE_PUBLIC_URL="")
    os.environ.pop("WAPULSE_NOW", None)
    os.environ.setdefault("WAPULSE_SECRET_KEY", secrets.token_hex(32))  # make run writes one into .env
    context = _context()
    settings = context.settings
    db.upgrade(settings.database_url)
    made = business(customers, settings.now_ts(), seed)
    click.echo(f"replaying {len(made.bodies):,} webhook bodies about {customers:,} customers through the worker...")
    # the whole history in one batch: a customer whose history were split across batches would
    # look, for a moment, as silent as their first part left them, and owe reminders for it
    replaying.commit_all(context, _progress([replaying.Recording("demo", body) for body in made.bodies], "demo"), 10**6)
    sweep_tiers(context)
    refresh_figures(context)
    click.echo(f"demo database: {database} (tiers, follow-ups and figures as of now)")
    from webhook import create_app
    from webhook.desk.auth import link_for

    with db.write_transaction(db.engine_for(settings.database_url)) as connection:
        nonces = {person: create_link(connection, person, settings.now_ts()) for person in PEOPLE}
    with create_app(settings).test_request_context():
        for person, nonce in nonces.items():
            rep = settings.reps[person]
            click.echo(f"  {rep.name} ({rep.role}): {link_for(person, nonce)}")
    if not no_serve:
        click.echo(f"serving the demo desk on {settings.desk_url()} (Ctrl-C stops it)")
        _serve(settings, held)


# ---- replay -----------------------------------------------------------------------------------


@main.command()
@click.option("--since", required=True, help="Bodies received from this ISO-8601 instant (or UTC date) on.")
@click.option("--until", help="...and before this one (default: no end).")
@click.option("--number", help="Only bodies that went through this business phone number id.")
@click.option("--customer", help="Only bodies that hold this customer's events (key, number, BSUID or username).")
@click.option("-o", "--output", "folder", required=True, type=click.Path(file_okay=False),
              help="The folder to write the fixtures into (new, or without .json files).")
@click.option("--scrub/--no-scrub", default=True, show_default=True,
              help="Replace personal data by consistent fakes (--no-scrub: the exact bytes received).")
@click.option("--shift", help="Move every timestamp by this much: 90d, -2h, 3600 (seconds); with --scrub only.")
@click.option("--seed", default="wapulse", show_default=True, help="Another seed gives other fakes.")
@_clear_errors
def record(since, until, number, customer, folder, scrub, shift, seed):
    """Write received webhook bodies as replayable fixtures, scrubbed of personal data by default."""
    from workers.record import record as write_recording

    if shift and not scrub:
        raise ConfigError("--shift needs --scrub: the exact bytes received cannot be shifted")
    written = write_recording(_context(None), Path(folder), int(parse_instant(since, "--since").timestamp()),
                              int(parse_instant(until, "--until").timestamp()) if until else None, number, customer,
                              scrub, _seconds(shift) if shift else 0, seed)
    click.echo(f"{written} bodies written to {folder}" + (" (scrubbed)" if scrub and written else ""))


def _seconds(duration: str) -> int:
    """"90d", "-2h", "15m", "3600" as seconds."""
    units = {"d": 86_400, "h": 3600, "m": 60, "s": 1}
    text = duration.strip()
    scale = units.get(text[-1:], 1)
    try:
        return int(text[:-1] if text[-1:] in units else text) * scale
    except ValueError:
        raise ConfigError(f"--shift {duration!r} is not a duration such as 90d, -2h, 15m or 3600") from None


@main.command("import-chat")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--number", required=True, help="The business phone number id the chat went through.")
@click.option("--customer", help="The customer's WhatsApp number (default: the number the export names them by).")
@click.option("--me", help="The business's name as the export writes it (default: the author who is not the customer).")
@click.option("--tz", "timezone", help="The time zone the export's times are in (default: the customer's, from their number).")
@click.option("--now", "now", help="ISO-8601 instant taken as now (tiers and reminders as of it).")
@_clear_errors
def import_chat(path, number, customer, me, timezone, now):
    """Import a chat exported from the WhatsApp or WhatsApp Business app (.txt, or .zip with media)."""
    from workers.import_chat import import_chat as take_in

    context = _context(now)
    db.upgrade(context.settings.database_url)
    done = take_in(context, Path(path), number, customer, me, timezone)
    span = f", {iso(done.first_at)} to {iso(done.last_at)}" if done.first_at is not None else ""
    click.echo(f"customer +{done.customer}: {done.theirs} messages of theirs, {done.ours} of ours{span}; "
               + (f"{done.new_events} new events" if done.new_events else "nothing new (imported before)")
               + (f"; {done.live} left out, from when their messages came live" if done.live else ""))


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--url", help="POST each body, signed, to this webhook URL instead of processing in-process.")
@click.option("--secret", help="App secret to sign with (default: WHATSAPP_APP_SECRET).")
@click.option("--now", "now", help="ISO-8601 instant the in-process run takes as now.")
@_clear_errors
def replay(paths, url, secret, now):
    """Replay recorded bodies (.json, .jsonl, or folders of them in name order): in this process
    through the worker's code into DATABASE_URL, or signed to a running server with --url."""
    recordings = list(replaying.read_recordings(paths))
    if url:
        if now:
            raise ConfigError("--now applies to in-process replay; set WAPULSE_NOW on the server instead")
        secret = secret or _settings().app_secret
        if not secret:
            raise ConfigError("--url needs --secret or WHATSAPP_APP_SECRET to sign the bodies")
        posted = replaying.post_all(url, secret, _progress(recordings, "posting"))
        click.echo(f"bodies: {posted} posted to {url}, all acknowledged")
        return
    context = _context(now)
    db.upgrade(context.settings.database_url)
    totals, not_json = replaying.commit_all(context, _progress(recordings, "replaying"), context.settings.batch_size)
    counts = vars(totals)
    click.echo("  ".join(f"{name.replace('_', ' ')}: {value}" for name, value in counts.items()))
    if not_json:
        raise click.ClickException(f"{len(not_json)} of {len(recordings)} bodies are not JSON and were kept as dead "
                                   f"letters (wapulse dead-letters): {', '.join(not_json[:10])}"
                                   + (f" and {len(not_json) - 10} more" if len(not_json) > 10 else ""))
    if counts["dead_letters"]:
        raise click.ClickException(f"{counts['dead_letters']} bodies failed in the worker and were kept as dead "
                                   "letters (wapulse dead-letters)")


def _progress(items: list, label: str):
    if len(items) < 200:
        return items
    return tqdm(items, desc=label, unit="body", file=sys.stderr, disable=not sys.stderr.isatty())


# ---- customers --------------------------------------------------------------------------------


@main.command()
@click.option("--tier", type=click.Choice([tier.value for tier in Tier]), help="Only customers of this tier.")
@click.option("--format", "output", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.option("--now", "now", help="ISO-8601 instant the figures are computed as of.")
@_clear_errors
def customers(tier, output, now):
    """List customers, most recently active first, with tiers and figures as of now."""
    settings = _context(now).settings
    views = queries.list_customers(db.engine_for(settings.database_url), settings.now_ts(), settings.figure_rules, tier)
    if output == "json":
        click.echo(_json.encode(views).decode())
    elif output == "csv":
        from report.spreadsheet import csv_text

        click.echo(csv_text(_FLAT_COLUMNS, (_pick(view, _FLAT_COLUMNS) for view in views)), nl=False)
    else:
        _table(_TABLE_COLUMNS, [_pick(view, _TABLE_COLUMNS) for view in views], "customers")
        with db.engine_for(settings.database_url).connect() as connection:
            for backfill in queries.backfills(connection):
                click.echo(f"history back-fill of {backfill['number']}: {'done' if backfill['done'] else 'under way'}, "
                           f"{backfill['progress']}% (phase {backfill['phase']} of 0 to 2, {backfill['chunks']} chunks, "
                           f"the last at {backfill['last_at']})")


_FLAT_COLUMNS = ["key", "wa_id", "user_id", "name", "country", "timezone", "tier", "tier_since", "last_inbound_at",
                 "inbound", "outbound", "delivered", "read", "failed", "replies", "orders", "opted_out", "unreachable",
                 "rfm", "lifecycle", "churn_risk", "intent", "frequency_band", "p_alive"]


_TABLE_COLUMNS = ["key", "name", "country", "tier", "last_inbound_at", "inbound", "outbound", "replies", "orders",
                  "rfm", "churn_risk", "intent"]


def _table(columns: list[str], values: list[list], noun: str) -> None:
    rows = [[visible(value) for value in row] for row in values]
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for row in rows:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)))
    click.echo(f"{len(rows)} {noun}")


def _pick(view: dict, columns: list[str]) -> list:
    values = {**view, **view["counters"], "orders": view["orders"]["count"],
              "rfm": (view["rfm"] or {}).get("score"), "p_alive": view["value"]["p_alive"]}
    return [values.get(column) for column in columns]


@main.command()
@click.argument("key")
@click.option("--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--now", "now", help="ISO-8601 instant the figures are computed as of.")
@_clear_errors
def customer(key, output, now):
    """One customer's card, by key, wa_id, BSUID or username, with the tier history."""
    settings = _context(now).settings
    view = queries.find_customer(db.engine_for(settings.database_url), key, settings.now_ts(), settings.figure_rules)
    if view is None:
        raise click.ClickException(f"no customer is known as {key!r}")
    if output == "json":
        click.echo(_json.encode(view).decode())
        return
    for name, value in view.items():
        if isinstance(value, dict):
            click.echo(f"{name}:")
            for inner, inner_value in value.items():
                click.echo(f"  {visible(inner)}: {visible(inner_value)}")
        elif name == "tier_history":
            click.echo(f"{name}:")
            for change in value:
                click.echo(f"  {change['at']}  {change['from'] or '-'} -> {change['to']}  ({change['cause']})")
        elif name == "reminders":
            click.echo(f"{name}:")
            for reminder in value:
                click.echo(f"  {reminder['at']}  {reminder['rule']} -> {reminder['rep']} on {reminder['channel']}: "
                           f"{reminder['status']}")
        else:
            click.echo(f"{name}: {visible(value)}")


@main.group(invoke_without_command=True)
@click.option("--status", type=click.Choice([PENDING, SENDING, SENT, FAILED, CANCELLED]), help="Only deliveries in this state.")
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
@_clear_errors
def reminders(context, status, output):
    """Reminder deliveries, newest first (one row per reminder and channel)."""
    if context.invoked_subcommand is not None:
        return
    settings = _settings().check()
    with db.engine_for(settings.database_url).connect() as connection:
        views = [queries.reminder_view(row) for row in delivery_rows(connection, status=status)]
    if output == "json":
        click.echo(_json.encode(views).decode())
        return
    columns = ["delivery", "at", "rule", "customer", "rep", "channel", "status", "due_at", "held", "attempts", "last_error"]
    _table(columns, [[view[column] for column in columns] for view in views], "reminder deliveries")


@main.group(invoke_without_command=True)
@click.pass_context
@_clear_errors
def reps(context):
    """Reps and managers (wapulse.toml's [[reps]]): who they are, and signing them in to the desk."""
    if context.invoked_subcommand is not None:
        return
    settings = _settings().check()
    with db.engine_for(settings.database_url).connect() as connection:
        rows = [[rep.id, rep.name, rep.role, ", ".join(rep.channel_labels()) or "-",
                 "yes" if password_set_at(connection, rep.id) else "no"] for rep in settings.reps.values()]
    managers = sum(rep.is_manager for rep in settings.reps.values())
    _table(["rep", "name", "role", "channels", "password"], rows,
           f"people ({len(rows) - managers} {'rep' if len(rows) - managers == 1 else 'reps'}, {managers} "
           f"{'manager' if managers == 1 else 'managers'})")


@reps.command("link")
@click.argument("rep")
@_clear_errors
def reps_link(rep):
    """Print a one-time sign-in link for REP (good once, for a day)."""
    settings = _desk_settings(rep)
    db.upgrade(settings.database_url)
    with db.write_transaction(db.engine_for(settings.database_url)) as connection:
        nonce = create_link(connection, rep, settings.now_ts())
    from webhook import create_app
    from webhook.desk.auth import link_for

    app = create_app(settings, Redis.from_url(settings.redis_url))
    with app.test_request_context():
        click.echo(link_for(rep, nonce))


@reps.command("password")
@click.argument("rep")
@click.password_option(prompt="New password", confirmation_prompt="Again")
@_clear_errors
def reps_password(rep, password):
    """Set REP's desk password (10 characters or more); sessions signed in before end."""
    settings = _desk_settings(rep)
    db.upgrade(settings.database_url)
    with db.write_transaction(db.engine_for(settings.database_url)) as connection:
        try:
            set_password(connection, rep, password, settings.now_ts())
        except ValueError as error:
            raise click.ClickException(str(error)) from None
    click.echo(f"password set for {rep}")


def _desk_settings(rep: str) -> Settings:
    settings = _settings().check()
    if not settings.secret_key:
        raise ConfigError("WAPULSE_SECRET_KEY is not set: the desk signs its sessions and links with it "
                          "(make run writes one into .env)")
    if rep not in settings.reps:
        known = ", ".join(settings.reps) or "none: add [[reps]] to wapulse.toml"
        raise ConfigError(f"{rep!r} is not a rep ([[reps]] ids in wapulse.toml: {known})")
    return settings


@main.group()
def owners():
    """Which rep follows up which customer."""


@owners.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@_clear_errors
def owners_import(path):
    """Set owners from a CSV of `customer,rep` (customer: key, wa_id or BSUID; rep: a [[reps]] id).

    All or nothing: an unknown rep or customer changes no owner."""
    settings = _settings().check()
    pairs = _owner_rows(path, settings.owner_ids)
    with db.write_transaction(db.engine_for(settings.database_url)) as connection:
        if unknown := assign_owners(connection, pairs):
            raise click.ClickException(f"{len(unknown)} customers in {path} are unknown (the first: {unknown[0]}); "
                                       "no owner was changed")
    click.echo(f"{len(pairs)} owners set")


def _owner_rows(path: str, rep_ids: frozenset[str]) -> list[tuple[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    if rows and rows[0][:2] and rows[0][1].strip().lower() in ("rep", "owner"):
        rows = rows[1:]
    pairs = []
    for line, row in enumerate(rows, 1):
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise click.ClickException(f"{path}: row {line} must be customer,rep")
        if row[1].strip() not in rep_ids:
            raise click.ClickException(f"{path}: row {line}: {row[1].strip()!r} is not a rep who owns customers "
                                       "([[reps]] ids of wapulse.toml, managers excepted)")
        pairs.append((row[0].strip(), row[1].strip()))
    if not pairs:
        raise click.ClickException(f"{path} holds no customer,rep rows")
    return pairs


@reminders.command("retry")
@click.argument("delivery_id", type=int)
@_clear_errors
def reminders_retry(delivery_id):
    """Send a failed delivery again, now."""
    settings = _settings().check()
    with db.write_transaction(db.engine_for(settings.database_url)) as connection:
        if not retry_delivery(connection, delivery_id, settings.now_ts()):
            raise click.ClickException(f"no failed reminder delivery has id {delivery_id} (see wapulse reminders --status failed)")
    request_delivery(Redis.from_url(settings.redis_url))
    click.echo(f"delivery {delivery_id} is due again")


@main.command()
@click.option("--now", "now", help="ISO-8601 instant to sweep as of (default: WAPULSE_NOW or the clock).")
@_clear_errors
def sweep(now):
    """Move every customer whose next tier threshold has passed (rq cron runs this every minute)."""
    result = sweep_tiers(_context(now))
    click.echo(f"customers due: {result['customers']}  tier changes: {result['changes']}")


@main.command()
@click.option("--now", "now", help="ISO-8601 instant to rebuild as of (default: WAPULSE_NOW or the clock).")
@_clear_errors
def rebuild(now):
    """Re-derive every event, counter, signal, tier and tier change from the raw archive."""
    context = _context(now)
    db.upgrade(context.settings.database_url)
    with tqdm(desc="rebuilding", unit="body", file=sys.stderr, disable=not sys.stderr.isatty()) as bar:
        result = rebuild_all(context, progress=bar.update)
    click.echo("  ".join(f"{name}: {value}" for name, value in vars(result).items()))


def _in_a_folder_that_exists(context, parameter, path: str | None) -> str | None:
    """Refused while the options are read, before any work that writing the file would then waste."""
    if path is not None and not Path(path).parent.is_dir():
        raise click.BadParameter(f"{str(Path(path).parent)!r} is not a folder that exists")
    return path


@main.command()
@click.option("--from", "first_day", help="First day (UTC date, e.g. 2026-07-01); default: 90 days before --to.")
@click.option("--to", "last_day", help="Last day, included (UTC date); default: today.")
@click.option("--compare", type=click.Choice(["previous", "none"]), default="previous", show_default=True,
              help="Compare with the previous period of equal length.")
@click.option("--number", help="Only the customers of this business phone number id.")
@click.option("--owner", help="Only the customers of this rep.")
@click.option("--format", "form", type=click.Choice(["md", "html", "json", "csv", "xlsx"]), default="md",
              show_default=True, help="csv: one row per customer; html and xlsx carry charts.")
@click.option("-o", "--output-file", type=click.Path(dir_okay=False, writable=True), callback=_in_a_folder_that_exists,
              help="Write here instead of stdout.")
@click.option("--now", "now", help="ISO-8601 instant taken as now (for the default period).")
@_clear_errors
def report(first_day, last_day, compare, number, owner, form, output_file, now):
    """The activity report: tiers, reply rates, content, funnel, local time, reply speed, action plan."""
    from report.build import produce, request_of
    from report.load import StoredNumbers

    settings = _context(now).settings
    engine = db.engine_for(settings.database_url)
    options = {"from": first_day, "to": last_day, "compare": compare, "number": number, "owner": owner, "format": form}
    try:
        request = request_of(options, settings.now_ts(), settings.reps, StoredNumbers(engine),
                             settings.reminder_setup.rep_numbers, prefix="--")
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    body = produce(engine, request, settings.tier_rules)
    if output_file:
        with open(output_file, "wb") as handle:
            handle.write(body)
        click.echo(f"report written to {output_file}")
    else:
        click.echo(body, nl=False)  # bytes go to the binary stream as they are


@main.command()
@click.argument("key")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_clear_errors
def erase(key, yes):
    """Erase a customer (by key, wa_id, BSUID or username) and every trace of them: events,
    follow-ups, tier history, and their part of the archived bodies. Cannot be undone."""
    from workers.erasure import erase_customer, erasure_key

    context = _context()
    erasure_key(context.settings)  # refused before asking, not after
    db.upgrade(context.settings.database_url)
    if not yes:
        click.confirm(f"erase the customer known as {visible(key)} and everything about them, for good?", abort=True)
    erased = erase_customer(context, key)
    if erased is None:
        raise click.ClickException(f"no customer is known as {key!r}")
    click.echo("erased: " + "  ".join(f"{name.replace('_', ' ')}: {value}" for name, value in vars(erased).items()))


@main.command("dead-letters")
@_clear_errors
def dead_letters():
    """Bodies kept but not processed: signed but not JSON, or failing in the worker."""
    rows = queries.dead_letters(db.engine_for(_settings().database_url))
    for row in rows:
        click.echo(f"{row['id']}  {row['received_at']}  {row['sha256'][:16]}  {row['reason']}")
    click.echo(f"{len(rows)} dead letters")


@main.command()
@click.option("--older-than", "days", type=click.IntRange(min=0), required=True, help="Age in days.")
@_clear_errors
def purge(days):
    """Delete archived raw bodies older than DAYS (counters and events are kept)."""
    from workers.retention import purge_bodies

    context = _context()
    cutoff = context.settings.clock() - timedelta(days=days)
    deleted = purge_bodies(context, int(cutoff.timestamp() * 1000))
    click.echo(f"deleted {deleted} archived bodies received before {cutoff.isoformat()}")


@main.command()
@click.option("--now", "now", help="ISO-8601 instant taken as now.")
@_clear_errors
def retention(now):
    """Delete what [retention] in wapulse.toml no longer keeps (cron does it every day)."""
    from workers.retention import apply_retention

    deleted = apply_retention(_context(now))
    click.echo("deleted: " + "  ".join(f"{name.replace('_', ' ')}: {count}" for name, count in deleted.items()))


def _safe_url(url: str) -> str:
    """A database URL without its password, for the console."""
    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    main()
