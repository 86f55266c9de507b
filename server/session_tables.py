"""The tables behind sign-in (sessions, pending logins, device codes, shared secrets) and
how secrets are hashed before they are stored. Apart from ``sessions.py``'s logic so that
what the database holds, and what a copy of it would reveal (hashes only), reads at a glance."""

from __future__ import annotations

import hashlib

import sqlalchemy as sa

meta = sa.MetaData()
sessions = sa.Table(
    "bluebroker_sessions",
    meta,
    sa.Column("id", sa.String(43), primary_key=True),
    sa.Column("principal", sa.String(400), nullable=False, index=True),
    sa.Column("name", sa.String(400), nullable=False),
    sa.Column("groups", sa.Text, nullable=False),  # JSON list
    sa.Column("claims", sa.Text, nullable=False),  # JSON object: the provider's, trimmed
    sa.Column("kind", sa.String(16), nullable=False),  # "browser" or "device"
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("expires", sa.Float, nullable=False),
    sa.Column("cookie_hash", sa.String(64), nullable=True, unique=True),
    sa.Column("refresh_hash", sa.String(64), nullable=True, unique=True),
    sa.Column("old_refresh_hash", sa.String(64), nullable=True, index=True),
    sa.Column("revoked", sa.Float, nullable=True),
)
logins = sa.Table(
    "bluebroker_logins",
    meta,
    sa.Column("state_hash", sa.String(64), primary_key=True),
    sa.Column("binding_hash", sa.String(64), nullable=False),  # the browser's login cookie
    sa.Column("nonce", sa.String(100), nullable=False),
    sa.Column("verifier", sa.String(128), nullable=False),
    sa.Column("next", sa.String(2000), nullable=False),
    sa.Column("user_code", sa.String(16), nullable=True),
    sa.Column("created", sa.Float, nullable=False, index=True),
    sa.Column("used", sa.Float, nullable=True),
)
device_codes = sa.Table(
    "bluebroker_device_codes",
    meta,
    sa.Column("code_hash", sa.String(64), primary_key=True),
    sa.Column("user_code", sa.String(16), nullable=False, unique=True),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("expires", sa.Float, nullable=False, index=True),
    sa.Column("last_poll", sa.Float, nullable=True),
    sa.Column("session_id", sa.String(43), nullable=True),
    sa.Column("collected", sa.Float, nullable=True),
)
secrets_table = sa.Table(
    "bluebroker_auth_secrets",
    meta,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(200), nullable=False),
)

USER_CODE_LETTERS = "BCDFGHJKLMNPQRSTVWXZ"  # RFC 8628 6.1: no vowels, no look-alikes


def digest(secret: str) -> str:
    """What is stored of a secret: its SHA-256 (the secrets are random, so no salt)."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def normal_user_code(text: str) -> str:
    """``abcd efgh``, ``ABCD-EFGH`` -> ``ABCD-EFGH`` (people retype codes loosely)."""
    letters = "".join(c for c in text.upper() if c.isalnum())[:8]
    return f"{letters[:4]}-{letters[4:]}"
