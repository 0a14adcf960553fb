import csv
import io
import json
from decimal import Decimal

import pytest

from catalog.import_files import CatalogFileError, csv_lines, read_catalog_file
from catalog.product_rows import PRODUCT_COLUMNS, parse_product_rows

# parse_product_rows looks up the rows' categories.
pytestmark = pytest.mark.django_db

# --- read_catalog_file ------------------------------------------------------------------------


def test_a_csv_file_is_read_as_dicts_keyed_by_column() -> None:
    content = "sku,name,category,price,tags\nA-1,Clover Honey,Raw Honey,8.50,raw;mild\n"
    stream = io.BytesIO(content.encode())

    rows = read_catalog_file(stream, "catalog.CSV", columns=PRODUCT_COLUMNS)

    assert rows == [
        {
            "sku": "A-1",
            "name": "Clover Honey",
            "category": "Raw Honey",
            "price": "8.50",
            "tags": "raw;mild",
        }
    ]


def test_a_csv_file_with_a_byte_order_mark_is_read() -> None:
    content = "\ufeffsku,name,category,price\nA-1,Clover Honey,Raw Honey,8.50\n"
    stream = io.BytesIO(content.encode())

    rows = read_catalog_file(stream, "catalog.csv", columns=PRODUCT_COLUMNS)

    assert rows[0]["sku"] == "A-1"


def test_a_csv_file_without_a_required_column_is_refused() -> None:
    stream = io.BytesIO(b"sku,name,category\nA-1,Clover Honey,Raw Honey\n")

    with pytest.raises(CatalogFileError, match=r"^missing column\(s\): price$"):
        read_catalog_file(stream, "catalog.csv", columns=PRODUCT_COLUMNS)


def test_a_csv_file_with_an_unknown_column_is_refused() -> None:
    stream = io.BytesIO(b"sku,name,category,price,stok\nA-1,Clover Honey,Raw Honey,8.50,3\n")

    with pytest.raises(CatalogFileError, match=r'^unknown column\(s\): "stok" \(the columns: '):
        read_catalog_file(stream, "catalog.csv", columns=PRODUCT_COLUMNS)


def test_an_unknown_column_s_line_break_is_named_not_printed() -> None:
    stream = io.BytesIO(b'sku,name,category,price,"sto\nck"\nA-1,Clover Honey,Raw Honey,8.50,3\n')

    with pytest.raises(CatalogFileError) as refused:
        read_catalog_file(stream, "catalog.csv", columns=PRODUCT_COLUMNS)

    assert str(refused.value).startswith('unknown column(s): "sto\\nck" (the columns: ')
    assert "\n" not in str(refused.value)


def test_spaces_around_csv_column_names_are_ignored() -> None:
    stream = io.BytesIO(b"sku, name ,category,price\nA-1,Clover Honey,Raw Honey,8.50\n")

    rows = read_catalog_file(stream, "catalog.csv", columns=PRODUCT_COLUMNS)

    assert rows[0]["name"] == "Clover Honey"


def test_csv_column_names_are_read_whatever_their_case() -> None:
    stream = io.BytesIO(b"SKU,Name, Category ,PRICE\nA-1,Clover Honey,Raw Honey,8.50\n")

    rows = read_catalog_file(stream, "catalog.csv", columns=PRODUCT_COLUMNS)

    assert rows == [
        {"sku": "A-1", "name": "Clover Honey", "category": "Raw Honey", "price": "8.50"}
    ]


def test_csv_column_names_differing_only_in_case_are_a_repeated_column() -> None:
    stream = io.BytesIO(b"sku,name,category,price,Stock,stock\nA-1,Clover,Raw,8,3,3\n")

    with pytest.raises(CatalogFileError, match=r"^repeated column\(s\): stock$"):
        read_catalog_file(stream, "catalog.csv", columns=PRODUCT_COLUMNS)


@pytest.mark.parametrize("separator", [";", "\t"], ids=["semicolons", "tabs"])
def test_a_csv_file_separated_by_semicolons_or_tabs_is_read(separator: str) -> None:
    lines = [
        ["sku", "name", "category", "price", "tags"],
        ["A-1", "Clover Honey, set", "Raw Honey", "8.50", '"raw;mild"'],
    ]
    content = "".join(separator.join(line) + "\n" for line in lines)

    rows = read_catalog_file(io.BytesIO(content.encode()), "c.csv", columns=PRODUCT_COLUMNS)

    assert rows == [
        {
            "sku": "A-1",
            "name": "Clover Honey, set",
            "category": "Raw Honey",
            "price": "8.50",
            "tags": "raw;mild",
        }
    ]


def test_prices_of_a_file_separated_by_semicolons_may_have_a_decimal_comma() -> None:
    # As Excel saves "CSV" where the comma is the decimal point.
    content = "sku;name;category;price\nREVIEW-S1;Semi honey;Raw Honey;1,50\nA-2;B;C;2.25\n"

    valid, errors = parse_product_rows(
        read_catalog_file(io.BytesIO(content.encode()), "c.csv", columns=PRODUCT_COLUMNS)
    )

    assert ([row.price for row in valid], errors) == ([Decimal("1.50"), Decimal("2.25")], [])


@pytest.mark.parametrize("separator", [",", "\t"], ids=["commas", "tabs"])
def test_prices_of_a_file_separated_otherwise_may_not(separator: str) -> None:
    lines = [["sku", "name", "category", "price"], ["A-1", "Semi honey", "Raw Honey", '"1,50"']]
    content = "".join(separator.join(line) + "\n" for line in lines)

    _, errors = parse_product_rows(
        read_catalog_file(io.BytesIO(content.encode()), "c.csv", columns=PRODUCT_COLUMNS)
    )

    assert errors == [
        "line 2: price: '1,50' is not a number (write the decimal point as a dot, 1.50, without"
        " a thousands separator)"
    ]


@pytest.mark.parametrize("name", ["catalog.csv", "catalog.json"])
@pytest.mark.parametrize(
    "content", [b"", b"\xef\xbb\xbf", b"\n \r\n"], ids=["nothing", "a BOM", "blanks"]
)
def test_an_empty_file_is_refused_as_empty(name: str, content: bytes) -> None:
    with pytest.raises(CatalogFileError, match=r"^the file is empty$"):
        read_catalog_file(io.BytesIO(content), name, columns=PRODUCT_COLUMNS)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("A-1,Clover Honey,Raw Honey,8.50,3,extra", "more values than the header has columns"),
        ("A-1,Clover Honey,Raw Honey,8.50", "fewer values than the header has columns"),
    ],
)
def test_a_csv_row_that_does_not_fit_the_header_is_a_row_error(line: str, message: str) -> None:
    content = f"sku,name,category,price,stock\nA-2,Heather Honey,Raw Honey,9,4\n{line}\n"

    valid, errors = parse_product_rows(
        read_catalog_file(io.BytesIO(content.encode()), "c.csv", columns=PRODUCT_COLUMNS)
    )

    assert [row.sku for row in valid] == ["A-2"]
    assert errors == [f"line 3: {message}"]


def test_csv_errors_name_the_line_a_spreadsheet_shows_the_row_on() -> None:
    content = (
        "sku,name,category,price,description\n"
        "A-1,Clover Honey,Raw Honey,8,\n"
        "\n"
        'A-2,Heather Honey,Raw Honey,9,"Bold,\nbittersweet"\n'
        ",,,,\n"
        "A-3,Acacia Honey,Raw Honey,free,\n"
        "A-1,Clover Honey again,Raw Honey,8,\n"
    )

    valid, errors = parse_product_rows(
        read_catalog_file(io.BytesIO(content.encode()), "c.csv", columns=PRODUCT_COLUMNS)
    )

    assert [row.sku for row in valid] == ["A-1", "A-2"]
    assert errors == [
        "line 6: price: 'free' is not a number",
        "line 7: sku: A-1 repeats line 2",
    ]


def test_json_errors_name_the_item_of_the_list() -> None:
    row = {"sku": "A-1", "name": "Clover Honey", "category": "Raw Honey", "price": 8}
    document = [row, {}, {**row, "sku": "A-2", "price": "free"}]

    _, errors = parse_product_rows(
        read_catalog_file(
            io.BytesIO(json.dumps(document).encode()), "c.json", columns=PRODUCT_COLUMNS
        )
    )

    assert errors == ["item 3: price: 'free' is not a number"]


def test_a_csv_file_with_a_repeated_column_is_refused() -> None:
    stream = io.BytesIO(b"sku,name,category,price,stock,stock\nA-1,Clover Honey,Raw,8,3,\n")

    with pytest.raises(CatalogFileError, match=r"^repeated column\(s\): stock$"):
        read_catalog_file(stream, "catalog.csv", columns=PRODUCT_COLUMNS)


def test_a_spreadsheets_trailing_commas_are_ignored_while_their_cells_are_empty() -> None:
    content = (
        "sku,name,category,price,\n"
        "A-1,Clover Honey,Raw Honey,8,\n"
        "A-2,Heather Honey,Raw Honey,9,,\n"
        "A-3,Acacia Honey,Raw Honey,7\n"
        "A-4,Lime Honey,Raw Honey,7,oops\n"
        "A-5,Rape Honey,Raw Honey,7,,oops\n"
    )

    valid, errors = parse_product_rows(
        read_catalog_file(io.BytesIO(content.encode()), "c.csv", columns=PRODUCT_COLUMNS)
    )

    assert [row.sku for row in valid] == ["A-1", "A-2", "A-3"]
    assert valid[0].given == {"sku", "name", "category", "price"}
    assert errors == [
        "line 5: a value under a column without a name",
        "line 6: more values than the header has columns",
    ]


def test_csv_rows_of_empty_cells_are_skipped_as_blank_lines_are() -> None:
    content = (
        "sku,name,category,price,stock\n"
        "A-1,Clover Honey,Raw Honey,8,3\n"
        ",,,,\n"
        "\n"
        "A-2,Heather Honey,Raw Honey,9,4\n"
        " , ,,,\n"
        ",,,,,,\n"
        ",,\n"
    )

    valid, errors = parse_product_rows(
        read_catalog_file(io.BytesIO(content.encode()), "c.csv", columns=PRODUCT_COLUMNS)
    )

    assert [row.sku for row in valid] == ["A-1", "A-2"]
    assert errors == []


def test_a_csv_file_of_a_header_and_empty_cells_has_no_rows() -> None:
    stream = io.BytesIO(b"sku,name,category,price\n,,,\n,,,\n")

    with pytest.raises(CatalogFileError, match=r"^the file has no rows$"):
        read_catalog_file(stream, "catalog.csv", columns=PRODUCT_COLUMNS)


@pytest.mark.parametrize(
    ("content", "refusal"),
    [
        (
            'sku,name,category,price\nA-1,"Clover,Raw Honey,8.50\nA-2,Heather,Raw Honey,9\n',
            'line 2: a value opened with " is never closed, so the rest of the file is one value',
        ),
        (
            'sku,name,category,price\nA-1,"A lovely 12" dipper,Accessories,8.50\n',
            'line 2: a quoted value goes on after its closing " (a " inside a quoted value is'
            ' written twice: "12"" dipper")',
        ),
        (
            'sku;name;category;price\nA-1;Clover;Raw Honey;8,50\nA-2;"Heather" pot;Raw;9\n',
            'line 3: a quoted value goes on after its closing " (a " inside a quoted value is'
            ' written twice: "12"" dipper")',
        ),
    ],
    ids=["never closed", "text after the closing quote", "semicolons"],
)
def test_a_csv_file_quoted_wrongly_is_refused_with_the_line(content: str, refusal: str) -> None:
    stream = io.BytesIO(content.encode())

    with pytest.raises(CatalogFileError) as refused:
        read_catalog_file(stream, "catalog.csv", columns=PRODUCT_COLUMNS)

    assert str(refused.value) == refusal


def test_a_csv_value_quoted_over_lines_with_doubled_quotes_is_read_whole() -> None:
    content = (
        'sku,name,category,price,description\r\nA-1,Dipper,Tools,8,"A 12"" dipper\r\nof oak"\r\n'
    )

    rows = read_catalog_file(io.BytesIO(content.encode()), "catalog.csv", columns=PRODUCT_COLUMNS)

    assert [row["description"] for row in rows] == ['A 12" dipper\r\nof oak']


def test_a_csv_file_with_a_header_only_is_refused() -> None:
    stream = io.BytesIO(b"sku,name,category,price\n")

    with pytest.raises(CatalogFileError, match=r"^the file has no rows$"):
        read_catalog_file(stream, "catalog.csv", columns=PRODUCT_COLUMNS)


def test_a_json_file_is_read_as_a_list_of_objects() -> None:
    rows = [{"sku": "A-1", "name": "Clover Honey", "category": "Raw Honey", "price": 8.5}]
    stream = io.BytesIO(json.dumps(rows).encode())

    read = read_catalog_file(stream, "catalog.json", columns=PRODUCT_COLUMNS)

    assert read == rows


def test_empty_json_objects_are_skipped() -> None:
    row = {"sku": "A-1", "name": "Clover Honey", "category": "Raw Honey", "price": 8.5}
    document = [{}, row, {"sku": "", "name": None, "tags": []}, {}]
    stream = io.BytesIO(json.dumps(document).encode())

    read = read_catalog_file(stream, "catalog.json", columns=PRODUCT_COLUMNS)

    assert read == [row]


@pytest.mark.parametrize("document", ['{"sku": "A-1"}', '["A-1", "A-2"]', "42"])
def test_a_json_file_that_is_not_a_list_of_objects_is_refused(document: str) -> None:
    stream = io.BytesIO(document.encode())

    with pytest.raises(CatalogFileError, match=r"^a JSON file must be a list of objects$"):
        read_catalog_file(stream, "catalog.json", columns=PRODUCT_COLUMNS)


def test_a_file_with_broken_json_is_refused() -> None:
    stream = io.BytesIO(b'[{"sku": "A-1",')

    with pytest.raises(CatalogFileError, match=r"^invalid JSON: "):
        read_catalog_file(stream, "catalog.json", columns=PRODUCT_COLUMNS)


@pytest.mark.parametrize(
    "content",
    [
        b"sku,name,category,price\nA-1,Clover Honey,Raw Honey,8.50\n",
        b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\xb4\xa7",  # a spreadsheet's zip
    ],
)
def test_a_file_with_an_unknown_extension_is_refused(content: bytes) -> None:
    with pytest.raises(CatalogFileError, match=r"^the file name must end in \.csv or \.json$"):
        read_catalog_file(io.BytesIO(content), "catalog.xlsx", columns=PRODUCT_COLUMNS)


def test_a_json_object_giving_a_key_twice_is_refused() -> None:
    stream = io.BytesIO(b'[{"sku": "A-1", "name": "Clover", "price": "9.95", "price": "99.50"}]')

    with pytest.raises(CatalogFileError) as refused:
        read_catalog_file(stream, "catalog.json", columns=PRODUCT_COLUMNS)

    assert str(refused.value) == "invalid JSON: 'price' is given twice in one object"


def test_a_file_that_is_not_utf8_is_refused() -> None:
    content = "sku,name,category,price\nA-1,Crème Honey,Raw Honey,8.50\n"
    stream = io.BytesIO(content.encode("latin-1"))

    with pytest.raises(CatalogFileError, match=r"^the file is not UTF-8 text$"):
        read_catalog_file(stream, "catalog.csv", columns=PRODUCT_COLUMNS)


def test_a_csv_file_with_lone_carriage_returns_for_line_ends_is_read() -> None:
    stream = io.BytesIO(b"sku,name,category,price\rA-1,Clover Honey,Raw Honey,8.50\r")

    rows = read_catalog_file(stream, "catalog.csv", columns=PRODUCT_COLUMNS)

    assert rows == [
        {"sku": "A-1", "name": "Clover Honey", "category": "Raw Honey", "price": "8.50"}
    ]


# --- csv_lines --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "description",
    ["=x", "-- see label", "'-- see label", "'=x", "''=x", "'plain", "'"],
)
def test_a_value_csv_lines_writes_is_read_back_as_it_was(description: str) -> None:
    # The reader takes an apostrophe off before a formula's start, so a value stored with one
    # there needs another in the file.
    row = {"sku": "A-1", "name": "Clover", "category": "Raw", "price": "8.50"}
    content = "".join(csv_lines([{**row, "description": description}], PRODUCT_COLUMNS))

    rows = read_catalog_file(io.BytesIO(content.encode()), "catalog.csv", columns=PRODUCT_COLUMNS)

    assert rows[0]["description"] == description


# --- what a file can do to the reader ---------------------------------------------------------


def test_a_csv_value_over_128_kib_is_its_rows_error_and_the_other_rows_are_read() -> None:
    content = (
        "sku,name,category,price,description\n"
        f"A-1,Clover Honey,Raw Honey,8,{'x' * 140_000}\n"
        "A-2,Heather Honey,Raw Honey,9,Bold\n"
    )

    valid, errors = parse_product_rows(
        read_catalog_file(io.BytesIO(content.encode()), "c.csv", columns=PRODUCT_COLUMNS)
    )

    assert [row.sku for row in valid] == ["A-2"]
    assert errors == ["line 2: description: at most 10000 characters"]


def test_an_unclosed_quote_before_128_kib_of_rows_refuses_the_file_at_its_line() -> None:
    # The rows after it were one value of its row: with --skip-invalid they vanished.
    content = (
        "sku,name,category,price\n"
        "A-1,Clover Honey,Raw Honey,8\n"
        'A-2,"Heather Honey,Raw Honey,9\n' + "A-3,Acacia Honey,Raw Honey,7\n" * 5_000
    )

    with pytest.raises(CatalogFileError) as refused:
        read_catalog_file(io.BytesIO(content.encode()), "c.csv", columns=PRODUCT_COLUMNS)

    assert str(refused.value).startswith('line 3: a value opened with " is never closed')


def test_reading_a_csv_file_leaves_csvs_field_limit_as_it_was() -> None:
    before = csv.field_size_limit()
    content = f"sku,name,category,price,description\nA-1,Clover,Raw,8,{'x' * 140_000}\n"

    read_catalog_file(io.BytesIO(content.encode()), "c.csv", columns=PRODUCT_COLUMNS)

    assert csv.field_size_limit() == before


def test_a_json_number_of_thousands_of_digits_is_refused() -> None:
    stream = io.BytesIO(b'[{"sku": "A-1", "stock": ' + b"9" * 5_000 + b"}]")

    with pytest.raises(CatalogFileError, match=r"^invalid JSON: a number of more than \d+ digits$"):
        read_catalog_file(stream, "catalog.json", columns=PRODUCT_COLUMNS)


def test_json_nested_a_hundred_thousand_levels_deep_is_refused() -> None:
    stream = io.BytesIO(b"[" * 100_000 + b"]" * 100_000)

    with pytest.raises(
        CatalogFileError, match=r"^invalid JSON: lists or objects nested too deeply$"
    ):
        read_catalog_file(stream, "catalog.json", columns=PRODUCT_COLUMNS)


def test_a_json_value_nested_as_deep_as_json_reads_is_a_row_error() -> None:
    deep = b"[" * 900 + b"]" * 900
    stream = io.BytesIO(b'[{"sku": "A-1", "name": ' + deep + b', "category": "c", "price": 1}]')

    valid, errors = parse_product_rows(
        read_catalog_file(stream, "catalog.json", columns=PRODUCT_COLUMNS)
    )

    assert valid == []
    assert errors == ["item 1: name: must be text"]


def test_a_json_column_named_with_a_lone_surrogate_is_named_by_its_escape() -> None:
    # json.dumps writes "\ud800" as its escape, which json.loads reads back as a lone surrogate.
    stream = io.BytesIO(json.dumps([{"sku": "A-1", "\ud800": "x"}]).encode())
    rows = read_catalog_file(stream, "catalog.json", columns=PRODUCT_COLUMNS)

    _, errors = parse_product_rows(rows)

    assert errors[0].startswith('item 1: unknown column(s): "\\ud800" (the columns: ')
    # A message that can be printed or shown on a page: no lone surrogate left in it.
    assert not any(0xD800 <= ord(character) <= 0xDFFF for character in errors[0])
