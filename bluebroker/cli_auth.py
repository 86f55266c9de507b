"""Who may use a server started from the command line, and ``bluebroker api-key``.

``serve`` and ``demo`` are single-user by default, as Jupyter is: bound to 127.0.0.1 and
closed by a random token printed as a ready-to-open URL. ``--api-key KEY`` fixes the token (a
service that restarts keeps its clients working), ``--public`` lets anyone read. A server
reachable from other machines must be given one of those on purpose: a random token that
lives in one terminal is not a way to run a facility's service.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
import sys
import time
from typing import TYPE_CHECKING

from .cli_errors import OperatorError

if TYPE_CHECKING:
    from bluebroker.catalog import Catalog
    from bluebroker.server.auth import AuthSettings


def add_server_auth_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--api-key",
        metavar="KEY",
        default=os.environ.get("BLUEBROKER_API_KEY"),
        help="the single-user token, fixed (or $BLUEBROKER_API_KEY); default: a random one, "
        "printed at start as a URL to open",
    )
    p.add_argument(
        "--public",
        action="store_true",
        help="let anyone read without a key, on purpose (writing still needs a key)",
    )
    p.add_argument(
        "--policy",
        metavar="FILE",
        help="who may read which runs (YAML; see docs/security.md); default: every signed-in "
        "caller reads everything",
    )
    p.add_argument(
        "--oidc-config",
        metavar="FILE",
        help="sign people in with the facility's OpenID Connect provider (YAML: issuer, "
        "client_id, client_secret, admins, groups_claim...; see docs/operator-guide.md)",
    )
    p.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="URL",
        help="let web pages from this origin call the API (repeatable; default: none)",
    )


def is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, api_key: str | None, public: bool, oidc: str | None = None) -> None:
    """An empty key would silently serve without one; a server reachable from other machines
    needs authentication chosen on purpose (a key, sign-in with OpenID Connect, or
    ``--public``), and ``--public`` there is said out loud. ``oidc``, the --oidc-config file,
    is read here so that its mistakes are said before anything opens."""
    if oidc is not None:
        oidc_config(oidc)
    if api_key is not None and not api_key.strip():
        raise OperatorError(
            "the API key (--api-key or $BLUEBROKER_API_KEY) is empty; give a key, or unset it "
            "to get a random token"
        )
    if is_loopback(host):
        return
    if not api_key and not public and not oidc:
        raise OperatorError(
            f"serving on {host} reaches other machines, and a random token is for one person "
            "on one machine: add --api-key KEY (or set BLUEBROKER_API_KEY) for a shared key, "
            "--oidc-config FILE for sign-in with your provider, --public for anonymous "
            "reads, or --host 127.0.0.1"
        )
    if public:
        print(
            f"warning: serving on {host} with --public: anyone who can reach this machine can "
            "read every run",
            file=sys.stderr,
            flush=True,
        )


def auth_settings(args: argparse.Namespace, catalog: Catalog) -> AuthSettings:
    """The server's sign-in from the options: a token (given or random), anonymous reads
    with --public, and the catalog's API keys always."""
    from bluebroker.server.api_keys import ApiKeyStore
    from bluebroker.server.auth import AuthSettings

    token = args.api_key or secrets.token_hex(24)  # word characters: Tiled's client sends it
    return AuthSettings(
        token=token,
        public=args.public,
        keys=ApiKeyStore(catalog.engine),
        cors_origins=tuple(args.cors_origin),
        policy=load_policy(args.policy),
        oidc=load_oidc(
            getattr(args, "oidc_config", None),
            catalog,
            getattr(args, "oidc_client_secret", None),  # config auth.oidc_client_secret
        ),
    )


def load_oidc(path: str | None, catalog: Catalog, client_secret: str | None = None):
    """OpenID Connect sign-in from its YAML file, checked now (one line on a mistake)."""
    if path is None:
        return None
    from bluebroker.server.oidc import OIDC

    config = oidc_config(path)
    if client_secret:  # from the environment, kept out of the file
        from dataclasses import replace

        config = replace(config, client_secret=client_secret)
    return OIDC.from_engine(config, catalog.engine)


def oidc_config(path: str):
    from bluebroker.server.oidc import OIDCConfig, OIDCConfigError

    try:
        return OIDCConfig.from_file(path)
    except OIDCConfigError as err:
        raise OperatorError(f"--oidc-config {path}: {err}") from None


def load_policy(path: str | None):
    """The access policy file, checked now: a mistake is one line before anything serves."""
    if path is None:
        return None
    from bluebroker.server.policy import AccessPolicy, PolicyError

    try:
        return AccessPolicy.from_file(path)
    except PolicyError as err:
        raise OperatorError(str(err)) from None


def sign_in_url(url: str, auth: AuthSettings, given: str | None) -> str:
    """The URL to print: with ``?token=`` when the token was made here (a key the operator
    chose is theirs to hand out, and is not printed)."""
    if auth.token is None or given:
        return url
    return f"{url}/?token={auth.token}"


# -- bluebroker api-key ----------------------------------------------------------------------


def add_api_key_parser(sub, add_catalog) -> None:
    keys = sub.add_parser(
        "api-key",
        help="make, list and revoke API keys (kept hashed in the catalog database)",
        description="API keys for people and services (a beamline's Kafka worker, a "
        "pipeline). Run on a machine that reaches the catalog database; the same can be done "
        "over HTTP at /api/v1/auth/apikey.",
    )
    ksub = keys.add_subparsers(dest="key_command", required=True, metavar="COMMAND")
    create = ksub.add_parser("create", help="make a key and print it (shown once)")
    add_catalog(create)
    create.add_argument(
        "--principal",
        default="owner",
        help="whose key: owner (the server's single user), service:NAME or user:PROVIDER:ID "
        "(default owner)",
    )
    create.add_argument(
        "--scopes",
        default="read:metadata,read:data",
        help="comma-separated: read:metadata, read:data, write:data, admin "
        "(default read:metadata,read:data)",
    )
    create.add_argument(
        "--groups",
        default="",
        help="comma-separated groups the key's holder is in, for the access policy",
    )
    create.add_argument("--expires-in", metavar="DURATION", help="e.g. 90d, 12h (default never)")
    create.add_argument("--note", default="", help="what the key is for")
    create.set_defaults(func=cmd_api_key_create)
    listing = ksub.add_parser("list", help="list keys (never their secrets)")
    add_catalog(listing)
    listing.add_argument("--principal", help="only this principal's keys")
    listing.set_defaults(func=cmd_api_key_list)
    revoke = ksub.add_parser("revoke", help="revoke a key by its first eight characters")
    add_catalog(revoke)
    revoke.add_argument("first_eight", help="the key's first eight characters after 'bb_'")
    revoke.set_defaults(func=cmd_api_key_revoke)


def _store(args: argparse.Namespace):
    from bluebroker.server.api_keys import ApiKeyStore

    from .cli_commands import check_uri, open_for_use

    check_uri(args.catalog)
    return ApiKeyStore(open_for_use(args.catalog).engine)


def _principal(text: str) -> str:
    kind, _, name = text.partition(":")
    if text == "owner" or (kind in ("service", "user") and name and len(text) <= 400):
        return text
    raise OperatorError(f"--principal {text!r}: use owner, service:NAME or user:PROVIDER:ID")


def cmd_api_key_create(args: argparse.Namespace) -> int:
    from bluebroker.server.api_keys import parse_duration
    from bluebroker.server.principals import parse_scopes

    try:
        scopes = parse_scopes(args.scopes)
        expires = None if args.expires_in is None else parse_duration(args.expires_in)
    except ValueError as err:
        raise OperatorError(str(err)) from None
    groups = {g.strip() for g in args.groups.split(",") if g.strip()}
    secret, info = _store(args).create(
        _principal(args.principal), scopes, expires_in=expires, note=args.note, groups=groups
    )
    print(secret)
    until = (
        "never"
        if info.expires is None
        else time.strftime("%Y-%m-%d %H:%M", time.localtime(info.expires))
    )
    print(
        f"key {info.first_eight} for {info.principal}, scopes {','.join(info.scopes)}, "
        f"expires {until}; it is shown only now",
        file=sys.stderr,
    )
    return 0


def cmd_api_key_list(args: argparse.Namespace) -> int:
    keys = _store(args).list(args.principal)
    if not keys:
        print("no API keys", file=sys.stderr)
    for k in keys:
        state = (
            "revoked"
            if k.revoked
            else "expired"
            if k.expires and k.expires < time.time()
            else "live"
        )
        made = time.strftime("%Y-%m-%d", time.localtime(k.created))
        print(
            f"{k.first_eight}  {state:7}  {k.principal:24}  "
            f"{','.join(k.scopes):40}  {made}  {k.note}"
        )
    return 0


def cmd_api_key_revoke(args: argparse.Namespace) -> int:
    n = _store(args).revoke(args.first_eight)
    if n == 0:
        raise OperatorError(
            f"no live key starts with {args.first_eight!r}; see: bluebroker api-key list"
        )
    print(f"revoked {n} key{'s' if n > 1 else ''}")
    return 0


# -- bluebroker login / logout ------------------------------------------------------------


def add_login_parser(sub) -> None:
    """``bluebroker login URL`` and ``logout URL``: sign this user in to (out of) a server
    that offers OpenID Connect, as ``tiled login`` does; Python sessions then use the tokens."""
    login = sub.add_parser(
        "login",
        help="sign in to a server with your facility's login (prints a URL and a code)",
        description="Sign in to a bluebroker server that offers OpenID Connect: open the "
        "printed URL, check the code and sign in. The tokens are kept for this user in "
        "~/.cache/bluebroker/tokens (0600), and from_uri(URL) uses them.",
    )
    login.add_argument("url", help="the server, e.g. https://data.example.org")
    login.set_defaults(func=cmd_login)
    logout = sub.add_parser("logout", help="end your session with a server, forget its tokens")
    logout.add_argument("url", help="the server, e.g. https://data.example.org")
    logout.set_defaults(func=cmd_logout)


def cmd_login(args: argparse.Namespace) -> int:
    from bluebroker.client.auth_flow import SignInError, sign_in

    try:
        who = sign_in(args.url)
    except (SignInError, ValueError) as err:
        raise OperatorError(str(err)) from None
    except OSError as err:
        raise OperatorError(f"cannot reach {args.url}: {err}") from None
    print(f"signed in to {args.url} as {who}")
    return 0


def cmd_logout(args: argparse.Namespace) -> int:
    from bluebroker.client.auth_flow import sign_out

    try:
        ended = sign_out(args.url)
    except ValueError as err:
        raise OperatorError(str(err)) from None
    print(f"signed out of {args.url}" if ended else f"no session with {args.url} was open here")
    return 0
