"""API keys for people and services, kept hashed in the catalog's database.

A key is shown once, when it is made; the database holds only its SHA-256 (keys are 256 random
bits, so a fast hash is as strong as a slow one here, and lookups stay one indexed query) and
its first eight characters, which is how people tell their keys apart when listing and
revoking. A key carries scopes no wider than its owner's and may expire.

The tables belong to the server, not to the catalog's schema: they are made on first use in
the same database, so a catalog made before keys existed needs no upgrade.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

import sqlalchemy as sa

from .principals import SCOPES

PREFIX = "bb_"
auth_metadata = sa.MetaData()
api_keys = sa.Table(
    "bluebroker_api_keys",
    auth_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("hash", sa.String(64), nullable=False, unique=True),
    sa.Column("first_eight", sa.String(8), nullable=False, index=True),
    sa.Column("principal", sa.String(400), nullable=False, index=True),
    sa.Column("scopes", sa.String(200), nullable=False),
    # the owner's groups when the key was made (for the access policy; keys of a person who
    # signed in with OpenID Connect read what that person reads)
    sa.Column("groups", sa.Text, nullable=False, default=""),
    sa.Column("note", sa.String(400), nullable=False, default=""),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("expires", sa.Float, nullable=True),
    sa.Column("last_used", sa.Float, nullable=True),
    sa.Column("revoked", sa.Float, nullable=True),
)


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown about a key (never the key itself)."""

    first_eight: str
    principal: str
    scopes: tuple[str, ...]
    groups: tuple[str, ...]
    note: str
    created: float
    expires: float | None
    last_used: float | None
    revoked: float | None

    def as_dict(self) -> dict:
        return {
            "first_eight": self.first_eight,
            "principal": self.principal,
            "scopes": list(self.scopes),
            "groups": list(self.groups),
            "note": self.note,
            "created": self.created,
            "expires": self.expires,
            "last_used": self.last_used,
            "revoked": self.revoked,
        }


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def _info(row: sa.Row) -> KeyInfo:
    scopes = tuple(s for s in row.scopes.split(",") if s)
    return KeyInfo(
        row.first_eight,
        row.principal,
        scopes,
        tuple(g for g in (row.groups or "").split("\n") if g),
        row.note,
        row.created,
        row.expires,
        row.last_used,
        row.revoked,
    )


class ApiKeyStore:
    """Create, look up, list and revoke keys in ``engine``'s database."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._made = False

    def _tables(self) -> None:
        if not self._made:
            auth_metadata.create_all(self.engine, checkfirst=True)
            self._made = True

    def create(
        self,
        principal: str,
        scopes: frozenset[str] | set[str],
        *,
        expires_in: float | None = None,
        note: str = "",
        groups: frozenset[str] | set[str] = frozenset(),
    ) -> tuple[str, KeyInfo]:
        """A new key for ``principal``: returns the secret (shown once) and its info."""
        if not scopes or set(scopes) - set(SCOPES):
            raise ValueError(f"scopes must be some of {', '.join(SCOPES)}")
        if expires_in is not None and expires_in <= 0:
            raise ValueError("expires_in must be a positive number of seconds")
        self._tables()
        # hex: Tiled's client sends only keys made of word characters (Apikey (\w+))
        secret = PREFIX + secrets.token_hex(32)
        now = time.time()
        values = {
            "hash": _hash(secret),
            "first_eight": secret[len(PREFIX) : len(PREFIX) + 8],
            "principal": principal,
            "scopes": ",".join(s for s in SCOPES if s in scopes),
            "note": note[:400],
            "groups": "\n".join(sorted(g for g in groups if "\n" not in g)),
            "created": now,
            "expires": None if expires_in is None else now + expires_in,
        }
        with self.engine.begin() as conn:
            conn.execute(sa.insert(api_keys).values(**values))
            row = conn.execute(sa.select(api_keys).where(api_keys.c.hash == values["hash"])).one()
        return secret, _info(row)

    def lookup(self, secret: str) -> KeyInfo | None:
        """The live key with this secret (not revoked, not expired), or None."""
        if not secret.startswith(PREFIX) or len(secret) > 200:
            return None
        self._tables()
        now = time.time()
        digest = _hash(secret)
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.hash == digest)).first()
            if row is None or row.revoked is not None:
                return None
            if row.expires is not None and row.expires <= now:
                return None
            if row.last_used is None or now - row.last_used > 60:  # not a write per request
                conn.execute(
                    sa.update(api_keys).where(api_keys.c.id == row.id).values(last_used=now)
                )
        return _info(row)

    def list(self, principal: str | None = None) -> list[KeyInfo]:
        """Keys of ``principal`` (all keys when None), newest first, revoked ones included."""
        self._tables()
        query = sa.select(api_keys).order_by(api_keys.c.created.desc())
        if principal is not None:
            query = query.where(api_keys.c.principal == principal)
        with self.engine.connect() as conn:
            return [_info(r) for r in conn.execute(query)]

    def revoke(self, first_eight: str, principal: str | None = None) -> int:
        """Revoke the keys starting with ``first_eight`` (of ``principal`` unless None);
        returns how many were revoked."""
        self._tables()
        query = (
            sa.update(api_keys)
            .where(api_keys.c.first_eight == first_eight, api_keys.c.revoked.is_(None))
            .values(revoked=time.time())
        )
        if principal is not None:
            query = query.where(api_keys.c.principal == principal)
        with self.engine.begin() as conn:
            return conn.execute(query).rowcount


def parse_duration(text: str) -> float:
    """``"90d"``, ``"12h"``, ``"30m"``, ``"45s"`` or plain seconds, as seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
    text = text.strip().lower()
    try:
        value = float(text[:-1]) * units[text[-1]] if text and text[-1] in units else float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a duration; e.g. 90d, 12h, 30m or 3600") from None
    if not 0 < value < 100 * 365 * 86400:
        raise ValueError(f"{text!r} is not a duration between a second and a century")
    return value
