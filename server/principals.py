"""Who is asking, and what they may do: the one answer every route and the live hub act on.

Every way in (the single-user token, an API key, an OpenID Connect session or access token,
anonymous reads on a ``--public`` server) ends as a :class:`Principal`, so routes check scopes
and the catalog filters runs without caring how the caller signed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# What a caller may do. Reading metadata (search, listings) and reading data (arrays, tables,
# documents, exports) are apart so that a facility can let the world search its catalog while
# only a proposal's members download the data.
READ_METADATA = "read:metadata"
READ_DATA = "read:data"
WRITE_DATA = "write:data"
ADMIN = "admin"
SCOPES = (READ_METADATA, READ_DATA, WRITE_DATA, ADMIN)
READ_SCOPES = frozenset({READ_METADATA, READ_DATA})


@dataclass(frozen=True)
class Principal:
    """A caller: ``id`` is stable (``owner``, ``anonymous``, ``user:<provider>:<sub>``,
    ``service:<name>``); ``scopes`` what this credential allows; ``groups`` and ``claims``
    come from the identity provider and feed the access policy."""

    id: str
    kind: str  # "owner", "anonymous", "user" or "service"
    scopes: frozenset[str]
    name: str = ""
    groups: frozenset[str] = frozenset()
    claims: dict = field(default_factory=dict, compare=False, hash=False)
    via: str = ""  # "token", "api-key", "session", "bearer", "public"

    def has(self, scope: str) -> bool:
        return scope in self.scopes or ADMIN in self.scopes

    def with_scopes(self, scopes: frozenset[str], via: str) -> Principal:
        """The same caller through a narrower credential (an API key never exceeds its
        owner: the scopes are intersected)."""
        narrowed = frozenset(scopes) & self.scopes if ADMIN not in self.scopes else scopes
        return Principal(
            self.id, self.kind, frozenset(narrowed), self.name, self.groups, self.claims, via
        )


# The person who started `bluebroker serve` / `demo` with its printed token (or --api-key).
OWNER = Principal("owner", "owner", frozenset(SCOPES), name="owner", via="token")
# Anyone, on a server started with --public: reads, nothing else.
ANONYMOUS = Principal("anonymous", "anonymous", READ_SCOPES, name="anonymous", via="public")


def parse_scopes(text: str | list[str] | tuple[str, ...]) -> frozenset[str]:
    """``"read:metadata,read:data"`` (or a list) as scopes; a ValueError names the known."""
    items = text.split(",") if isinstance(text, str) else list(text)
    scopes = frozenset(s.strip() for s in items if s.strip())
    unknown = sorted(scopes - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope {', '.join(unknown)}; scopes are {', '.join(SCOPES)}")
    if not scopes:
        raise ValueError(f"give at least one scope of {', '.join(SCOPES)}")
    return scopes
