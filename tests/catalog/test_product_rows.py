import re
from decimal import Decimal

import pytest

from catalog.import_files import FileRow
from catalog.product_rows import (
    ProductRow,
    keeps_what_only_stored_products_may,
    parse_product_row,
    parse_product_rows,
)
from tests.catalog.factories import CategoryFactory

# A row's category is looked up, with the slug a new one would have, where it is parsed.
pytestmark = pytest.mark.django_db


def a_row(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "sku": "BH-TEST-001",
        "name": "Heather Raw Honey 340g",
        "category": "Raw Honey",
        "description": "Bold, bittersweet moorland honey.",
        "price": "12.95",
        "currency": "GBP",
        "weight_grams": "340",
        "stock": "38",
        "tags": "raw;heather",
        "origin": "North York Moors, England",
        "floral_source": "Heather",
    }
    row.update(overrides)
    return row


# --- parse_product_row ------------------------------------------------------------------------


def test_a_valid_row_becomes_a_typed_product_row() -> None:
    row = a_row()

    parsed = parse_product_row(row)

    assert parsed == ProductRow(
        sku="BH-TEST-001",
        name="Heather Raw Honey 340g",
        category="Raw Honey",
        description="Bold, bittersweet moorland honey.",
        price=Decimal("12.95"),
        currency="GBP",
        weight_grams=340,
        stock=38,
        tags=("raw", "heather"),
        origin="North York Moors, England",
        floral_source="Heather",
    )


def test_optional_columns_take_their_defaults_when_missing() -> None:
    row = {"sku": "BH-TEST-002", "name": "Clover Honey", "category": "Raw Honey", "price": "8"}

    parsed = parse_product_row(row)

    assert parsed.currency == "GBP"
    assert parsed.weight_grams == 0
    assert parsed.stock == 0
    assert parsed.tags == ()
    assert parsed.description == ""


@pytest.mark.parametrize("column", ["sku", "name", "category", "price"])
def test_each_required_column_must_have_a_value(column: str) -> None:
    row = a_row(**{column: "  "})

    with pytest.raises(ValueError, match=f"^{column}: required$"):
        parse_product_row(row)


def test_every_problem_of_a_row_is_reported_at_once() -> None:
    row = a_row(sku="", price="abc", stock="-1")

    message = "sku: required; price: 'abc' is not a number; stock: must not be negative"

    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_product_row(row)


@pytest.mark.parametrize(
    ("price", "message"),
    [
        ("abc", "price: 'abc' is not a number"),
        ("-0.01", "price: must be between 0 and 99999999.99"),
        ("100000000", "price: must be between 0 and 99999999.99"),
        ("NaN", "price: 'NaN' is not a number"),
        ("9.999", "price: at most 2 decimal places"),
        ("12.505", "price: at most 2 decimal places"),
        ("1_000", "price: '1_000' is not a number"),
        ("\u0663", "price: '\u0663' is not a number"),
        ("\uff11\uff12", "price: '\uff11\uff12' is not a number"),
        ("1e3", "price: '1e3' is not a number"),
    ],
)
def test_a_bad_price_is_rejected(price: str, message: str) -> None:
    row = a_row(price=price)

    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_product_row(row)


@pytest.mark.parametrize(("price", "read"), [("12.500", "12.50"), ("8.", "8"), (".5", "0.5")])
def test_a_price_written_with_zeros_past_two_decimal_places_is_read(price: str, read: str) -> None:
    parsed = parse_product_row(a_row(price=price))

    assert parsed.price == Decimal(read)


def test_a_price_with_two_decimal_places_is_kept_exactly() -> None:
    row = a_row(price=" 0.10 ")

    parsed = parse_product_row(row)

    assert parsed.price == Decimal("0.10")


@pytest.mark.parametrize(
    ("stock", "message"),
    [
        ("-3", "stock: must not be negative"),
        ("2.5", "stock: '2.5' is not a whole number"),
        ("1_0", "stock: '1_0' is not a whole number"),
        ("\u0663", "stock: '\u0663' is not a whole number"),
        (2.5, "stock: '2.5' is not a whole number"),
        ("9" * 5_000, "stock: must be at most 2147483647"),
    ],
    ids=["negative", "a fraction", "an underscore", "an Arabic-Indic digit", "JSON 2.5", "huge"],
)
def test_a_bad_stock_is_rejected(stock: object, message: str) -> None:
    row = a_row(stock=stock)

    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_product_row(row)


@pytest.mark.parametrize("column", ["stock", "weight_grams"])
def test_a_count_beyond_what_the_database_holds_is_rejected(column: str) -> None:
    row = a_row(**{column: "2147483648"})

    with pytest.raises(ValueError, match=f"^{column}: must be at most 2147483647$"):
        parse_product_row(row)


@pytest.mark.parametrize(("column", "longest"), [("category", 100), ("origin", 120)])
def test_a_text_longer_than_its_field_is_rejected_not_cut(column: str, longest: int) -> None:
    row = a_row(**{column: "x" * (longest + 1)})

    with pytest.raises(ValueError, match=f"^{column}: at most {longest} characters$"):
        parse_product_row(row)


def test_a_nul_character_is_rejected() -> None:
    row = a_row(description="Raw\x00honey")

    with pytest.raises(ValueError, match=r"^description: contains a NUL character$"):
        parse_product_row(row)


# What JSON's "\ud800" reads as: a lone surrogate, which UTF-8 cannot encode, nor the database
# driver send.
LONE_SURROGATE = "\ud800"
LONE_SURROGATE_PROBLEM = (
    "contains a lone surrogate (JSON's \\ud800 to \\udfff), which is no character"
)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("name", f"Heather {LONE_SURROGATE}Honey"),
        ("category", LONE_SURROGATE),
        ("description", f"Bold{LONE_SURROGATE}"),
        ("tags", ["raw", LONE_SURROGATE]),
        ("origin", LONE_SURROGATE),
        ("floral_source", LONE_SURROGATE),
    ],
)
def test_a_lone_surrogate_is_rejected_as_a_nul_character_is(column: str, value: object) -> None:
    # A category of no letters is looked up before it is refused: no query can carry this one.
    row = a_row(**{column: value})

    with pytest.raises(ValueError, match=rf"^{column}: contains a lone surrogate \(JSON's") as e:
        parse_product_row(row)

    assert str(e.value) == f"{column}: {LONE_SURROGATE_PROBLEM}"


def test_a_category_of_a_nul_character_alone_is_rejected_without_a_query() -> None:
    # A name that slugs to nothing is looked up as a category first; PostgreSQL refuses a NUL.
    row = a_row(category="\x00")

    with pytest.raises(ValueError, match=r"^category: contains a NUL character$"):
        parse_product_row(row)


def test_a_row_records_which_columns_it_gave() -> None:
    row = {"sku": "A-1", "name": "Clover Honey", "category": "Raw Honey", "price": "8", "tags": ""}

    parsed = parse_product_row(row)

    assert parsed.given == {"sku", "name", "category", "price", "tags"}


@pytest.mark.parametrize("column", ["stock", "weight_grams", "currency"])
def test_a_blank_cell_under_a_column_with_a_default_is_not_given(column: str) -> None:
    row = {"sku": "A-1", "name": "Clover Honey", "category": "Raw Honey", "price": "8", column: " "}

    parsed = parse_product_row(row)

    assert parsed.given == {"sku", "name", "category", "price"}


def test_an_unknown_field_of_a_json_row_is_rejected() -> None:
    row = a_row(stok="12")

    with pytest.raises(ValueError, match=r'^unknown column\(s\): "stok" \(the columns: sku, '):
        parse_product_row(row)


def test_a_negative_weight_is_rejected() -> None:
    row = a_row(weight_grams="-340")

    with pytest.raises(ValueError, match=r"^weight_grams: must not be negative$"):
        parse_product_row(row)


@pytest.mark.parametrize("currency", ["POUNDS", "£", "G1P", "EU"])
def test_a_currency_that_is_not_a_three_letter_code_is_rejected(currency: str) -> None:
    row = a_row(currency=currency)

    with pytest.raises(ValueError, match="is not a 3-letter ISO code"):
        parse_product_row(row)


@pytest.mark.parametrize("currency", ["GPB", "XYZ", "XAU", "BGN"])
def test_a_three_letter_code_of_no_currency_in_circulation_is_rejected(currency: str) -> None:
    row = a_row(currency=currency)

    message = f"currency: {currency} is not the ISO 4217 code of a currency in circulation"

    with pytest.raises(ValueError, match=f"^{message}, such as GBP$"):
        parse_product_row(row)


@pytest.mark.parametrize("currency", ["GBP", "EUR", "USD", "JPY", "XCG", "ZWG"])
def test_a_currency_in_circulation_is_accepted(currency: str) -> None:
    assert parse_product_row(a_row(currency=currency)).currency == currency


def test_a_lowercase_currency_is_upper_cased() -> None:
    row = a_row(currency=" eur ")

    parsed = parse_product_row(row)

    assert parsed.currency == "EUR"


@pytest.mark.parametrize("sku", ["-starts-with-dash", "has space", "x" * 41, "bad/slash"])
def test_a_sku_outside_the_allowed_pattern_is_rejected(sku: str) -> None:
    row = a_row(sku=sku)

    with pytest.raises(ValueError, match=r"^sku: letters, digits"):
        parse_product_row(row)


def test_a_description_of_up_to_10000_characters_is_kept() -> None:
    row = a_row(description="x" * 10_000)

    parsed = parse_product_row(row)

    assert len(parsed.description) == 10_000


def test_a_description_over_10000_characters_is_rejected_not_cut() -> None:
    row = a_row(description="x" * 10_001)

    with pytest.raises(ValueError, match=r"^description: at most 10000 characters$"):
        parse_product_row(row)


def test_a_long_bad_value_is_quoted_cut_short() -> None:
    row = a_row(currency="X" * 100_000)

    message = f"currency: '{'X' * 40}...' is not a 3-letter ISO code"

    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_product_row(row)


# --- JSON values ------------------------------------------------------------------------------


@pytest.mark.parametrize("column", ["sku", "name", "category", "description", "currency"])
@pytest.mark.parametrize("value", [{"en": "Manuka"}, ["Manuka"], 12.5, True])
def test_a_text_column_given_json_other_than_a_string_is_rejected(
    column: str, value: object
) -> None:
    row = a_row(**{column: value})

    with pytest.raises(ValueError, match=f"^{column}: must be text$"):
        parse_product_row(row)


def test_numbers_for_the_numeric_columns_are_read() -> None:
    row = a_row(price=8.5, weight_grams=340, stock=0)

    parsed = parse_product_row(row)

    assert (parsed.price, parsed.weight_grams, parsed.stock) == (Decimal("8.5"), 340, 0)


@pytest.mark.parametrize("column", ["price", "stock"])
def test_a_numeric_column_given_a_json_object_or_list_is_rejected(column: str) -> None:
    row = a_row(**{column: {"amount": 8}})

    with pytest.raises(ValueError, match=f"^{column}: must be a number or text$"):
        parse_product_row(row)


@pytest.mark.parametrize(("stock", "read"), [(3.0, 3), ("+4", 4), ("007", 7), ("-0", 0)])
def test_a_count_written_as_a_whole_number_is_read(stock: object, read: int) -> None:
    parsed = parse_product_row(a_row(stock=stock))

    assert parsed.stock == read


def test_a_json_null_is_no_value() -> None:
    row = a_row(description=None, tags=None)

    parsed = parse_product_row(row)

    assert (parsed.description, parsed.tags) == ("", ())


def test_a_json_whole_number_is_read_as_text() -> None:
    assert parse_product_row(a_row(sku=1001)).sku == "1001"


def test_every_wrongly_typed_value_of_a_row_is_reported_at_once() -> None:
    row = a_row(name={"en": "Manuka"}, origin=["NZ"], tags=5)

    message = "name: must be text; tags: must be text or a list of text; origin: must be text"

    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_product_row(row)


# --- tags -------------------------------------------------------------------------------------


def test_tags_are_split_on_semicolons_trimmed_lowercased_and_deduplicated() -> None:
    row = a_row(tags=" Raw ;BRITISH;; raw ; Wildflower ;")

    parsed = parse_product_row(row)

    assert parsed.tags == ("raw", "british", "wildflower")


def test_tags_given_as_a_json_list_are_normalised_the_same_way() -> None:
    row = a_row(tags=["Raw", " raw", "Gift Idea", ""])

    parsed = parse_product_row(row)

    assert parsed.tags == ("raw", "gift idea")


@pytest.mark.parametrize("tags", [5, {"raw": True}, ["raw", 5], ["raw", ["british"]]])
def test_tags_other_than_text_or_a_list_of_text_are_rejected(tags: object) -> None:
    row = a_row(tags=tags)

    with pytest.raises(ValueError, match=r"^tags: must be text or a list of text$"):
        parse_product_row(row)


def test_a_nul_character_in_a_json_list_of_tags_is_rejected() -> None:
    row = a_row(tags=["raw", "a\x00"])

    with pytest.raises(ValueError, match=r"^tags: contains a NUL character$"):
        parse_product_row(row)


@pytest.mark.parametrize(
    ("tags", "tag"),
    [("raw, british", "raw, british"), (["raw;british"], "raw;british"), (["a,b"], "a,b")],
)
def test_a_tag_holding_a_separator_is_rejected(tags: object, tag: str) -> None:
    row = a_row(tags=tags)

    message = f"tags: {tag!r} holds ';' or ',', which separate tags"

    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_product_row(row)


def test_a_tag_longer_than_forty_characters_is_rejected() -> None:
    row = a_row(tags="ok;" + "t" * 41)

    with pytest.raises(ValueError, match=r"^tags: .* is longer than 40 characters$"):
        parse_product_row(row)


def test_more_than_twenty_tags_are_rejected_as_the_api_and_admin_reject_them() -> None:
    assert parse_product_row(a_row(tags=";".join(f"t{n}" for n in range(20)))).tags
    with pytest.raises(ValueError, match=r"^tags: 21 tags, at most 20$"):
        parse_product_row(a_row(tags=";".join(f"t{n}" for n in range(21))))


# --- parse_product_rows -----------------------------------------------------------------------


def test_errors_of_a_list_of_rows_are_numbered_by_item_from_one() -> None:
    rows = [a_row(sku="A-1"), a_row(sku="A-2", price="-1"), a_row(sku="A-3", name="")]

    valid, errors = parse_product_rows(rows)

    assert [row.sku for row in valid] == ["A-1"]
    assert errors == [
        "item 2: price: must be between 0 and 99999999.99",
        "item 3: name: required",
    ]


def test_a_sku_repeated_in_the_file_is_reported_with_both_item_numbers() -> None:
    rows = [a_row(sku="A-1"), a_row(sku="A-2"), a_row(sku="A-1", name="Another name")]

    valid, errors = parse_product_rows(rows)

    assert [row.sku for row in valid] == ["A-1", "A-2"]
    assert errors == ["item 3: sku: A-1 repeats item 1"]


@pytest.mark.django_db
@pytest.mark.parametrize("count", [3, 30])
def test_categories_of_names_without_latin_letters_are_read_once_for_the_file(
    count: int, django_assert_num_queries
) -> None:
    CategoryFactory.create(name="蜂蜜", slug="fengmi")
    CategoryFactory.create(name="Μέλι", slug="meli")
    names = ["蜂蜜", "Μέλι", "ハチミツ"]
    rows = [a_row(sku=f"A-{n}", category=names[n % 3]) for n in range(count)]

    # The names lowered, the categories read, and the currencies of the skus' products.
    with django_assert_num_queries(3):
        valid, errors = parse_product_rows(rows)

    assert {row.category for row in valid} == {"蜂蜜", "Μέλι"}
    assert len(errors) == count // 3
    assert errors[0] == (
        "item 3: category: 'ハチミツ' would be a new category, and its name has no ASCII letters"
        " or digits to make its slug of: create it with a slug first (admin or API)"
    )


@pytest.mark.django_db
def test_rows_naming_new_categories_are_invalid_where_none_may_be_created(
    django_assert_num_queries,
) -> None:
    CategoryFactory.create(name="Raw Honey", slug="raw-honey")
    rows = [
        a_row(sku="A-1"),
        a_row(sku="A-2", category="RAW-HONEY"),
        a_row(sku="A-3", category="Gift Sets"),
        a_row(sku="A-4", category="Gift Sets", price="-1"),
    ]

    with django_assert_num_queries(3):
        valid, errors = parse_product_rows(rows, may_create_categories=False)

    assert [row.sku for row in valid] == ["A-1", "A-2"]
    new = "category: 'Gift Sets' would be a new category, and this import may not create categories"
    assert errors == [
        f"item 3: {new}",
        f"item 4: {new}; price: must be between 0 and 99999999.99",
    ]


@pytest.mark.parametrize("count", [2, 40])
def test_the_categories_of_a_file_of_latin_names_are_read_once_for_the_file(
    count: int, django_assert_num_queries
) -> None:
    rows = [a_row(sku=f"A-{n}", category=f"Gifts {n % 4}") for n in range(count)]

    # The names and the slugs new categories would have, lowered; then the categories read,
    # and the currencies of the skus' products.
    with django_assert_num_queries(3):
        valid, errors = parse_product_rows(rows)

    assert (len(valid), errors) == (count, [])


@pytest.mark.django_db
def test_a_stored_products_sku_and_currency_are_not_checked_again_a_new_ones_are() -> None:
    stored = a_row(sku="BH 001", currency="BGN")

    kept = parse_product_row(stored, stored_currency="BGN")
    with pytest.raises(ValueError, match="currency") as changed:
        parse_product_row(stored, stored_currency="GBP")
    with pytest.raises(ValueError, match="sku") as new:
        parse_product_row(stored)

    assert (kept.sku, kept.currency) == ("BH 001", "BGN")
    assert keeps_what_only_stored_products_may(kept)
    assert not keeps_what_only_stored_products_may(parse_product_row(a_row()))
    withdrawn = "BGN is not the ISO 4217 code of a currency in circulation, such as GBP"
    assert str(changed.value) == f"currency: {withdrawn}"
    assert str(new.value) == (
        f"sku: letters, digits, '.', '_' or '-', at most 40 characters; currency: {withdrawn}"
    )


def test_runs_of_spaces_in_a_category_name_are_read_as_one() -> None:
    CategoryFactory.create(name="Raw Honey", slug="raw-honey")
    rows = [a_row(sku="A-1", category="Raw  Honey"), a_row(sku="A-2", category=" Raw \t Honey")]

    valid, errors = parse_product_rows(rows)

    assert ([row.category for row in valid], errors) == (["Raw Honey", "Raw Honey"], [])


def test_a_new_category_whose_slug_names_an_existing_one_is_a_row_error() -> None:
    CategoryFactory.create(name="Review Cider", slug="review-cider")
    rows = [
        a_row(sku="A-1", category="Review Cider"),
        a_row(sku="A-2", category="Review Cider!"),
        a_row(sku="A-3", category="review-cider"),  # the category's slug names it
        a_row(sku="A-4", category="Perry"),
    ]

    valid, errors = parse_product_rows(rows)

    assert [row.sku for row in valid] == ["A-1", "A-3", "A-4"]
    assert errors == [
        "item 2: category: 'Review Cider!' would be a new category, and its slug (review-cider)"
        " names 'Review Cider' already: name that one, or create the new category with a slug"
        " of its own first (admin or API)"
    ]


def test_a_new_category_whose_slug_is_that_of_a_new_category_an_earlier_row_names() -> None:
    rows = [
        a_row(sku="A-1", category="Gift Sets"),
        # The category the first row creates, by its name in another case and by its slug.
        a_row(sku="A-2", category="GIFT SETS"),
        a_row(sku="A-3", category="gift-sets"),
        a_row(sku="A-4", category="Gift-Sets!"),
    ]

    valid, errors = parse_product_rows(rows)

    assert [row.sku for row in valid] == ["A-1", "A-2", "A-3"]
    assert errors == [
        "item 4: category: 'Gift-Sets!' would be a new category, and its slug (gift-sets) is"
        " that of 'Gift Sets', a new category an earlier row names: name that one, or create the"
        " new category with a slug of its own first (admin or API)"
    ]


# --- decimal commas ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "expected"), [("1,50", "1.50"), ("1.50", "1.50"), (",5", "0.50")]
)
def test_a_row_of_a_file_separated_by_semicolons_takes_a_decimal_comma(
    price: str, expected: str
) -> None:
    row = FileRow(a_row(price=price), where="line 2", decimal_comma=True)

    assert parse_product_row(row).price == Decimal(expected)


@pytest.mark.parametrize("price", ["1.234,50", "1,234,50", "1,234.50"])
def test_a_row_of_a_file_separated_by_semicolons_refuses_a_thousands_separator(price: str) -> None:
    row = FileRow(a_row(price=price), where="line 2", decimal_comma=True)

    with pytest.raises(ValueError, match=r"^price: ") as refused:
        parse_product_row(row)

    assert str(refused.value) == (
        f"price: {price!r} is not a number (write 1,50 or 1.50, without a thousands separator)"
    )


@pytest.mark.parametrize("price", ["1.500", "12.500", "1.234.500"])
def test_a_dot_grouping_thousands_in_a_file_separated_by_semicolons_is_refused(
    price: str,
) -> None:
    row = FileRow(a_row(price=price), where="line 2", decimal_comma=True)

    with pytest.raises(ValueError, match=r"^price: ") as refused:
        parse_product_row(row)

    assert str(refused.value) == (
        f"price: {price!r} is ambiguous in a file separated by ';' (write"
        f" {price.replace('.', '')}, without a thousands separator, or a decimal comma: 1,50)"
    )


@pytest.mark.parametrize("price", ["1,50", "1,234.50"])
def test_a_decimal_comma_elsewhere_is_refused_with_a_dot_to_write(price: str) -> None:
    with pytest.raises(ValueError, match=r"^price: ") as refused:
        parse_product_row(FileRow(a_row(price=price), where="line 2"))

    assert str(refused.value) == (
        f"price: {price!r} is not a number (write the decimal point as a dot, 1.50, without a"
        " thousands separator)"
    )
