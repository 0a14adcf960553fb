import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import KnowledgeArticle, Product, ProductNameWord
from catalog.query_keywords import query_keywords
from catalog.selectors import ProductFilters, product_named_in, product_search, products_are_named
from catalog.services import embeddings_refresh, product_name_words_record
from catalog.spelling import (
    edit_distance,
    forget_vocabularies,
    nearest_word,
    spelling_corrected,
    spelling_corrections,
)
from catalog.tasks import prune_product_name_words
from tests.catalog.factories import KnowledgeArticleFactory, ProductFactory

pytestmark = pytest.mark.django_db

PRODUCTS = Product._meta.db_table
ARTICLES = KnowledgeArticle._meta.db_table


def _corrections(text: str, *, table: str = PRODUCTS) -> dict[str, str]:
    return dict(query_keywords(text, table=table, correct_spelling=True).corrections)


def _named(*names: str, **fields: str) -> list[Product]:
    """Products of these names, their names' words recorded as embedding them would."""
    products = [ProductFactory.create(name=name, **fields) for name in names]
    product_name_words_record(ids=[product.pk for product in products])
    return products


def test_embedding_products_records_the_words_of_their_names() -> None:
    ProductFactory.create(name="Lavender-Infused Honey 340g")
    ProductFactory.create(name="Cut Comb Honey")

    embeddings_refresh(kind="products")

    assert set(ProductNameWord.objects.values_list("word", flat=True)) == {
        "lavender-infused",
        "honey",
        "340g",
        "cut",
        "comb",
    }


def test_recording_a_product_s_words_again_adds_only_its_new_ones() -> None:
    (product,) = _named("Heather Honey")
    product.name = "Heather Honey Gift"
    product.save(update_fields=["name"])

    product_name_words_record(ids=[product.pk])

    assert sorted(ProductNameWord.objects.values_list("word", flat=True)) == [
        "gift",
        "heather",
        "honey",
    ]


@pytest.mark.parametrize(
    ("a", "b", "edits"),
    [
        ("lavendar", "lavender", 1),  # a letter changed
        ("chesnut", "chestnut", 1),  # one left out
        ("acaica", "acacia", 1),  # two side by side swapped
        ("cinammon", "cinnamon", 2),
        ("cheapest", "cheese", 3),
    ],
)
def test_edit_distance_counts_letters_added_dropped_changed_or_swapped(
    a: str, b: str, edits: int
) -> None:
    assert edit_distance(a, b, most=5) == edits
    assert edit_distance(a, b, most=edits - 1) == edits  # past the bound: the bound + 1


@pytest.mark.parametrize(
    ("word", "vocabulary", "nearest"),
    [
        ("lavendar", {"lavender", "honey"}, "lavender"),
        ("cinammon", {"cinnamon", "lemon"}, "cinnamon"),
        # Three edits: past the two a word of eight letters may have.
        ("cheapest", {"cheese", "chestnut"}, None),
        # One edit from each of two words: which was meant is not known.
        ("hazels", {"hazel", "hazes"}, None),
        ("honey", {"honey"}, None),
    ],
)
def test_nearest_word_is_the_one_word_fewest_edits_away(
    word: str, vocabulary: set[str], nearest: str | None
) -> None:
    assert nearest_word(word, frozenset(vocabulary)) == nearest


def test_a_misspelt_word_of_a_product_name_is_corrected_to_it() -> None:
    _named("Lavender-Infused Honey 340g")

    assert _corrections("lavendar honey") == {"lavendar": "lavender"}


def test_a_misspelt_word_of_a_name_with_accents_is_corrected_to_it_without_them() -> None:
    (pohutukawa,) = _named("P\u014dhutukawa Honey")
    _named("Heather Honey")

    assert _corrections("pohutakawa honey") == {"pohutakawa": "pohutukawa"}
    assert _corrections("p\u014dhutakawa honey") == {"pohutakawa": "pohutukawa"}
    assert spelling_corrected("P\u014dhutakawa Honey", [("pohutakawa", "pohutukawa")]) == (
        "pohutukawa Honey"
    )
    assert product_named_in(text="is the pohutakawa honey runny?") == pohutukawa


@pytest.mark.parametrize(
    "query",
    [
        "hony",  # too short to tell from other words
        "lavenders",  # the same lexeme as the name's word
        "lavishly",  # more edits from every name's word than it may have
    ],
)
def test_a_word_that_is_not_a_misspelling_of_a_name_s_word_is_left(query: str) -> None:
    _named("Lavender-Infused Honey 340g")

    assert _corrections(query) == {}


def test_a_word_some_product_s_text_holds_is_a_real_word_of_the_shop_and_left() -> None:
    _named("Lavender-Infused Honey 340g")
    _named("Garden Bundle", description="Seeds of lavandin and thyme.")

    assert _corrections("lavandin honey") == {}
    assert spelling_corrections(["lavandin"], {"lavandin": ("lavandin",)}, table=PRODUCTS) == {}


def test_the_corrected_query_keeps_every_other_word_as_typed() -> None:
    assert spelling_corrected("Lavendar Honey, please", [("lavendar", "lavender")]) == (
        "lavender Honey, please"
    )


def test_a_query_without_a_suspect_word_costs_no_statement() -> None:
    _named("Lavender-Infused Honey 340g")
    _corrections("a lovely honey")  # the words' lexemes and the names' words read once

    with CaptureQueriesContext(connection) as statements:
        assert _corrections("a lovely honey") == {}

    assert len(statements) == 0


def test_a_misspelt_name_still_names_its_product_for_the_assistant() -> None:
    lavender, _ = _named("Lavender-Infused Honey 340g", "Heather Raw Honey 340g")

    assert product_named_in(text="is the lavendar honey runny?") == lavender
    assert products_are_named(text="what about the lavendar honey?")


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("smoked honey", "Beekeeping Smoker"),
        ("a dipper with a long handle", "Beeswax Pillar Candle"),
        ("finger food honey", "Ginger Honey"),
        ("a clever gift", "Clover Honey"),
    ],
)
def test_an_english_word_is_never_taken_for_a_name_s_word(query: str, name: str) -> None:
    _named(name)

    assert _corrections(query) == {}


def test_at_most_a_few_words_of_a_query_are_looked_at() -> None:
    _named("Lavender Vanilla Chestnut Heather Buckwheat Honey")

    corrected = _corrections("lavendar vanila chesnut heathar buckweat honey")

    assert len(corrected) == 4
    assert corrected["lavendar"] == "lavender"


def test_the_daily_prune_forgets_the_words_of_renamed_and_deleted_products() -> None:
    _, renamed, deleted = _named("Lavender Honey", "Heather Honey", "Chestnut Honey")
    Product.objects.filter(pk=renamed.pk).update(name="Acacia Honey")
    deleted.delete()
    product_name_words_record(ids=[renamed.pk])  # as its embedding after the rename would

    prune_product_name_words.apply().get()

    assert set(ProductNameWord.objects.values_list("word", flat=True)) == {
        "lavender",
        "acacia",
        "honey",
    }
    forget_vocabularies()
    assert _corrections("chesnut honey") == {}  # no longer a word of the shop's names


# --- help questions ----------------------------------------------------------------------------


def _returns_article() -> KnowledgeArticle:
    return KnowledgeArticleFactory.create(
        title="Our returns policy", body="Return any unopened item within 30 days."
    )


def test_a_misspelt_word_of_a_published_article_is_corrected_to_it() -> None:
    _returns_article()

    assert _corrections("can I retrun an opened jar?", table=ARTICLES) == {"retrun": "return"}


def test_a_word_only_an_unpublished_article_holds_is_no_correction() -> None:
    KnowledgeArticleFactory.create(
        title="Taking propolis", body="A few drops of propolis a day.", is_published=False
    )

    assert _corrections("how do I take proplis?", table=ARTICLES) == {}


def test_a_help_question_s_misspelt_product_name_is_read_as_the_name_s_word() -> None:
    _named("Lavender-Infused Honey 340g")
    # Two edits from "lavendar", where the name's "lavender" is one.
    KnowledgeArticleFactory.create(title="Christmas", body="Mark the calendar: order by the 18th.")

    assert _corrections("is the lavendar honey runny?", table=ARTICLES) == {"lavendar": "lavender"}


def test_a_word_made_of_another_with_a_prefix_is_left() -> None:
    KnowledgeArticleFactory.create(
        title="Raw honey", body="Most supermarket honey is pasteurised; ours is raw."
    )

    assert _corrections("is raw honey unpasteurised?", table=ARTICLES) == {}
    assert _corrections("is raw honey pasteurissed?", table=ARTICLES) == {
        "pasteurissed": "pasteurised"
    }


def test_an_english_word_of_a_help_question_is_left() -> None:
    KnowledgeArticleFactory.create(
        title="Beeswax candle safety", body="Never leave a burning candle unattended."
    )

    assert _corrections("how should I handle a candle?", table=ARTICLES) == {}


def test_a_product_search_never_corrects_to_an_article_s_word() -> None:
    _returns_article()

    assert _corrections("retrun", table=PRODUCTS) == {}


def test_a_misspelt_help_question_seen_before_costs_no_statement() -> None:
    _returns_article()
    _corrections("can I retrun it?", table=ARTICLES)  # the words and the vocabulary read once

    with CaptureQueriesContext(connection) as statements:
        assert _corrections("can I retrun it?", table=ARTICLES) == {"retrun": "return"}

    assert len(statements) == 0


# --- on the demo shop --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "sku"),
    [
        # Places before the correction: 5th, 7th, 3rd and 3rd.
        ("lavendar honey", "BH-INF-003"),
        ("vanila honey", "BH-INF-007"),
        ("chesnut honey", "BH-RAW-008"),
        ("cinammon creamed honey", "BH-CRM-002"),
    ],
)
def test_a_misspelt_product_is_found_first(demo_shop: None, query: str, sku: str) -> None:
    hits = product_search(query=query, filters=ProductFilters(), limit=5)

    assert hits[0].item.sku == sku
