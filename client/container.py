"""Containers as read-only mappings, with paged views that slice without fetching everything."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from bluebroker.queries import Query
from bluebroker.query_params import to_params

from .base import BaseClient

if TYPE_CHECKING:
    from .transport import Transport

PAGE = 300


class Container(BaseClient, Mapping):
    """A container node. ``c['a']``, ``c['a/b/c']``, ``len(c)``, ``c.keys()[-3:]``..."""

    def __init__(
        self,
        transport: Transport,
        item: dict[str, Any],
        path: tuple[str, ...],
        queries: tuple[Query, ...] = (),
        sort: tuple[tuple[str, int], ...] = (),
    ) -> None:
        super().__init__(transport, item, path)
        self._queries = queries
        self._sort = sort

    def _params(
        self, offset: int, limit: int, fields: str | None, reverse: bool = False
    ) -> list[tuple[str, Any]]:
        params: list[tuple[str, Any]] = to_params(list(self._queries))
        sort = self._sort or tuple(
            (s["key"], s["direction"]) for s in self._item["attributes"].get("sorting") or ()
        )
        if reverse:
            if not sort:
                raise TypeError("this container has no order to reverse")
            sort = tuple((k, -d) for k, d in sort)
        if sort:
            params.append(("sort", ",".join(k if d > 0 else "-" + k for k, d in sort)))
        params += [("page[offset]", offset), ("page[limit]", limit)]
        if fields is not None:
            params.append(("fields", fields))
        return params

    def _page(
        self, offset: int, limit: int, fields: str | None = None, reverse: bool = False
    ) -> tuple[list[dict[str, Any]], int]:
        body = self._transport.get_json(
            "search", self.path, self._params(offset, limit, fields, reverse)
        )
        return body["data"], body["meta"]["count"]

    def _child(self, item: dict[str, Any]) -> BaseClient:
        from .nodes import make_node

        return make_node(self._transport, item, (*self.path, item["id"]))

    def search(self, query: Query) -> Container:
        """The children that also satisfy ``query``, for containers the server can filter
        (served folders: ``Key('NX_class') == 'NXentry'``, ``FullText('copper')``)."""
        if not isinstance(query, Query):
            raise TypeError(
                f"search takes a query such as Key('NX_class') == 'NXentry', "
                f"not {type(query).__name__}"
            )
        return type(self)(
            self._transport, self._item, self.path, (*self._queries, query), self._sort
        )

    # -- mapping -------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._page(0, 0, fields="")[1]

    def __iter__(self) -> Iterator[str]:
        offset = 0
        while True:
            data, count = self._page(offset, PAGE, fields="")
            for item in data:
                yield item["id"]
            offset += len(data)
            if not data or offset >= count:
                return

    def __getitem__(self, key: str) -> BaseClient:
        from .nodes import fetch

        if not isinstance(key, str):
            raise TypeError(f"keys are strings, not {type(key).__name__}")
        parts = [p for p in key.split("/") if p]
        node: BaseClient = self
        while parts and isinstance(node, Container):  # follow contents the server embedded
            contents = node.item["attributes"].get("structure", {}).get("contents") or {}
            if parts[0] not in contents:
                break
            node = node._child(contents[parts.pop(0)])
        if not parts:
            return node
        return fetch(self._transport, (*node.path, *parts))

    def __contains__(self, key: object) -> bool:
        try:
            self[key]  # type: ignore[index]
        except (KeyError, TypeError):
            return False
        return True

    def keys(self) -> KeysView:  # type: ignore[override]
        return KeysView(self)

    def values(self) -> ValuesView:  # type: ignore[override]
        return ValuesView(self)

    def items(self) -> ItemsView:  # type: ignore[override]
        return ItemsView(self)

    def __repr__(self) -> str:
        keys = self.keys().head(10)
        more = ", ..." if len(keys) == 10 else ""
        return f"<{type(self).__name__} {{{', '.join(repr(k) for k in keys)}{more}}}>"


class _View:
    """A sliceable, paged view of a container's keys, values or items."""

    fields: str | None = None

    def __init__(self, container: Container) -> None:
        self._c = container

    def _convert(self, item: dict[str, Any]) -> Any:
        raise NotImplementedError

    def _get(self, offset: int, limit: int, reverse: bool = False) -> list[Any]:
        data, _ = self._c._page(offset, limit, self.fields, reverse)
        return [self._convert(d) for d in data]

    def __len__(self) -> int:
        return len(self._c)

    def __iter__(self) -> Iterator[Any]:
        offset = 0
        while True:
            data, count = self._c._page(offset, PAGE, self.fields)
            yield from (self._convert(d) for d in data)
            offset += len(data)
            if not data or offset >= count:
                return

    def _ordered(self) -> bool:
        return bool(self._c._sort or self._c._item["attributes"].get("sorting"))

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                return list(self)[index]
            return self._get(start, max(0, stop - start))
        if index < 0 and self._ordered():
            found = self._get(-index - 1, 1, reverse=True)
        else:
            n = len(self) if index < 0 else None
            found = self._get(index + n if n is not None else index, 1)
        if not found:
            raise IndexError(self._out_of_range(index))
        return found[0]

    def _out_of_range(self, index: int) -> str:
        """Say how many there are: '-100000 is out of range' alone leaves a person guessing."""
        count = len(self)
        where = "/" + "/".join(self._c.path)
        if count == 0:
            if self._c._queries:
                return f"index {index}: nothing in {where} matches this search"
            return f"index {index}: {where} is empty"
        return (
            f"index {index} is out of range: {where} has {count} "
            f"{'entry' if count == 1 else 'entries'}"
            f"{' matching this search' if self._c._queries else ''} "
            f"(valid: 0..{count - 1}, or -1..-{count})"
        )

    def first(self) -> Any:
        return self[0]

    def last(self) -> Any:
        return self[-1]

    def head(self, n: int = 5) -> list[Any]:
        return self._get(0, n)

    def tail(self, n: int = 5) -> list[Any]:
        if self._ordered():
            return self._get(0, n, reverse=True)[::-1]
        total = len(self)
        return self._get(max(0, total - n), n)


class KeysView(_View):
    fields = ""

    def _convert(self, item: dict[str, Any]) -> str:
        return item["id"]


class ValuesView(_View):
    def _convert(self, item: dict[str, Any]) -> BaseClient:
        return self._c._child(item)


class ItemsView(_View):
    def _convert(self, item: dict[str, Any]) -> tuple[str, BaseClient]:
        return item["id"], self._c._child(item)
