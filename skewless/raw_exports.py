"""Check the raw CSV exports (seeds/*.csv) before dbt reads them.

dbt's own errors for a broken export do not name the file (a 0-byte file is a bare
``StopIteration``, bytes that are not UTF-8 a ``UnicodeDecodeError``, a missing column a DuckDB
Binder error about a SELECT clause). :func:`check_raw_exports` reads each export declared in
``seeds/raw.yml`` and raises :class:`RawExportError` naming the file, and the line, column or
byte, for the first problem found:

- the file is missing or empty (0 bytes);
- it is not UTF-8;
- its header lacks a declared column, or names a column twice;
- it has a header but no rows;
- a row has more or fewer fields than the header, or the file does not end with a newline
  (a truncated export).

Whether the values are right is staging's job (models/staging, docs/staging.md).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import yaml


class RawExportError(ValueError):
    """A raw export cannot be loaded; the message names the file and what is wrong."""


def declared_exports(root: Path) -> dict[str, list[str]]:
    """Each seed declared in ``<root>/seeds/raw.yml`` -> the columns it must have, in order."""
    spec_path = root / "seeds" / "raw.yml"
    spec = yaml.safe_load(spec_path.read_text(encoding="utf-8")) or {}
    exports: dict[str, list[str]] = {}
    for seed in spec.get("seeds") or []:
        columns = (seed.get("config") or {}).get("column_types") or {}
        exports[seed["name"]] = list(columns)
    return exports


def check_raw_export(path: Path, columns: list[str]) -> int:
    """Check one export against its declared ``columns``; return its number of data rows.

    Raises :class:`RawExportError` naming ``path`` for the first problem (see the module doc).
    """
    if not path.exists():
        raise RawExportError(f"{path}: the export does not exist")
    data = path.read_bytes()
    if not data:
        raise RawExportError(
            f"{path}: the export is empty (0 bytes); expected a header with "
            f"{', '.join(columns)} and rows"
        )
    text = _decode(path, data)
    if not text.endswith("\n"):
        line = text.count("\n") + 1
        raise RawExportError(
            f"{path}: line {line} does not end with a newline: the export looks truncated"
        )
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows, start = 0, 1
    try:
        header = next(reader)
        _check_header(path, header, columns)
        start = reader.line_num + 1
        for fields in reader:
            if len(fields) != len(header):
                raise RawExportError(
                    f"{path}: line {start} has {len(fields)} fields, the header has "
                    f"{len(header)} ({', '.join(header)}): a truncated or malformed row"
                )
            rows, start = rows + 1, reader.line_num + 1
    except csv.Error as exc:
        raise RawExportError(
            f"{path}: the row starting at line {start} is malformed ({exc}; "
            f"a quoted field that is never closed?)"
        ) from None
    if rows == 0:
        raise RawExportError(f"{path}: the export has a header but no rows")
    return rows


def check_raw_exports(root: Path) -> dict[str, int]:
    """Check every export declared in ``seeds/raw.yml``; return seed name -> data rows."""
    return {
        name: check_raw_export(root / "seeds" / f"{name}.csv", columns)
        for name, columns in declared_exports(root).items()
    }


def _decode(path: Path, data: bytes) -> str:
    """``data`` as UTF-8 (a leading byte-order mark dropped), or an error naming the byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise RawExportError(
            f"{path}: not UTF-8: byte 0x{data[exc.start]:02x} at line {line}, "
            f"column {column} ({exc.reason}); re-export it as UTF-8"
        ) from None


def _check_header(path: Path, header: list[str], columns: list[str]) -> None:
    """The header names every declared column, and no column twice."""
    names = list(header)
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise RawExportError(f"{path}: the header names column '{twice[0]}' more than once")
    missing = [column for column in columns if column not in names]
    if missing:
        raise RawExportError(
            f"{path}: the header has no column '{missing[0]}' "
            f"(expected {', '.join(columns)}; found {', '.join(names)})"
        )
