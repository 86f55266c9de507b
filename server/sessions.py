"""Sign-in sessions, pending logins and device codes, kept in the catalog's database.

Every server process behind one load balancer reads the same rows, so a login started on one
process finishes on another, and a logout or revocation is seen by all at once. Only hashes of
the secrets are stored (browser cookies, refresh tokens, device codes, login states): a copy
of the database does not sign anyone in. The tables belong to the server and are made on
first use, as the API keys' are.

A session is one sign-in: a browser's (its cookie) or a Python client's (its refresh token,
from the device-code flow). Refresh tokens rotate; presenting one that was already rotated
away means it was copied, and revokes the whole session (RFC 9700's reuse detection).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass

import sqlalchemy as sa

from .session_tables import (
    USER_CODE_LETTERS,
    device_codes,
    digest,
    logins,
    meta,
    normal_user_code,
    secrets_table,
    sessions,
)

LOGIN_LIFETIME = 600.0  # seconds a person has at the provider's sign-in page


@dataclass(frozen=True)
class Session:
    id: str
    principal: str
    name: str
    groups: tuple[str, ...]
    claims: dict
    kind: str
    expires: float


@dataclass(frozen=True)
class Login:
    nonce: str
    verifier: str
    next: str
    user_code: str | None


def _session(row: sa.Row) -> Session:
    return Session(
        row.id,
        row.principal,
        row.name,
        tuple(json.loads(row.groups)),
        json.loads(row.claims),
        row.kind,
        row.expires,
    )


class SessionStore:
    """The rows behind sign-in, in ``engine``'s database."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._made = False

    def _tables(self) -> None:
        if not self._made:
            meta.create_all(self.engine, checkfirst=True)
            self._made = True

    def shared_secret(self, name: str) -> str:
        """A random secret made once and shared by every process on this database (what
        signs access tokens when the operator gave none)."""
        self._tables()
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(secrets_table.c.value).where(secrets_table.c.name == name))
            found = row.scalar()
        if found:
            return found
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    sa.insert(secrets_table).values(name=name, value=secrets.token_hex(32))
                )
        except sa.exc.IntegrityError:
            pass  # another process made it first: use theirs
        with self.engine.begin() as conn:
            query = sa.select(secrets_table.c.value).where(secrets_table.c.name == name)
            return conn.execute(query).scalar_one()

    # -- logins in progress --------------------------------------------------------------

    def start_login(self, next_path: str, user_code: str | None = None) -> tuple[str, str, Login]:
        """A login about to go to the provider: returns its state, the browser's binding
        secret (a cookie) and what the callback needs (nonce, PKCE verifier, where to go)."""
        self._tables()
        state, binding = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        login = Login(secrets.token_urlsafe(32), secrets.token_urlsafe(64), next_path, user_code)
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(sa.delete(logins).where(logins.c.created < now - LOGIN_LIFETIME))
            conn.execute(
                sa.insert(logins).values(
                    state_hash=digest(state),
                    binding_hash=digest(binding),
                    nonce=login.nonce,
                    verifier=login.verifier,
                    next=next_path,
                    user_code=user_code,
                    created=now,
                )
            )
        return state, binding, login

    def finish_login(self, state: str, binding: str) -> Login | str:
        """The login ``state`` names, used up now; or why not (a one-line reason)."""
        self._tables()
        now = time.time()
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(logins).where(logins.c.state_hash == digest(state))
            ).first()
            if row is None or row.created < now - LOGIN_LIFETIME:
                return "this sign-in is unknown or took too long; start again"
            if row.used is not None:
                return "this sign-in was already completed; start again"
            if not secrets.compare_digest(row.binding_hash, digest(binding)):
                return "this sign-in was started in another browser; start again from this one"
            used = conn.execute(
                sa.update(logins)
                .where(logins.c.state_hash == row.state_hash, logins.c.used.is_(None))
                .values(used=now)
            ).rowcount
            if not used:
                return "this sign-in was already completed; start again"
        return Login(row.nonce, row.verifier, row.next, row.user_code)

    # -- sessions ------------------------------------------------------------------------

    def create(
        self,
        principal: str,
        name: str,
        groups: tuple[str, ...],
        claims: dict,
        kind: str,
        lifetime: float,
    ) -> tuple[Session, str]:
        """A new session; returns it and its secret: the browser's cookie, or for a device
        session the first refresh token."""
        self._tables()
        secret = (
            secrets.token_urlsafe(32) if kind == "browser" else "bbr_" + secrets.token_urlsafe(32)
        )
        now = time.time()
        values = {
            "id": secrets.token_urlsafe(24),
            "principal": principal,
            "name": name[:400],
            "groups": json.dumps(sorted(groups)),
            "claims": json.dumps(claims),
            "kind": kind,
            "created": now,
            "expires": now + lifetime,
            "cookie_hash": digest(secret) if kind == "browser" else None,
            "refresh_hash": digest(secret) if kind != "browser" else None,
        }
        with self.engine.begin() as conn:
            conn.execute(sa.insert(sessions).values(**values))
            row = conn.execute(sa.select(sessions).where(sessions.c.id == values["id"])).one()
        return _session(row), secret

    def _live(self, where) -> Session | None:
        self._tables()
        now = time.time()
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(sessions).where(where)).first()
        if row is None or row.revoked is not None or row.expires <= now:
            return None
        return _session(row)

    def by_id(self, session_id: str) -> Session | None:
        return self._live(sessions.c.id == session_id)

    def by_cookie(self, cookie: str) -> Session | None:
        return self._live(sessions.c.cookie_hash == digest(cookie))

    def rotate(self, refresh_token: str) -> tuple[Session, str] | None:
        """A new refresh token for the session holding ``refresh_token``; None when it holds
        none. A token already rotated away revokes its session: someone kept a copy."""
        self._tables()
        old = digest(refresh_token)
        new = "bbr_" + secrets.token_urlsafe(32)
        now = time.time()
        with self.engine.begin() as conn:
            reused = conn.execute(
                sa.update(sessions)
                .where(sessions.c.old_refresh_hash == old, sessions.c.revoked.is_(None))
                .values(revoked=now)
            ).rowcount
            if reused:
                return None
            changed = conn.execute(
                sa.update(sessions)
                .where(
                    sessions.c.refresh_hash == old,
                    sessions.c.revoked.is_(None),
                    sessions.c.expires > now,
                )
                .values(refresh_hash=digest(new), old_refresh_hash=old)
            ).rowcount
            if not changed:
                return None
            row = conn.execute(sa.select(sessions).where(sessions.c.refresh_hash == digest(new)))
            return _session(row.one()), new

    def revoke(self, session_id: str, principal: str | None = None) -> int:
        """Revoke a session (only ``principal``'s unless None); how many were revoked."""
        self._tables()
        query = (
            sa.update(sessions)
            .where(sessions.c.id == session_id, sessions.c.revoked.is_(None))
            .values(revoked=time.time())
        )
        if principal is not None:
            query = query.where(sessions.c.principal == principal)
        with self.engine.begin() as conn:
            return conn.execute(query).rowcount

    def revoke_refresh(self, refresh_token: str) -> str | None:
        """Revoke the session holding ``refresh_token``; its id, or None."""
        self._tables()
        with self.engine.connect() as conn:
            query = sa.select(sessions.c.id).where(sessions.c.refresh_hash == digest(refresh_token))
            found = conn.execute(query).scalar()
        if found is not None:
            self.revoke(found)
        return found

    def list(self, principal: str | None = None) -> list[dict]:
        """Live sessions (of ``principal``), newest first, for people to see and revoke."""
        self._tables()
        query = sa.select(sessions).where(
            sessions.c.revoked.is_(None), sessions.c.expires > time.time()
        )
        if principal is not None:
            query = query.where(sessions.c.principal == principal)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(sessions.c.created.desc())).all()
        return [
            {
                "id": r.id,
                "principal": r.principal,
                "kind": r.kind,
                "created": r.created,
                "expires": r.expires,
            }
            for r in rows
        ]

    # -- device codes --------------------------------------------------------------------

    def start_device(self, lifetime: float) -> tuple[str, str]:
        """A device code (the client's secret) and its user code (what the person types)."""
        self._tables()
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(sa.delete(device_codes).where(device_codes.c.expires < now - 3600))
        for _ in range(5):  # a clash of user codes is rare; try a few
            code = secrets.token_urlsafe(32)
            user = normal_user_code("".join(secrets.choice(USER_CODE_LETTERS) for _ in range(8)))
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        sa.insert(device_codes).values(
                            code_hash=digest(code),
                            user_code=user,
                            created=now,
                            expires=now + lifetime,
                        )
                    )
                return code, user
            except sa.exc.IntegrityError:
                continue
        raise RuntimeError("could not make a unique user code")

    def device_waiting(self, user_code: str) -> bool:
        """Whether ``user_code`` names a device code still waiting for its person."""
        self._tables()
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(device_codes).where(device_codes.c.user_code == user_code)
            ).first()
        return row is not None and row.session_id is None and row.expires > time.time()

    def approve_device(self, user_code: str, session_id: str) -> bool:
        self._tables()
        with self.engine.begin() as conn:
            return bool(
                conn.execute(
                    sa.update(device_codes)
                    .where(
                        device_codes.c.user_code == user_code,
                        device_codes.c.session_id.is_(None),
                        device_codes.c.expires > time.time(),
                    )
                    .values(session_id=session_id)
                ).rowcount
            )

    def poll_device(self, device_code: str, interval: float) -> str | Session:
        """The session a person approved for ``device_code`` (once), or RFC 8628's error:
        ``authorization_pending``, ``slow_down``, ``expired_token`` or ``invalid_grant``."""
        self._tables()
        now = time.time()
        key = digest(device_code)
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(device_codes).where(device_codes.c.code_hash == key))
            row = row.first()
            if row is None or row.collected is not None:
                return "invalid_grant"
            if row.expires <= now:
                return "expired_token"
            too_soon = row.last_poll is not None and now - row.last_poll < interval * 0.8
            conn.execute(
                sa.update(device_codes).where(device_codes.c.code_hash == key).values(last_poll=now)
            )
            if row.session_id is None:
                return "slow_down" if too_soon else "authorization_pending"
            taken = conn.execute(
                sa.update(device_codes)
                .where(device_codes.c.code_hash == key, device_codes.c.collected.is_(None))
                .values(collected=now)
            ).rowcount
            if not taken:
                return "invalid_grant"
        found = self.by_id(row.session_id)
        return found if found is not None else "invalid_grant"

    def issue_refresh(self, session_id: str) -> str:
        """A first refresh token for a device session (replacing any)."""
        token = "bbr_" + secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(sessions)
                .where(sessions.c.id == session_id)
                .values(refresh_hash=digest(token))
            )
        return token
