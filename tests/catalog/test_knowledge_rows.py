import pytest

from catalog.knowledge_rows import ArticleRow, parse_article_row, parse_article_rows


def a_row(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "slug": "storing-honey",
        "title": "How to store honey",
        "topic": "storage",
        "body": "Keep it in a cupboard, lid on.",
        "is_published": "true",
    }
    row.update(overrides)
    return row


def test_a_valid_row_becomes_a_typed_article_row() -> None:
    assert parse_article_row(a_row()) == ArticleRow(
        slug="storing-honey",
        title="How to store honey",
        topic="storage",
        body="Keep it in a cupboard, lid on.",
        is_published=True,
    )


def test_a_row_without_a_slug_takes_one_made_from_its_title() -> None:
    row = a_row(title="Honey & babies: under 12 months?")
    del row["slug"]

    parsed = parse_article_row(row)

    assert parsed.slug == "honey-babies-under-12-months"
    assert "slug" not in parsed.given


def test_a_row_without_is_published_is_published_and_records_it_was_not_given() -> None:
    row = a_row()
    del row["is_published"]

    parsed = parse_article_row(row)

    assert parsed.is_published is True
    assert parsed.given == frozenset({"slug", "title", "topic", "body"})


@pytest.mark.parametrize(
    ("value", "published"),
    [
        *[("true", True), ("Yes", True), ("1", True), ("", True), (True, True)],
        *[("false", False), ("NO", False), ("0", False), (False, False)],
    ],
)
def test_is_published_reads_what_a_spreadsheet_or_json_writes(
    value: object, published: bool
) -> None:
    assert parse_article_row(a_row(is_published=value)).is_published is published


def test_a_topic_is_read_whatever_its_case() -> None:
    assert parse_article_row(a_row(topic=" Shipping ")).topic == "shipping"


def test_every_problem_of_a_row_is_reported_at_once() -> None:
    row = a_row(slug="not a slug", topic="recipes", is_published="maybe", body="", colour="red")

    with pytest.raises(ValueError, match=r"^unknown column") as excinfo:
        parse_article_row(row)

    assert str(excinfo.value) == (
        'unknown column(s): "colour" (the columns: slug, title, topic, body, is_published); '
        "body: required; "
        "slug: 'not a slug' may hold only letters, digits, - and _; "
        "topic: 'recipes' is not one of shipping, returns, storage, health, beekeeping, orders,"
        " products; "
        "is_published: 'maybe' is not one of true, false, yes, no, 1, 0"
    )


def test_a_title_longer_than_its_field_is_rejected_not_cut() -> None:
    with pytest.raises(ValueError, match=r"^title: at most 200 characters$"):
        parse_article_row(a_row(title="h" * 201))


def test_a_body_of_up_to_50000_characters_is_kept() -> None:
    parsed = parse_article_row(a_row(body="b" * 50_000))

    assert len(parsed.body) == 50_000


def test_a_body_over_50000_characters_is_rejected_not_cut() -> None:
    with pytest.raises(ValueError, match=r"^body: at most 50000 characters$"):
        parse_article_row(a_row(body="b" * 50_001))


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("title", {"en": "Storing honey"}, "title: must be text"),
        ("body", ["Keep it", "in a cupboard"], "body: must be text"),
        ("topic", True, "topic: must be text"),
        ("is_published", {"value": True}, "is_published: must be a number or text"),
    ],
)
def test_a_json_value_of_the_wrong_type_is_rejected(
    column: str, value: object, message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        parse_article_row(a_row(**{column: value}))


def test_a_json_number_for_is_published_is_read_as_a_spreadsheet_writes_it() -> None:
    assert parse_article_row(a_row(is_published=0)).is_published is False


def test_a_title_with_nothing_to_make_a_slug_of_needs_a_slug() -> None:
    row = a_row(title="???")
    del row["slug"]

    with pytest.raises(ValueError, match=r"^slug: the title has no ASCII letters or digits"):
        parse_article_row(row)


def test_a_slug_repeated_in_the_file_is_reported_with_both_item_numbers() -> None:
    second = a_row(title="How to store honey")
    del second["slug"]

    valid, errors = parse_article_rows([a_row(), second, a_row(slug="")])

    assert [row.slug for row in valid] == ["storing-honey", "how-to-store-honey"]
    assert errors == ["item 3: slug: how-to-store-honey repeats item 2"]


@pytest.mark.parametrize("column", ["title", "body"])
def test_a_lone_surrogate_is_rejected_as_a_nul_character_is(column: str) -> None:
    row = a_row(**{column: "Storing \ud800honey"})

    with pytest.raises(ValueError, match=rf"^{column}: contains a lone surrogate \(JSON's") as e:
        parse_article_row(row)

    assert str(e.value) == (
        f"{column}: contains a lone surrogate (JSON's \\ud800 to \\udfff), which is no character"
    )


def test_a_slug_made_from_a_title_is_cut_to_its_field_as_the_api_cuts_one() -> None:
    # slugify writes each "\ufb03" as "ffi": 199 characters of title make a slug of 249.
    row = a_row(title="Honey \ufb03 " * 25)
    del row["slug"]

    parsed = parse_article_row(row)

    assert parsed.slug == "honey-ffi-" * 21 + "honey-ffi"  # 220 characters, less the "-"
