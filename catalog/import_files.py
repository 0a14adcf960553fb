"""Import files (CSV or JSON) read into rows of named values, and written as CSV (an export
that imports back unchanged); what any import's rows share.

Each kind of row is validated by its own module: ``catalog.product_rows``,
``catalog.knowledge_rows``.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, TypeVar

from beemanhoney.common.parsers import RepeatedKeyError, object_without_repeated_keys

R = TypeVar("R")

# What csv.DictReader gives the columns of a row with fewer values than the header.
_NO_VALUE = object()
_csv_field_limit_lock = threading.Lock()


class CatalogFileError(Exception):
    """The file as a whole cannot be read (format, encoding, columns)."""


class FileRow(dict[str, Any]):
    """A row of named values read from a file, and where the file has it: "line 5" (of a CSV
    file, as a spreadsheet numbers its rows) or "item 3" (of a JSON list). Its errors say so.
    ``decimal_comma``: the file is separated by semicolons, as a spreadsheet saves "CSV" where
    the comma is the decimal point, so its decimals may be written "1,50"."""

    def __init__(self, values: dict[str, Any], *, where: str, decimal_comma: bool = False) -> None:
        super().__init__(values)
        self.where = where
        self.decimal_comma = decimal_comma


@dataclass(frozen=True)
class FileColumns:
    """The columns a kind of import file may have, and those it must have."""

    names: tuple[str, ...]
    required: tuple[str, ...]
    # What a JSON file may give besides text (a string, or null for none): a number (or
    # true/false) in ``numbers``, a list of strings in ``lists``. Any other value would be read
    # as its Python repr ("{'en': 'Manuka'}" as a name), so it is refused.
    numbers: tuple[str, ...] = ()
    lists: tuple[str, ...] = ()
    # Columns with a default. A blank cell under one sets nothing: a new row takes the default,
    # an existing row keeps its value. A blank stock cell in an update would otherwise empty
    # the shelf, and a blank is_published would publish a withdrawn article again.
    defaulted: tuple[str, ...] = ()

    def given(self, row: dict[str, Any]) -> frozenset[str]:
        """The columns ``row`` sets: an update writes only these."""
        return frozenset(
            name
            for name in self.names
            if name in row and not (name in self.defaulted and cell(row, name) == "")
        )

    def unknown(self, names: Iterable[Any]) -> str | None:
        """Refuses what is not a column: a misspelt "stok" would otherwise be read as no stock
        column, and the stock left as it was without a word."""
        unknown = [name for name in names if name not in (*self.names, "", None)]
        if not unknown:
            return None
        listed = ", ".join(f'"{_printable(shortened(name))}"' for name in unknown)
        return f"unknown column(s): {listed} (the columns: {', '.join(self.names)})"

    def wrong_type(self, column: str, value: Any) -> str | None:
        """Why a JSON file's ``value`` cannot be ``column``'s, if it cannot."""
        if value is None or isinstance(value, str) or column not in self.names:
            return None
        if column in self.lists:
            if isinstance(value, list) and all(isinstance(item, str) for item in value):
                return None
            return f"{column}: must be text or a list of text"
        if column in self.numbers:
            return None if isinstance(value, int | float) else f"{column}: must be a number or text"
        # A whole number is fine as text: a sku of 1001, say.
        if isinstance(value, int) and not isinstance(value, bool):
            return None
        return f"{column}: must be text"


def read_catalog_file(
    stream: IO[bytes], filename: str, *, columns: FileColumns
) -> list[dict[str, Any]]:
    """Rows of a ``.csv`` or ``.json`` file as dicts keyed by column name: ``FileRow``s, which
    know where in the file they are."""
    if not filename.lower().endswith((".csv", ".json")):
        raise CatalogFileError("the file name must end in .csv or .json")
    try:
        text = stream.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CatalogFileError("the file is not UTF-8 text") from None
    if text.strip() == "":
        raise CatalogFileError("the file is empty")
    if filename.lower().endswith(".json"):
        try:
            items = json.loads(text, object_pairs_hook=object_without_repeated_keys)
        except RepeatedKeyError as exc:
            raise CatalogFileError(
                f"invalid JSON: {shortened(exc.key)!r} is given twice in one object"
            ) from None
        except json.JSONDecodeError as exc:
            raise CatalogFileError(f"invalid JSON: {exc}") from None
        except ValueError:  # int()'s limit on digits, which json.loads meets in a long number
            limit = sys.get_int_max_str_digits()
            raise CatalogFileError(f"invalid JSON: a number of more than {limit} digits") from None
        except RecursionError:
            raise CatalogFileError("invalid JSON: lists or objects nested too deeply") from None
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise CatalogFileError("a JSON file must be a list of objects")
        # Numbered as in the list, the empty objects skipped among them.
        rows: list[dict[str, Any]] = [
            FileRow(item, where=f"item {number}")
            for number, item in enumerate(items, start=1)
            if any(map(_filled, item.values()))
        ]
    else:
        rows = _csv_rows(text, columns)
    if not rows:
        raise CatalogFileError("the file has no rows")
    return rows


@contextmanager
def _csv_field_limit(limit: int) -> Iterator[None]:
    """csv's limit on a value's length (128 KiB) raised to ``limit`` for the block. The limit
    is one for the whole process: the lock keeps two reads from putting back each other's
    raised limit (anyone else's read meanwhile takes longer values, which does no harm)."""
    with _csv_field_limit_lock:
        before = csv.field_size_limit(max(limit, csv.field_size_limit()))
        try:
            yield
        finally:
            csv.field_size_limit(before)


def _csv_rows(text: str, columns: FileColumns) -> list[dict[str, Any]]:
    # No value is longer than the file, which is read already: with csv's limit that long, a
    # value over 128 KiB is its row's error (longer than its column holds), not the file's,
    # and --skip-invalid loads the other rows.
    with _csv_field_limit(len(text)):
        return _csv_rows_read(text, columns)


def _delimiter(text: str) -> str:
    """What separates the file's values: a comma, unless the header is a single cell holding
    semicolons or tabs. Excel saves its "CSV" with semicolons where a comma is the decimal
    point; a file of one column is never a valid import, so this reads no valid file
    otherwise."""
    # newline="", as csv asks: a lone "\r" (old Mac files) ends a line rather than failing.
    header = next(csv.reader(io.StringIO(text, newline="")), [])
    if len(header) != 1:
        return ","
    other = max((";", "\t"), key=header[0].count)
    return other if other in header[0] else ","


def _csv_records(text: str, delimiter: str) -> Iterator[list[str]]:
    """The file's records. Its quoting is read strictly: an unclosed quote made the rest of
    the file one value, so rows vanished from an import that reported success."""
    records = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    # Numbered as _csv_rows_read numbers them: the record, not the physical line.
    for line in itertools.count(1):
        try:
            yield next(records)
        except StopIteration:
            return
        except csv.Error as error:
            raise CatalogFileError(f"line {line}: {_quoting_problem(str(error))}") from None


def _quoting_problem(reason: str) -> str:
    if reason == "unexpected end of data":
        return 'a value opened with " is never closed, so the rest of the file is one value'
    if reason.endswith("expected after '\"'"):
        return (
            'a quoted value goes on after its closing " (a " inside a quoted value is'
            ' written twice: "12"" dipper")'
        )
    return f"the CSV cannot be read ({reason})"


def _csv_rows_read(text: str, columns: FileColumns) -> list[dict[str, Any]]:
    delimiter = _delimiter(text)
    records = _csv_records(text, delimiter)
    # A spreadsheet user writes "SKU" or " Price " as readily as "price".
    header = [name.strip().lower() for name in next(records, [])]
    missing = [c for c in columns.required if c not in header]
    if missing:
        raise CatalogFileError(f"missing column(s): {', '.join(missing)}")
    if repeated := sorted({name for name in header if name and header.count(name) > 1}):
        raise CatalogFileError(f"repeated column(s): {', '.join(repeated)}")
    if unknown := columns.unknown(header):
        raise CatalogFileError(unknown)
    rows: list[dict[str, Any]] = []
    # Each record numbered as a spreadsheet numbers its rows, which is what the user sees: the
    # header is line 1, a blank line has a number too, and a cell holding line breaks does not
    # take more than one.
    for line, values in enumerate(records, start=2):
        row = _csv_row(header, values)
        # A row of empty cells (",,,", which spreadsheets write after the last row) is
        # skipped, as a blank line is.
        if not any(map(_filled, row.values())):
            continue
        # A spreadsheet's trailing commas make columns without a name, and values past the
        # header's last column (under None): left out while they are empty.
        filled = {
            name: value for name, value in row.items() if name not in ("", None) or _filled(value)
        }
        rows.append(FileRow(filled, where=f"line {line}", decimal_comma=delimiter == ";"))
    return rows


def _csv_row(header: list[str], values: list[str]) -> dict[Any, Any]:
    """``values`` under the header's names as csv.DictReader puts them: values past the
    header's last column as a list under None, ``_NO_VALUE`` under columns past the last
    value."""
    row: dict[Any, Any] = dict(zip(header, map(_formula_unescaped, values), strict=False))
    if len(values) > len(header):
        row[None] = values[len(header) :]
    for name in header[len(values) :]:
        row[name] = _NO_VALUE
    return row


def _filled(value: Any) -> bool:
    """Whether a CSV cell or JSON value holds anything: not blank text, null or an empty list."""
    if isinstance(value, list):  # values past a CSV header's last column, or a JSON list
        return any(map(_filled, value))
    if value is _NO_VALUE or value is None:
        return False
    return not isinstance(value, str) or value.strip() != ""


def row_problems(row: dict[str, Any], columns: FileColumns) -> list[str]:
    """What is wrong with a row before its values are read: its shape, unknown columns,
    values of the wrong type, required values missing, NUL characters. ``ValueError`` for a
    row whose values cannot be read: a CSV row that does not fit its header (its values are
    then not under their columns), a JSON value of a type its column does not take."""
    if None in row:  # csv.DictReader's key for values past the header's last column
        raise ValueError("more values than the header has columns")
    if "" in row:
        raise ValueError("a value under a column without a name")
    if _NO_VALUE in row.values():
        raise ValueError("fewer values than the header has columns")
    problems: list[str] = []
    if unknown := columns.unknown(row):
        problems.append(unknown)
    if wrong := [p for column, value in row.items() if (p := columns.wrong_type(column, value))]:
        raise ValueError("; ".join(problems + wrong))
    problems += [f"{column}: required" for column in columns.required if cell(row, column) == ""]
    # PostgreSQL's text cannot hold a NUL, and UTF-8 (which the driver sends) cannot encode a
    # lone surrogate: either would fail the whole import at the INSERT.
    problems += [
        f"{column}: contains a NUL character"
        for column in columns.names
        if any("\x00" in text_of(item) for item in _items(row.get(column)))
    ]
    problems += [
        f"{column}: contains a lone surrogate (JSON's \\ud800 to \\udfff), which is no character"
        for column in columns.names
        if not all(is_unicode_text(text_of(item)) for item in _items(row.get(column)))
    ]
    return problems


def is_unicode_text(text: str) -> bool:
    """Whether ``text`` is characters UTF-8 can encode: JSON's "\\ud800" reads as a lone
    surrogate, which is not, and the database driver fails on it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(text: str) -> str:
    """``text`` with what cannot be shown as it is written as its escape: a lone surrogate
    (a message holding one could not be printed or shown on a page), and a line break, a tab or
    another control character (which would break a one-line reason)."""
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def too_long(row: dict[str, Any], max_lengths: dict[str, int]) -> list[str]:
    """A problem for each column whose text is longer than its field holds (never cut)."""
    return [
        f"{column}: at most {longest} characters"
        for column, longest in max_lengths.items()
        if len(cell(row, column)) > longest
    ]


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def cell(row: dict[str, Any], column: str) -> str:
    """The row's value in ``column`` as text, stripped; "" where it has none."""
    return text_of(row.get(column))


def text_of(value: Any) -> str:
    return "" if value is None else str(value).strip()


def shortened(value: Any, longest: int = 40) -> str:
    """``value`` as an error message quotes it: cut short, since a cell may be a megabyte."""
    text = str(value)
    return text if len(text) <= longest else f"{text[:longest]}..."


def parse_rows(
    rows: list[dict[str, Any]], parse: Callable[[dict[str, Any]], R], *, key: str
) -> tuple[list[R], list[str]]:
    """The rows ``parse`` validates, and one message per invalid row, naming where it is
    ("line 3: price: required"): a ``FileRow``'s place in its file, else "item N" of ``rows``.
    A row whose ``key`` repeats an earlier row's is invalid."""
    valid: list[R] = []
    errors: list[str] = []
    seen: dict[Any, str] = {}
    for number, raw in enumerate(rows, start=1):
        where = raw.where if isinstance(raw, FileRow) else f"item {number}"
        try:
            row = parse(raw)
        except ValueError as exc:
            errors.append(f"{where}: {exc}")
            continue
        value = getattr(row, key)
        if value in seen:
            errors.append(f"{where}: {key}: {value} repeats {seen[value]}")
            continue
        seen[value] = where
        valid.append(row)
    return valid, errors


def csv_lines(rows: Iterable[dict[str, str]], columns: FileColumns) -> Iterator[str]:
    """``rows`` as the lines of a CSV file with a header of every column, which
    ``read_catalog_file`` reads back unchanged; one row at a time, so an export streams.

    The file starts with a byte order mark, without which Excel reads UTF-8 in the local code
    page ("£" as "Â£"). A cell a spreadsheet would run as a formula ("=HYPERLINK(...)") is
    written behind an apostrophe, which spreadsheets show as text and the import takes off; so
    is one that starts with apostrophes before such a start ("'-- see label").
    """
    line = _LastLine()
    writer = csv.DictWriter(line, fieldnames=columns.names, lineterminator="\n")
    yield "\ufeff" + writer.writeheader()
    for row in rows:
        yield writer.writerow({name: _formula_escaped(value) for name, value in row.items()})


# What a spreadsheet starts a formula with (OWASP's list for CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _written_behind_an_apostrophe(value: str) -> bool:
    """A value a spreadsheet would run, or one that starts with apostrophes before a formula's
    start: the reader takes one of those off ("'-- see label" was read as "-- see label"), so
    the file gives it one more."""
    return value.lstrip("'").startswith(_FORMULA_START)


def _formula_escaped(value: str) -> str:
    return f"'{value}" if _written_behind_an_apostrophe(value) else value


def _formula_unescaped(value: str) -> str:
    escaped = value.startswith("'") and _written_behind_an_apostrophe(value[1:])
    return value[1:] if escaped else value


class _LastLine:
    """What ``csv.writer`` writes to: each write returned instead of kept."""

    def write(self, text: str) -> str:
        return text
