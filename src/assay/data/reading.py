"""Reading a stored file as a table: CSV and TSV of any common dialect and encoding, Parquet.

Real CSV files are separated by semicolons or tabs as often as by commas, and are
written in Latin-1 or Windows-1252 as often as in UTF-8. The dialect is found by the
standard library's `csv.Sniffer` (over the first few kilobytes, among `,;\\t|`) and the
encoding, when the bytes are not UTF-8, by `chardet`; pandas then parses the whole
file. A file that still cannot be read raises `UnreadableTableError` with the reason:
the caller keeps the bytes and records why.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import pathlib
import re
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pandas.api import types as ptypes

from assay.data.entities import TABULAR_SUFFIXES
from assay.errors import InvalidArgumentError

_FORMATS = {".csv": "CSV", ".tsv": "TSV", ".parquet": "Parquet", ".pq": "Parquet"}
_DEFAULT_DELIMITER = {"CSV": ",", "TSV": "\t"}
_DELIMITERS = ",;\t|"
# Enough lines to judge a dialect by; the Sniffer's cost grows faster than its input.
_SNIFF_BYTES = 8 * 1024
# What chardet looks at: the start, and the stretch around the first byte that is not
# UTF-8.
_DETECT_BYTES = 64 * 1024
_REASON_MAX_CHARS = 200
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))  # fmt: skip
_MANGLED = re.compile(r"^(.*)\.(\d+)$")
_DECIMAL_COMMA = r"[-+]?\d+(,\d+)?"


class UnreadableTableError(InvalidArgumentError):
    """A file with a table's suffix that cannot be read as one; `reason` says why."""

    def __init__(self, name: str, fmt: str, reason: str) -> None:
        super().__init__(f"Cannot read {name!r} as {fmt}: {reason}.", name=name, reason=reason)
        self.reason = reason


@dataclass(frozen=True)
class LoadedTable:
    """A table as read, with how it was read and what a reader should know about it.

    `delimiter` and `encoding` are None for Parquet. `warnings` names what was odd but
    readable, such as a column name that appears twice (kept twice, not renamed).
    """

    frame: pd.DataFrame
    delimiter: str | None = None
    encoding: str | None = None
    warnings: tuple[str, ...] = ()


def read_table(source: bytes | pathlib.Path, name: str) -> pd.DataFrame:
    """The table in a CSV, TSV or Parquet file; `name`'s suffix picks the format.

    Raises as `load_table` does.
    """
    return load_table(source, name).frame


def load_table(source: bytes | pathlib.Path, name: str) -> LoadedTable:
    """Read a CSV, TSV or Parquet table from bytes or a path; `name`'s suffix picks the format.

    Columns get pandas' type inference; the index is a plain `RangeIndex`. An empty
    file is a table without rows or columns.

    Raises:
        InvalidArgumentError: `name` has no tabular suffix.
        UnreadableTableError: the content cannot be read as such a table (not text,
            ragged rows, a truncated Parquet file, …).
        OSError: `source` is a path that cannot be opened.
    """
    suffix = os.path.splitext(name)[1].lower()
    fmt = _FORMATS.get(suffix)
    if fmt is None:
        known = ", ".join(sorted(TABULAR_SUFFIXES))
        raise InvalidArgumentError(
            f"Cannot read {name!r} as a table: its suffix is not one of {known}. "
            "Rename it with one of those suffixes.",
            name=name,
        )
    data = source.read_bytes() if isinstance(source, pathlib.Path) else source
    if fmt == "Parquet":
        return LoadedTable(_read_parquet(data, name))
    return _read_text(data, name, fmt)


def _read_parquet(data: bytes, name: str) -> pd.DataFrame:
    try:
        df = pd.read_parquet(io.BytesIO(data))
    except (ValueError, OSError) as exc:
        # pyarrow's ArrowInvalid is a ValueError; a truncated footer can be an OSError.
        raise UnreadableTableError(name, "Parquet", _short_reason(exc)) from exc
    named = any(n is not None for n in df.index.names)
    if named or not isinstance(df.index, pd.RangeIndex):
        # Parquet written by pandas can carry an index (say, `id`); it is data, so it
        # becomes columns again and rows are numbered by position.
        df = df.reset_index()
    elif not df.index.equals(pd.RangeIndex(len(df))):
        df = df.reset_index(drop=True)
    return df


def _read_text(data: bytes, name: str, fmt: str) -> LoadedTable:
    encoding = _encoding(data, name, fmt)
    if _blank(data, encoding):
        return LoadedTable(pd.DataFrame(), encoding=encoding)
    delimiter = _delimiter(data, encoding, fmt)
    try:
        df = _parse(data, delimiter, encoding)
    except UnicodeDecodeError:
        # The first kilobytes were UTF-8 and a later byte is not: judge the whole file.
        encoding = _detected(data, name, fmt)
        try:
            df = _parse(data, delimiter, encoding)
        except (ValueError, UnicodeError) as exc:
            raise UnreadableTableError(name, fmt, _short_reason(exc)) from exc
    except ValueError as exc:  # pandas' ParserError and EmptyDataError are ValueErrors
        raise UnreadableTableError(name, fmt, _short_reason(exc)) from exc
    if not df.index.equals(pd.RangeIndex(len(df))):
        # pandas silently turns the first fields into the index when every row has more
        # fields than the header has names; that is a malformed file, not a table.
        raise UnreadableTableError(name, fmt, "its rows have more fields than its header has names")
    if delimiter == ";":
        df = _decimal_commas(df)
    df, warnings = _restore_duplicate_names(df, data, delimiter, encoding)
    return LoadedTable(df, delimiter, encoding, warnings)


def _decimal_commas(df: pd.DataFrame) -> pd.DataFrame:
    """Columns of numbers written with a decimal comma (`2,5`), as numbers.

    Semicolons separate the fields where a comma is the decimal mark (what Excel writes
    in much of Europe). Only a text column all of whose values are such numbers changes.
    """
    for i in range(df.shape[1]):
        s = df.iloc[:, i]
        if not (ptypes.is_object_dtype(s.dtype) or ptypes.is_string_dtype(s.dtype)):
            continue
        present = s.dropna()
        if not len(present) or not all(isinstance(v, str) for v in present.head(1000)):
            continue
        text = present.astype(str)
        if text.str.fullmatch(_DECIMAL_COMMA).all():
            df.isetitem(i, pd.to_numeric(s.str.replace(",", ".", regex=False)).to_numpy())
    return df


def _blank(data: bytes, encoding: str) -> bool:
    """Nothing but whitespace (after a byte-order mark): an empty table."""
    if encoding == "utf-16":
        return not data.decode(encoding, errors="ignore").strip()
    body = data[3:] if encoding == "utf-8-sig" else data
    return not body or body.isspace()  # isspace scans without copying


def _parse(data: bytes, delimiter: str, encoding: str, **options: Any) -> pd.DataFrame:
    # low_memory=False: infer each column's type from all of it at once; chunked
    # inference can give one column mixed types and a DtypeWarning.
    frame: pd.DataFrame = pd.read_csv(
        io.BytesIO(data), sep=delimiter, encoding=encoding, low_memory=False, **options
    )
    return frame


def _encoding(data: bytes, name: str, fmt: str) -> str:
    """UTF-8 (with or without a BOM) when the first kilobytes decode as it, else detected."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding
    head = data[:_DETECT_BYTES]
    try:
        # Incremental, so a character cut in two at the end of the sample is no error.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return _detected(data, name, fmt)
    if b"\x00" in head:
        raise UnreadableTableError(name, fmt, "it holds NUL bytes: it is binary, not text")
    return "utf-8"


def _detected(data: bytes, name: str, fmt: str) -> str:
    """The encoding chardet finds for bytes that are not UTF-8."""
    import chardet

    try:
        data.decode("utf-8")
        start = 0
    except UnicodeDecodeError as exc:
        start = exc.start
    # The start of the file and the stretch around its first non-UTF-8 byte.
    sample = data[: _DETECT_BYTES // 2]
    if start > _DETECT_BYTES // 2:
        sample += b"\n" + data[start - _DETECT_BYTES // 4 : start + _DETECT_BYTES // 4]
    if b"\x00" in sample:
        raise UnreadableTableError(name, fmt, "it holds NUL bytes: it is binary, not text")
    # The superset (Windows-1252 for ISO-8859-1): it also decodes the bytes past the sample.
    # None means binary; bytes no candidate fits come back as Windows-1252, which decodes all.
    found = chardet.detect(sample, prefer_superset=True, compat_names=False)
    if not found["encoding"]:
        raise UnreadableTableError(name, fmt, "it is not text: no character encoding fits it")
    return str(found["encoding"])


def _delimiter(data: bytes, encoding: str, fmt: str) -> str:
    """The separator the Sniffer finds in the first lines, else the suffix's own."""
    text = data[:_SNIFF_BYTES].decode(encoding, errors="ignore")
    if len(data) > _SNIFF_BYTES and "\n" in text:
        text = text[: text.rindex("\n")]  # whole lines only
    try:
        found = csv.Sniffer().sniff(text, delimiters=_DELIMITERS).delimiter
    except csv.Error:  # one column, or too ragged to tell
        return _DEFAULT_DELIMITER[fmt]
    return found if found in _DELIMITERS else _DEFAULT_DELIMITER[fmt]


def _restore_duplicate_names(
    df: pd.DataFrame, data: bytes, delimiter: str, encoding: str
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Undo pandas' renaming of a repeated column name (`a`, `a.1`), and warn of it."""
    names = [str(c) for c in df.columns]
    suspects = {m.group(1) for n in names if (m := _MANGLED.match(n))}
    if not suspects & set(names):
        return df, ()
    header = _parse(data, delimiter, encoding, header=None, nrows=1, dtype=str)
    raw = [None if pd.isna(v) else str(v) for v in header.iloc[0].tolist()]
    if len(raw) != len(names):
        return df, ()
    kept = [r if r is not None else n for r, n in zip(raw, names, strict=True)]
    seen: dict[str, list[int]] = {}
    for i, n in enumerate(kept):
        seen.setdefault(n, []).append(i + 1)
    twice = {n: at for n, at in seen.items() if len(at) > 1}
    if not twice:
        return df, ()
    warnings = tuple(
        f"Column name {n!r} appears {len(at)} times (columns "
        f"{', '.join(map(str, at))}); each is profiled, and checks and diffs see the first."
        for n, at in twice.items()
    )
    return df.set_axis(kept, axis=1), warnings


def _short_reason(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    reason = lines[0] if lines else type(exc).__name__
    if len(reason) > _REASON_MAX_CHARS:
        reason = reason[: _REASON_MAX_CHARS - 3] + "..."
    return reason.rstrip(".")
