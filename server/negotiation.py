"""Pick the response format from ``?format=`` or the ``Accept`` header."""

from __future__ import annotations

from fastapi import Request

from bluebroker import formats

from .errors import ApiError


def choose(request: Request, offered: list[str], default: str) -> str:
    """The media type to answer with, or a 406 that lists what this node offers."""
    explicit = request.query_params.get("format")
    if explicit:
        media = formats.resolve(explicit)
        if media in offered:
            return media
        raise ApiError(406, _unavailable(f"format {explicit!r:.80}", offered))
    accept = request.headers.get("accept", "")
    if not accept.strip():
        return default
    ranked = []
    for i, part in enumerate(accept.split(",")):
        media, _, params = part.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            key, _, value = p.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        ranked.append((-q, i, media.strip().lower()))
    for _, _, media in sorted(ranked):
        if media in ("*/*", "") or (media.endswith("/*") and default.startswith(media[:-1])):
            return default
        if media in offered:
            return media
        if media.endswith("/*"):
            for m in offered:
                if m.startswith(media[:-1]):
                    return m
    raise ApiError(406, _unavailable(f"Accept: {accept:.200}", offered))


def _unavailable(asked: str, offered: list[str]) -> str:
    names = sorted({k for k, v in formats.ALIASES.items() if v in offered})
    return (
        f"{asked} is not available here; ask for one of {', '.join(offered)} "
        f"(or ?format= {', '.join(names)})"
    )
