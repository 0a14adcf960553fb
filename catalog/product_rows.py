"""Catalog files (CSV or JSON) and the validation of their rows, each error numbered by row."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import IO, Any

from catalog.models import Category, Product, sku_validator

COLUMNS = (
    "sku",
    "name",
    "category",
    "description",
    "price",
    "currency",
    "weight_grams",
    "stock",
    "tags",
    "origin",
    "floral_source",
)
REQUIRED_COLUMNS = ("sku", "name", "category", "price")
# The longest text each column's field holds: longer is an error, never cut.
MAX_LENGTHS = {
    "name": Product._meta.get_field("name").max_length,
    "category": Category._meta.get_field("name").max_length,
    "origin": Product._meta.get_field("origin").max_length,
    "floral_source": Product._meta.get_field("floral_source").max_length,
}
MAX_PRICE = Decimal("99999999.99")
MAX_COUNT = 2_147_483_647  # PostgreSQL's integer
# What csv.DictReader gives the columns of a row with fewer values than the header.
_NO_VALUE = object()


class CatalogFileError(Exception):
    """The file as a whole cannot be read (format, encoding, columns)."""


@dataclass(frozen=True)
class ProductRow:
    """A validated row. ``given``: the columns the file gave it; an update writes only those,
    so a file of prices alone leaves stock and descriptions as they are."""

    sku: str
    name: str
    category: str
    description: str
    price: Decimal
    currency: str
    weight_grams: int
    stock: int
    tags: tuple[str, ...]
    origin: str
    floral_source: str
    given: frozenset[str] = frozenset(COLUMNS)


def read_catalog_file(stream: IO[bytes], filename: str) -> list[dict[str, Any]]:
    """Rows of a ``.csv`` or ``.json`` catalog file as dicts keyed by column name."""
    try:
        text = stream.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CatalogFileError("the file is not UTF-8 text") from None
    if filename.lower().endswith(".json"):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CatalogFileError(f"invalid JSON: {exc}") from None
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise CatalogFileError("a JSON catalog must be a list of objects")
    elif filename.lower().endswith(".csv"):
        rows = _csv_rows(text)
    else:
        raise CatalogFileError("the file name must end in .csv or .json")
    if not rows:
        raise CatalogFileError("the file has no rows")
    return rows


def _csv_rows(text: str) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text), restval=_NO_VALUE)
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise CatalogFileError(f"missing column(s): {', '.join(missing)}")
    if repeated := sorted({name for name in header if name and header.count(name) > 1}):
        raise CatalogFileError(f"repeated column(s): {', '.join(repeated)}")
    if unknown := _unknown_columns(header):
        raise CatalogFileError(unknown)
    reader.fieldnames = header
    # A spreadsheet's trailing commas make columns without a name, and values past the
    # header's last column (under None): left out while they are empty.
    return [
        {name: value for name, value in row.items() if name not in ("", None) or _filled(value)}
        for row in reader
    ]


def _filled(value: Any) -> bool:
    if isinstance(value, list):  # csv.DictReader's values past the header's last column
        return any(map(_filled, value))
    return value is not _NO_VALUE and value.strip() != ""


def _unknown_columns(names: Any) -> str | None:
    """Refuses what is not a column: a misspelt "stok" would otherwise be read as no stock
    column, and the stock left as it was without a word."""
    unknown = [name for name in names if name not in (*COLUMNS, "", None)]
    if not unknown:
        return None
    listed = ", ".join(f'"{name}"' for name in unknown)
    return f"unknown column(s): {listed} (the columns: {', '.join(COLUMNS)})"


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _decimal(value: Any, column: str) -> Decimal:
    try:
        number = Decimal(_text(value))
    except InvalidOperation:
        raise ValueError(f"{column}: {value!r} is not a number") from None
    if not number.is_finite() or number < 0 or number > MAX_PRICE:
        raise ValueError(f"{column}: must be between 0 and {MAX_PRICE}")
    if number.as_tuple().exponent < -2:  # type: ignore[operator]
        raise ValueError(f"{column}: at most 2 decimal places")
    return number


def _count(value: Any, column: str) -> int:
    raw = _text(value)
    if raw == "":
        return 0
    try:
        number = int(raw)
    except ValueError:
        raise ValueError(f"{column}: {value!r} is not a whole number") from None
    if number < 0:
        raise ValueError(f"{column}: must not be negative")
    if number > MAX_COUNT:
        raise ValueError(f"{column}: must be at most {MAX_COUNT}")
    return number


def _tags(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else _text(value).split(";")
    tags = []
    for item in items:
        tag = _text(item).lower()
        if len(tag) > 40:
            raise ValueError(f"tags: {tag[:20]!r}... is longer than 40 characters")
        if tag and tag not in tags:
            tags.append(tag)
    return tuple(tags)


def parse_product_row(row: dict[str, Any]) -> ProductRow:
    """One validated row; ``ValueError`` lists everything wrong with it."""
    # A CSV row that does not fit the header: its values are not under their columns.
    if None in row:  # csv.DictReader's key for values past the header's last column
        raise ValueError("more values than the header has columns")
    if "" in row:
        raise ValueError("a value under a column without a name")
    if _NO_VALUE in row.values():
        raise ValueError("fewer values than the header has columns")
    problems: list[str] = []
    if unknown := _unknown_columns(row):
        problems.append(unknown)
    for column in REQUIRED_COLUMNS:
        if _text(row.get(column)) == "":
            problems.append(f"{column}: required")
    sku = _text(row.get("sku"))
    if sku and not sku_validator.regex.match(sku):
        problems.append(f"sku: {sku_validator.message}")
    for column, longest in MAX_LENGTHS.items():
        if len(_text(row.get(column))) > longest:
            problems.append(f"{column}: at most {longest} characters")
    # PostgreSQL's text cannot hold one; it would fail the whole import at the INSERT.
    problems += [
        f"{column}: contains a NUL character"
        for column in COLUMNS
        if "\x00" in _text(row.get(column))
    ]
    currency = _text(row.get("currency")).upper() or "GBP"
    if not re.fullmatch(r"[A-Z]{3}", currency):
        problems.append(f"currency: {row.get('currency')!r} is not a 3-letter ISO code")
    parsed: dict[str, Any] = {}
    for column, parse in (
        ("price", _decimal),
        ("weight_grams", _count),
        ("stock", _count),
    ):
        if column in REQUIRED_COLUMNS and _text(row.get(column)) == "":
            continue
        try:
            parsed[column] = parse(row.get(column), column)
        except ValueError as exc:
            problems.append(str(exc))
    try:
        parsed["tags"] = _tags(row.get("tags"))
    except ValueError as exc:
        problems.append(str(exc))
    if problems:
        raise ValueError("; ".join(problems))
    return ProductRow(
        sku=sku,
        name=_text(row.get("name")),
        category=_text(row.get("category")),
        description=_text(row.get("description")),
        price=parsed["price"],
        currency=currency,
        weight_grams=parsed["weight_grams"],
        stock=parsed["stock"],
        tags=parsed["tags"],
        origin=_text(row.get("origin")),
        floral_source=_text(row.get("floral_source")),
        given=frozenset(column for column in COLUMNS if column in row),
    )


def parse_product_rows(rows: list[dict[str, Any]]) -> tuple[list[ProductRow], list[str]]:
    """Valid rows, and one message per invalid row ("row 3: price: required")."""
    valid: list[ProductRow] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(rows, start=1):
        try:
            row = parse_product_row(raw)
        except ValueError as exc:
            errors.append(f"row {number}: {exc}")
            continue
        if row.sku in seen:
            errors.append(f"row {number}: sku: {row.sku} repeats row {seen[row.sku]}")
            continue
        seen[row.sku] = number
        valid.append(row)
    return valid, errors
