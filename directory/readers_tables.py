"""Tables: CSV, TSV, XDI (X-ray absorption data, its header as metadata) and Parquet."""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np

from .readers import Entry, Reader

MAX_HEADER_LINES = 10_000
# Text tables are parsed whole (to count rows and find column types); a larger one is
# listed as unreadable, with its bytes still served, rather than held in memory.
MAX_TEXT_BYTES = 512 * 2**20


def check_size(path: str) -> None:
    size = os.path.getsize(path)
    if size > MAX_TEXT_BYTES:
        raise ValueError(
            f"{size:,} bytes: text tables over {MAX_TEXT_BYTES // 2**20} MiB are not parsed "
            "whole; Parquet serves large tables"
        )


def table_structure(df: Any) -> dict[str, Any]:
    return {
        "columns": [str(c) for c in df.columns],
        "num_rows": len(df),
        "dtypes": {
            str(c): np.dtype(df[c].dtype).str if df[c].dtype != object else "|O" for c in df.columns
        },
    }


class CSVReader(Reader):
    name = "csv"
    suffixes = (".csv",)
    separator = ","

    def _read(self, path: str, columns: list[str] | None = None) -> Any:
        import pandas as pd

        return pd.read_csv(path, sep=self.separator, usecols=columns)

    def describe(self, files: list[str]) -> list[Entry]:
        check_size(files[0])
        structure = self._arrow_structure(files[0]) or table_structure(self._read(files[0]))
        text = " ".join(structure["columns"])
        return [Entry("table", self.name, structure, {}, "", text)]

    def _arrow_structure(self, path: str) -> dict[str, Any] | None:
        """Columns, rows and types parsed by pyarrow (several times faster than pandas on
        the many small files of a data lake), or None where pandas must say: duplicate
        names, which pandas renames, or a file pyarrow's stricter parser refuses."""
        import pyarrow as pa
        import pyarrow.csv as pc

        try:
            table = pc.read_csv(
                path,
                read_options=pc.ReadOptions(use_threads=False),
                parse_options=pc.ParseOptions(delimiter=self.separator),
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
        names = table.column_names
        if len(set(names)) != len(names):
            return None
        dtypes = {}
        for field in table.schema:
            try:
                dtypes[field.name] = np.dtype(field.type.to_pandas_dtype()).str
            except (NotImplementedError, TypeError):
                dtypes[field.name] = "|O"
            if dtypes[field.name][1] in "OUSM":
                dtypes[field.name] = "|O"
        return {"columns": names, "num_rows": table.num_rows, "dtypes": dtypes}

    def read_table(self, files: list[str], inner: str, columns: list[str] | None) -> Any:
        return self._read(files[0], columns)


class TSVReader(CSVReader):
    name = "tsv"
    suffixes = (".tsv", ".tab")
    separator = "\t"


_HEADER = re.compile(r"^#\s*([A-Za-z][\w\-]*)\.([\w\-]+)\s*:\s*(.*?)\s*$")


def parse_xdi(path: str) -> tuple[dict[str, Any], list[str], list[str], int]:
    """(metadata by namespace, column names, free comments, header line count)."""
    meta: dict[str, Any] = {}
    comments: list[str] = []
    names: dict[int, str] = {}
    last_comment = ""
    count = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        first = f.readline()
        count = 1
        if not first.startswith("# XDI/"):
            raise ValueError("not an XDI file: the first line must start with '# XDI/'")
        meta["XDI"] = {"version": first[2:].strip()}
        in_comments = False
        for line in f:
            if not line.startswith("#"):
                break
            count += 1
            if count > MAX_HEADER_LINES:
                raise ValueError(f"more than {MAX_HEADER_LINES} header lines")
            body = line[1:].strip()
            if body.startswith("///"):
                in_comments = True
                continue
            if body.startswith("---"):
                in_comments = False
                continue
            m = _HEADER.match(line)
            if m and not in_comments:
                namespace, tag, value = m.groups()
                if namespace.lower() == "column" and tag.isdigit():
                    names[int(tag)] = value.split()[0] if value.split() else f"col{tag}"
                meta.setdefault(namespace, {})[tag] = value
            elif in_comments:
                comments.append(body)
            last_comment = body
    columns = [names[i] for i in sorted(names)]
    if not columns and last_comment:
        columns = last_comment.split()
    return meta, columns, comments, count


class XDIReader(Reader):
    name = "xdi"
    suffixes = (".xdi",)

    def _read(self, path: str, columns: list[str] | None = None) -> Any:
        import pandas as pd

        _, names, _, skip = parse_xdi(path)
        df = pd.read_csv(path, sep=r"\s+", comment="#", header=None, skiprows=skip)
        if names and len(names) == df.shape[1]:
            df.columns = names
        else:
            df.columns = [f"col{i + 1}" for i in range(df.shape[1])]
        return df[columns] if columns else df

    def describe(self, files: list[str]) -> list[Entry]:
        check_size(files[0])
        meta, _, comments, _ = parse_xdi(files[0])
        df = self._read(files[0])
        if comments:
            meta["comments"] = "\n".join(comments)
        text = " ".join(
            [
                *(str(v) for ns in meta.values() if isinstance(ns, dict) for v in ns.values()),
                *comments,
                *map(str, df.columns),
            ]
        )
        return [Entry("table", "xdi", table_structure(df), meta, "", text)]

    def read_table(self, files: list[str], inner: str, columns: list[str] | None) -> Any:
        return self._read(files[0], columns)


class ParquetReader(Reader):
    name = "parquet"
    suffixes = (".parquet", ".pq")

    def describe(self, files: list[str]) -> list[Entry]:
        import pyarrow.parquet as pq

        info = pq.ParquetFile(files[0])
        schema = info.schema_arrow
        meta = {
            k.decode("utf-8", "replace"): v.decode("utf-8", "replace")
            for k, v in (schema.metadata or {}).items()
            if k != b"pandas" and len(v) < 10_000
        }
        structure = {
            "columns": [f.name for f in schema if not f.name.startswith("__index_level_")],
            "num_rows": info.metadata.num_rows,
        }
        return [Entry("table", "parquet", structure, meta, "", " ".join(structure["columns"]))]

    def read_table(self, files: list[str], inner: str, columns: list[str] | None) -> Any:
        import pandas as pd

        return pd.read_parquet(files[0], columns=columns)
