"""Desk accounts: reps' passwords and one-time sign-in links. Who the reps are, and their roles,
is wapulse.toml's; the store keeps only what lets them prove it.

Passwords are kept as scrypt hashes (werkzeug); a link's nonce as its SHA-256, so that a copy of
the database signs nobody in.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import Connection, select, update
from werkzeug.security import check_password_hash, generate_password_hash

from store.models import RepAccount, SignInLink

accounts, links = RepAccount.__table__, SignInLink.__table__
LINK_LIFETIME_S = 24 * 3600
MIN_PASSWORD_LENGTH = 10


def set_password(connection: Connection, rep: str, password: str, now: int) -> None:
    """Raises ValueError for a password too short to keep anyone out."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    row = {"password_hash": generate_password_hash(password), "password_set_at": now}
    if connection.execute(update(accounts).where(accounts.c.rep == rep).values(row)).rowcount == 0:
        connection.execute(accounts.insert().values(rep=rep, **row))


def check_password(connection: Connection, rep: str, password: str) -> bool:
    """Whether `password` is the rep's; the same work is done for a rep without one, so the answer
    takes as long whether the rep has a password or not."""
    stored = connection.execute(select(accounts.c.password_hash).where(accounts.c.rep == rep)).scalar()
    return check_password_hash(stored or _NOBODY, password) and stored is not None


_NOBODY = generate_password_hash(secrets.token_urlsafe(16))


def password_set_at(connection: Connection, rep: str) -> int | None:
    """When the rep's password was last set: a session signed in before it is over."""
    return connection.execute(select(accounts.c.password_set_at).where(accounts.c.rep == rep)).scalar()


def create_link(connection: Connection, rep: str, now: int) -> str:
    """A new one-time nonce for `rep`, good for LINK_LIFETIME_S."""
    nonce = secrets.token_urlsafe(32)
    connection.execute(links.insert().values(nonce=_digest(nonce), rep=rep, created_at=now,
                                             expires_at=now + LINK_LIFETIME_S))
    return nonce


def redeem_link(connection: Connection, nonce: str, rep: str, now: int) -> bool:
    """Use the link once: True if it was `rep`'s, unused and unexpired (and is used from now on)."""
    return connection.execute(
        update(links).where(links.c.nonce == _digest(nonce), links.c.rep == rep, links.c.used_at.is_(None),
                            links.c.expires_at > now).values(used_at=now)
    ).rowcount == 1


def _digest(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()
