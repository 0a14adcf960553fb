"""The rows of a product import file and their validation, each error naming its row's place
in the file ("line 5", "item 3")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.text import slugify

from beemanhoney.common.models import max_length_of
from beemanhoney.common.numbers import PLAIN_DECIMAL, PLAIN_WHOLE
from catalog.currencies import NOT_THREE_CAPITALS, currency_problem
from catalog.import_files import (
    FileColumns,
    cell,
    is_unicode_text,
    parse_rows,
    row_problems,
    shortened,
    text_of,
    too_long,
)
from catalog.models import (
    MAX_TAGS,
    PRODUCT_DESCRIPTION_MAX_LENGTH,
    Category,
    Product,
    sku_validator,
)
from catalog.selectors import categories_named

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
    "name": max_length_of(Product, "name"),
    "category": max_length_of(Category, "name"),
    "description": PRODUCT_DESCRIPTION_MAX_LENGTH,
    "origin": max_length_of(Product, "origin"),
    "floral_source": max_length_of(Product, "floral_source"),
}
PRODUCT_COLUMNS = FileColumns(
    COLUMNS,
    REQUIRED_COLUMNS,
    numbers=("price", "weight_grams", "stock"),
    lists=("tags",),
    defaulted=("currency", "weight_grams", "stock"),
)
MAX_PRICE = Decimal("99999999.99")
CENT = Decimal("0.01")
MAX_COUNT = 2_147_483_647  # PostgreSQL's integer
# An export joins tags with ';' and a search (?tags=) splits them on ',': a tag holding
# either could not be imported back whole, nor searched for.
TAG_SEPARATORS = (";", ",")


@dataclass(frozen=True)
class ProductRow:
    """A validated row. ``given``: the columns the file gave it (``FileColumns.given``); an
    update writes only those, so a file of prices alone leaves stock and descriptions as they
    are."""

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


def _decimal(value: Any, column: str) -> Decimal:
    raw = text_of(value)
    if not PLAIN_DECIMAL.fullmatch(raw):
        raise ValueError(f"{column}: {shortened(value)!r} is not a number")
    number = Decimal(raw)
    if number < 0 or number > MAX_PRICE:
        raise ValueError(f"{column}: must be between 0 and {MAX_PRICE}")
    # Zeros past the second place are no precision lost: 12.500 is 12.50, 12.505 is refused.
    cents = number.quantize(CENT)
    if number != cents:
        raise ValueError(f"{column}: at most 2 decimal places")
    return cents


def _count(value: Any, column: str) -> int:
    if isinstance(value, float) and value.is_integer():  # a JSON 3.0
        value = int(value)
    raw = text_of(value)
    if raw == "":
        return 0
    if not PLAIN_WHOLE.fullmatch(raw):
        raise ValueError(f"{column}: {shortened(value)!r} is not a whole number")
    # Compared as digits: int() refuses a string of over 4300 digits, even "000...1".
    digits = raw.lstrip("+-").lstrip("0") or "0"
    if raw.startswith("-") and digits != "0":
        raise ValueError(f"{column}: must not be negative")
    if len(digits) > len(str(MAX_COUNT)) or int(digits) > MAX_COUNT:
        raise ValueError(f"{column}: must be at most {MAX_COUNT}")
    return int(digits)


def _tags(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else text_of(value).split(";")
    tags = []
    for item in items:
        tag = text_of(item).lower()
        if len(tag) > 40:
            raise ValueError(f"tags: {tag[:20]!r}... is longer than 40 characters")
        if any(separator in tag for separator in TAG_SEPARATORS):
            raise ValueError(f"tags: {tag!r} holds ';' or ',', which separate tags")
        if tag and tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise ValueError(f"tags: {len(tags)} tags, at most {MAX_TAGS}")
    return tuple(tags)


def _may_name_a_category(name: str) -> bool:
    """Whether ``name`` is looked up as a category: not blank, not longer than a category's
    name, and text a query can carry (``row_problems`` reports a NUL or a lone surrogate)."""
    return (
        bool(name)
        and len(name) <= MAX_LENGTHS["category"]
        and is_unicode_text(name)
        and "\x00" not in name
    )


def existing_categories(
    rows: list[dict[str, Any]], *, may_create_categories: bool = True
) -> dict[str, Category]:
    """The categories the rows' category names find (``categories_named``), read for the whole
    file at once: every name's when the import may not create categories, else only those of
    names that make no slug ("蜂蜜", "Μέλι"), which a row may name only when they exist. No
    statement when no name needs one: a file of Latin names reads nothing here."""
    names = [cell(row, "category") for row in rows]
    return categories_named(
        names=[
            name
            for name in names
            if _may_name_a_category(name) and (not may_create_categories or not slugify(name))
        ]
    )


def is_new_category(name: str, categories: Mapping[str, Category]) -> bool:
    """Whether a row naming ``name`` would have the import create that category;
    ``categories``: what ``existing_categories`` read for the row's file."""
    return _may_name_a_category(name) and name not in categories


def _new_category_problem(
    name: str, categories: Mapping[str, Category], *, may_create_categories: bool
) -> str | None:
    """Why the import may not create the category ``name``, if it would create it: it may
    create none, or it cannot make a slug of the name ("蜂蜜", "???"): the API asks for a slug
    then, and an import has no column to give one."""
    if not is_new_category(name, categories):
        return None
    if not may_create_categories:
        return (
            f"category: {shortened(name)!r} would be a new category, and this import may not"
            " create categories"
        )
    if slugify(name):
        return None
    return (
        f"category: {shortened(name)!r} would be a new category, and its name has no letters"
        " or digits to make its slug of: create it with a slug first (admin or API)"
    )


def parse_product_row(
    row: dict[str, Any],
    *,
    categories: Mapping[str, Category] | None = None,
    may_create_categories: bool = True,
) -> ProductRow:
    """One validated row; ``ValueError`` lists everything wrong with it. ``categories``: what
    ``existing_categories`` read for the row's file (read for this row alone when not given).
    A row naming a category that does not exist is invalid without ``may_create_categories``."""
    if categories is None:
        categories = existing_categories([row], may_create_categories=may_create_categories)
    problems = row_problems(row, PRODUCT_COLUMNS)
    sku = cell(row, "sku")
    if sku:
        try:
            sku_validator(sku)
        except ValidationError:
            problems.append(f"sku: {sku_validator.message}")
    problems += too_long(row, MAX_LENGTHS)
    if problem := _new_category_problem(
        cell(row, "category"), categories, may_create_categories=may_create_categories
    ):
        problems.append(problem)
    currency = cell(row, "currency").upper() or "GBP"
    if (problem := currency_problem(currency)) == NOT_THREE_CAPITALS:
        problems.append(f"currency: {shortened(row.get('currency'))!r} is not a 3-letter ISO code")
    elif problem:
        problems.append(f"currency: {problem}")
    parsed: dict[str, Any] = {}
    for column, parse in (
        ("price", _decimal),
        ("weight_grams", _count),
        ("stock", _count),
    ):
        if column in REQUIRED_COLUMNS and cell(row, column) == "":
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
        name=cell(row, "name"),
        category=cell(row, "category"),
        description=cell(row, "description"),
        price=parsed["price"],
        currency=currency,
        weight_grams=parsed["weight_grams"],
        stock=parsed["stock"],
        tags=parsed["tags"],
        origin=cell(row, "origin"),
        floral_source=cell(row, "floral_source"),
        given=PRODUCT_COLUMNS.given(row),
    )


def parse_product_rows(
    rows: list[dict[str, Any]],
    *,
    categories: Mapping[str, Category] | None = None,
    may_create_categories: bool = True,
) -> tuple[list[ProductRow], list[str]]:
    """Valid rows, and one message per invalid row; skus must not repeat. The categories the
    rows name are read once for the file (``existing_categories``), or given in
    ``categories``; as ``parse_product_row`` for ``may_create_categories``."""
    if categories is None:
        categories = existing_categories(rows, may_create_categories=may_create_categories)
    parse = partial(
        parse_product_row, categories=categories, may_create_categories=may_create_categories
    )
    return parse_rows(rows, parse, key="sku")


def product_file_row(product: Product) -> dict[str, str]:
    """``product`` as a row of an import file: importing it leaves the product unchanged."""
    return {
        "sku": product.sku,
        "name": product.name,
        "category": product.category.name,
        "description": product.description,
        "price": str(product.price),
        "currency": product.currency,
        "weight_grams": str(product.weight_grams),
        "stock": str(product.stock),
        "tags": ";".join(product.tags),
        "origin": product.origin,
        "floral_source": product.floral_source,
    }
