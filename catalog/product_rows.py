"""The rows of a product import file and their validation, each error naming its row's place
in the file ("line 5", "item 3")."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any

from django.core.exceptions import ValidationError

from beemanhoney.common.models import max_length_of
from beemanhoney.common.numbers import PLAIN_DECIMAL, PLAIN_WHOLE
from catalog.currencies import NOT_THREE_CAPITALS, currency_problem
from catalog.import_files import (
    FileColumns,
    FileRow,
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
    slug_of,
    tag_stored,
)
from catalog.selectors import categories_named, product_currencies

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
# A number written with a decimal comma or grouped digits, which ``_separator_hint`` explains.
_SEPARATED_NUMBER = re.compile(r"[+-]?[\d.,]*\d[\d.,]*", re.ASCII)
# Where the comma is the decimal point, a dot groups thousands: "1.500" is 1500 there.
_DOT_GROUPED_THOUSANDS = re.compile(r"\d{1,3}(?:\.\d{3})+", re.ASCII)


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


def _decimal(value: Any, column: str, *, decimal_comma: bool = False) -> Decimal:
    """``value`` as a price. With ``decimal_comma`` (a file separated by ";", as a spreadsheet
    writes one where the comma is the decimal point), "1,50" is 1.50 as "1.50" is."""
    raw = text_of(value)
    if decimal_comma and _DOT_GROUPED_THOUSANDS.fullmatch(raw):
        # A spreadsheet writing decimal commas means 1500; a dot taken as a decimal point
        # would make it 1.50, a thousandth of the price.
        raise ValueError(
            f"{column}: {shortened(value)!r} is ambiguous in a file separated by ';' (write"
            f" {raw.replace('.', '')}, without a thousands separator, or a decimal comma: 1,50)"
        )
    if decimal_comma and raw.count(",") == 1 and "." not in raw:
        raw = raw.replace(",", ".")
    if not PLAIN_DECIMAL.fullmatch(raw):
        raise ValueError(
            f"{column}: {shortened(value)!r} is not a number{_separator_hint(raw, decimal_comma)}"
        )
    number = Decimal(raw)
    if number < 0 or number > MAX_PRICE:
        raise ValueError(f"{column}: must be between 0 and {MAX_PRICE}")
    # Zeros past the second place are no precision lost: 12.500 is 12.50, 12.505 is refused.
    cents = number.quantize(CENT)
    if number != cents:
        raise ValueError(f"{column}: at most 2 decimal places")
    return cents


def _separator_hint(raw: str, decimal_comma: bool) -> str:
    """How to write a number that has a comma in it: "1,50" where the decimal point is a dot,
    or grouped digits ("1.234,50"), which no file takes."""
    if "," not in raw or not _SEPARATED_NUMBER.fullmatch(raw):
        return ""
    if decimal_comma:
        return " (write 1,50 or 1.50, without a thousands separator)"
    return " (write the decimal point as a dot, 1.50, without a thousands separator)"


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
        tag = tag_stored(text_of(item))
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
    name, and text a query can carry."""
    return _may_be_looked_up(name, max_length=MAX_LENGTHS["category"])


def _may_be_looked_up(value: str, *, max_length: int) -> bool:
    """Whether ``value`` may be looked up in the database: not blank, not longer than its
    column, and text a query can carry (``row_problems`` reports a NUL or a lone surrogate)."""
    return (
        bool(value) and len(value) <= max_length and is_unicode_text(value) and "\x00" not in value
    )


def stored_currencies(rows: list[dict[str, Any]]) -> dict[str, str]:
    """The currency stored for each product the rows' skus name, in one statement."""
    longest = max_length_of(Product, "sku")
    skus = [sku for row in rows if _may_be_looked_up(sku := cell(row, "sku"), max_length=longest)]
    return product_currencies(skus=skus)


def existing_categories(
    rows: list[dict[str, Any]], *, may_create_categories: bool = True
) -> dict[str, Category]:
    """The categories the rows' category names find (``categories_named``), read for the whole
    file at once in two statements. Where the import may create categories, also what the slug
    a new one would have finds, under the slug: a new "Review Cider!" beside "Review Cider"
    (both ``review-cider``) is a typo, refused rather than made ``review-cider-2``."""
    names = [cell(row, "category") for row in rows]
    names = [name for name in map(Category.name_as_written, names) if _may_name_a_category(name)]
    slugs = [slug for name in names if (slug := slug_of(name))] if may_create_categories else []
    return categories_named(names=[*names, *slugs])


def is_new_category(name: str, categories: Mapping[str, Category]) -> bool:
    """Whether a row naming ``name`` would have the import create that category;
    ``categories``: what ``existing_categories`` read for the row's file."""
    name = Category.name_as_written(name)
    return _may_name_a_category(name) and name not in categories


def _new_category_problem(
    name: str, categories: Mapping[str, Category], *, may_create_categories: bool
) -> str | None:
    """Why the import may not create the category ``name``, if it would create it: it may
    create none; it cannot make a slug of the name ("蜂蜜", "???"): the API asks for a slug
    then, and an import has no column to give one; or the slug it would make names a category
    already (``existing_categories``)."""
    if not is_new_category(name, categories):
        return None
    if not may_create_categories:
        return (
            f"category: {shortened(name)!r} would be a new category, and this import may not"
            " create categories"
        )
    slug = slug_of(name)
    if not slug:
        return (
            f"category: {shortened(name)!r} would be a new category, and its name has no ASCII"
            " letters or digits to make its slug of: create it with a slug first (admin or API)"
        )
    # The import would make it "<slug>-2". Only the same slug: one differing in case
    # ("Gift-Sets", given in the admin) leaves this one free.
    if (existing := categories.get(slug)) is not None and existing.slug == slug:
        return _same_slug_problem(name, slug, existing.name)
    return None


def _same_slug_problem(name: str, slug: str, other: str, *, earlier: bool = False) -> str:
    """Why ``name`` may not be a new category: its slug names the category ``other``, or is
    that of ``other``, a new category an ``earlier`` row names."""
    whose = (
        f"is that of {shortened(other)!r}, a new category an earlier row names"
        if earlier
        else f"names {shortened(other)!r} already"
    )
    return (
        f"category: {shortened(name)!r} would be a new category, and its slug"
        f" ({shortened(slug)}) {whose}: name that one, or create the new category with a slug"
        " of its own first (admin or API)"
    )


def parse_product_row(
    row: dict[str, Any],
    *,
    categories: Mapping[str, Category] | None = None,
    may_create_categories: bool = True,
    stored_currency: str | None = None,
) -> ProductRow:
    """One validated row; ``ValueError`` lists everything wrong with it. ``categories``: what
    ``existing_categories`` read for the row's file (read for this row alone when not given).
    A row naming a category that does not exist is invalid without ``may_create_categories``.
    ``stored_currency``: the currency of the product of the row's sku (``stored_currencies``),
    None for a new one. A stored product's sku, and the currency it has, are not checked again:
    rows stored before their checks existed (a sku with a space, a currency withdrawn since)
    import back unchanged, as the API and the admin leave them until they change."""
    if categories is None:
        categories = existing_categories([row], may_create_categories=may_create_categories)
    problems = row_problems(row, PRODUCT_COLUMNS)
    sku = cell(row, "sku")
    if sku and stored_currency is None and (problem := _sku_problem(sku)):
        problems.append(problem)
    problems += too_long(row, MAX_LENGTHS)
    category = Category.name_as_written(cell(row, "category"))
    if problem := _new_category_problem(
        category, categories, may_create_categories=may_create_categories
    ):
        problems.append(problem)
    currency = cell(row, "currency").upper() or "GBP"
    problem = None if currency == stored_currency else currency_problem(currency)
    if problem == NOT_THREE_CAPITALS:
        problems.append(f"currency: {shortened(row.get('currency'))!r} is not a 3-letter ISO code")
    elif problem:
        problems.append(f"currency: {problem}")
    parsed: dict[str, Any] = {}
    decimal_comma = isinstance(row, FileRow) and row.decimal_comma
    for column, parse in (
        ("price", partial(_decimal, decimal_comma=decimal_comma)),
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
        category=category,
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


def keeps_what_only_stored_products_may(row: ProductRow) -> bool:
    """Whether ``row`` has a sku or a currency that passed only as a stored product's
    (``parse_product_row``), which a new product may not have."""
    return _sku_problem(row.sku) is not None or currency_problem(row.currency) is not None


def _sku_problem(sku: str) -> str | None:
    try:
        sku_validator(sku)
    except ValidationError:
        return f"sku: {sku_validator.message}"
    return None


def parse_product_rows(
    rows: list[dict[str, Any]],
    *,
    categories: Mapping[str, Category] | None = None,
    may_create_categories: bool = True,
) -> tuple[list[ProductRow], list[str]]:
    """Valid rows, and one message per invalid row; skus must not repeat. The categories the
    rows name are read once for the file (``existing_categories``), or given in
    ``categories``; as ``parse_product_row`` for ``may_create_categories``, and for the
    currencies of the products stored under the rows' skus, read once for the file too."""
    if categories is None:
        categories = existing_categories(rows, may_create_categories=may_create_categories)
    known = categories
    currencies = stored_currencies(rows)
    # Each new category's slug, and the name of the first valid row to create it: a later
    # name of the same slug ("Mead" then "Mead!") would be a second category, "mead-2".
    new_slugs: dict[str, str] = {}

    def parse(row: dict[str, Any]) -> ProductRow:
        parsed = parse_product_row(
            row,
            categories=known,
            may_create_categories=may_create_categories,
            stored_currency=currencies.get(cell(row, "sku")),
        )
        if is_new_category(parsed.category, known):
            slug = slug_of(parsed.category)
            first = new_slugs.setdefault(slug, parsed.category)
            # The first row's name in any case, or its slug, names the category it creates.
            if parsed.category.lower() not in (first.lower(), slug):
                raise ValueError(_same_slug_problem(parsed.category, slug, first, earlier=True))
        return parsed

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
