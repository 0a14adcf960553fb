from dataclasses import dataclass
from decimal import Decimal

import pytest

from catalog.query_intent import (
    ProductOrder,
    QueryIntent,
    intent_carried_over,
    manuka_grade_mgo,
    ordered_by_intent,
    query_intent_read,
    query_subject,
)


@pytest.mark.parametrize(
    ("query", "intent"),
    [
        ("a gift under 10 pounds", QueryIntent("a gift", None, Decimal("9.99"))),
        ("honey cheaper than £8", QueryIntent("honey", None, Decimal("7.99"))),
        ("gift up to £25.50", QueryIntent("gift", None, Decimal("25.50"))),
        ("over $30 manuka", QueryIntent("manuka", Decimal("30.01"), None)),
        ("at least 15 quid on a hamper", QueryIntent("on a hamper", Decimal("15"), None)),
        ("gifts between £10 and £20", QueryIntent("gifts", Decimal("10"), Decimal("20"))),
        ("gifts between £20 and £10", QueryIntent("gifts", Decimal("10"), Decimal("20"))),
        ("gifts £30-£15", QueryIntent("gifts", Decimal("15"), Decimal("30"))),
        ("candles £5-£15", QueryIntent("candles", Decimal("5"), Decimal("15"))),
        ("gifts from £10 to £20 please", QueryIntent("gifts please", Decimal("10"), Decimal("20"))),
        ("jars under £20, or below £12", QueryIntent("jars , or", None, Decimal("11.99"))),
        (
            "a gift for mum around 25 pounds",
            QueryIntent("a gift for mum", Decimal("18.75"), Decimal("31.25")),
        ),
        ("about £10 candles", QueryIntent("candles", Decimal("7.50"), Decimal("12.50"))),
        ("manuka roughly $40", QueryIntent("manuka", Decimal("30"), Decimal("50"))),
        ("a hamper for £60 or so", QueryIntent("a hamper for", Decimal("45"), Decimal("75"))),
        ("a hamper, £60ish", QueryIntent("a hamper,", Decimal("45"), Decimal("75"))),
        ("jars ~£8", QueryIntent("jars", Decimal("6"), Decimal("10"))),
        ("around £20 but under £18", QueryIntent("but", Decimal("15"), Decimal("17.99"))),
        ("about £10-£20 gifts", QueryIntent("about gifts", Decimal("10"), Decimal("20"))),
        ("a hamper under £1,000 please", QueryIntent("a hamper please", None, Decimal("999.99"))),
        ("gifts from £1,000.50 up", QueryIntent("gifts up", Decimal("1000.50"), None)),
        ("anything below GBP 25?", QueryIntent("anything ?", None, Decimal("24.99"))),
        ("a treat under 99p", QueryIntent("a treat", None, Decimal("0.98"))),
        ("sweets up to 50 pence", QueryIntent("sweets", None, Decimal("0.50"))),
        ("candles, my budget is 40", QueryIntent("candles, my", None, Decimal("40"))),
        ("he's under 5, my budget is £15", QueryIntent("he's under 5, my", None, Decimal("15"))),
        ("a budget of 2,500 for favours", QueryIntent("a for favours", None, Decimal("2500"))),
        ("anything under a tenner?", QueryIntent("anything ?", None, Decimal("9.99"))),
        ("a gift about a fiver", QueryIntent("a gift", Decimal("3.75"), Decimal("6.25"))),
        # A currency's code ending in "p" is no pence.
        ("manuka under 15 GBP", QueryIntent("manuka", None, Decimal("14.99"))),
        ("jars over 20 gbp", QueryIntent("jars", Decimal("20.01"), None)),
        ("a treat under 99 p", QueryIntent("a treat", None, Decimal("0.98"))),
        # A negated bound is the opposite bound, not the bound it negates.
        ("a gift, nothing over £20 please", QueryIntent("a gift, please", None, Decimal("20"))),
        ("honey not more than £10", QueryIntent("honey", None, Decimal("10"))),
        ("not above £15 candles", QueryIntent("candles", None, Decimal("15"))),
        ("honey no less than £30", QueryIntent("honey", Decimal("30"), None)),
        ("not under £10 jars", QueryIntent("jars", Decimal("10"), None)),
        ("no more than 20 pounds on jars", QueryIntent("on jars", None, Decimal("20"))),
        # One currency serves both ends of a range.
        ("gift £10-20", QueryIntent("gift", Decimal("10"), Decimal("20"))),
        ("gift 10-20 pounds", QueryIntent("gift", Decimal("10"), Decimal("20"))),
        ("gifts between 10 and 20 pounds", QueryIntent("gifts", Decimal("10"), Decimal("20"))),
        ("gifts between £10 and 20", QueryIntent("gifts", Decimal("10"), Decimal("20"))),
        ("gifts £10 to 20", QueryIntent("gifts", Decimal("10"), Decimal("20"))),
        ("sweets 50-99p", QueryIntent("sweets", Decimal("0.50"), Decimal("0.99"))),
        # Bounds said after the amount.
        ("jars £12 or less", QueryIntent("jars", None, Decimal("12"))),
        ("jars £12 and under", QueryIntent("jars", None, Decimal("12"))),
        ("jars £12 max", QueryIntent("jars", None, Decimal("12"))),
        ("hampers £50 or more", QueryIntent("hampers", Decimal("50"), None)),
        ("hampers £50+", QueryIntent("hampers", Decimal("50"), None)),
        # A currency's sign after the figure, and a decimal comma.
        ("candles under 10€", QueryIntent("candles", None, Decimal("9.99"))),
        ("candles under 10 €", QueryIntent("candles", None, Decimal("9.99"))),
        ("under £5,50 sweets", QueryIntent("sweets", None, Decimal("5.49"))),
    ],
)
def test_a_price_said_with_a_currency_becomes_a_price_range_cut_from_the_text(
    query: str, intent: QueryIntent
) -> None:
    assert query_intent_read(query) == intent


@pytest.mark.parametrize(
    "query",
    [
        "honey for babies under 12 months",
        "pack of 10 under 2 kilos",
        "£20",
        "over 40 flavours",
        "about 500g of honey",
        "tell me about honey",
        "A present for my nephew, he's under 5",
        "a gift for a party of up to 12 people",
        "jars of 1,000 flowers",
        "kids 3 to 5, nothing sweet",
        "honey for 3-4 people",
    ],
)
def test_a_number_without_a_currency_or_a_bound_is_no_price(query: str) -> None:
    assert query_intent_read(query) == QueryIntent(query)


@pytest.mark.parametrize(
    "query",
    [
        "honey around £" + "9" * 27,
        "honey £" + "9" * 27 + "ish",
        "honey £" + "9" * 27 + " or so",
        "honey around £100000000000000000000000000000",
        "gifts under £1,000,000,000,000,000",
    ],
)
def test_a_figure_of_more_digits_than_a_price_has_is_no_price(query: str) -> None:
    assert query_intent_read(query) == QueryIntent(query)


def test_a_figure_of_twelve_digits_is_a_price() -> None:
    intent = query_intent_read("a hamper around £999,999,999,999")

    assert intent == QueryIntent(
        "a hamper", Decimal("749999999999.25"), Decimal("1249999999998.75")
    )


# Chat messages may be 4,000 characters. A figure starts where its number starts and is at most
# 12 digits, so each pattern tries a run of digits once, a few steps: from each of its digits,
# reading on to its end each time, 4,000 digits took 6.6 s.
@pytest.mark.parametrize(
    "query",
    [
        "1" * 4000,
        "under £" + "1" * 3993,
        "1" * 3987 + " pounds or so",
        "around £" + "9" * 3989 + "ish",
        "my budget is " + "5" * 3987,
        "1," * 2000,
    ],
)
def test_a_run_of_thousands_of_digits_is_no_price(query: str) -> None:
    intent = query_intent_read(query)

    assert (intent.text, intent.min_price, intent.max_price) == (query, None, None)


@pytest.mark.parametrize(
    "query", ["ref 12345678901234 pounds or so", "v1.234 pounds or so", "under £1,0000"]
)
def test_no_figure_is_read_from_inside_a_number(query: str) -> None:
    assert query_intent_read(query) == QueryIntent(query)


@pytest.mark.parametrize(
    ("query", "orders"),
    [
        ("the strongest most potent manuka", (ProductOrder.STRONGEST,)),
        ("mild manuka for kids", (ProductOrder.MILDEST,)),
        ("cheapest candles", (ProductOrder.CHEAPEST,)),
        ("most expensive hamper", (ProductOrder.PRICIEST,)),
        ("large jar of raw honey", (ProductOrder.LARGEST,)),
        ("mini jars for wedding favours", (ProductOrder.SMALLEST,)),
        ("cheap manuka in a big jar", (ProductOrder.BEST_VALUE,)),
        ("best value honey", (ProductOrder.BEST_VALUE,)),
        ("big or small, any honey", ()),
        ("small batch raw honey", ()),
        ("big flavour honey", ()),
        ("honey cheaper than £8", ()),
        ("strong cheap manuka", (ProductOrder.STRONGEST, ProductOrder.CHEAPEST)),
        ("cheap strong manuka", (ProductOrder.CHEAPEST, ProductOrder.STRONGEST)),
    ],
)
def test_order_words_are_read_and_kept_in_the_text(
    query: str, orders: tuple[ProductOrder, ...]
) -> None:
    intent = query_intent_read(query)

    assert intent.orders == orders
    assert orders == () or intent.text == query


@pytest.mark.parametrize(
    ("earlier", "later", "carried"),
    [
        ("what's your cheapest manuka?", "and the heather honey?", "cheapest"),
        ("manuka under £30", "and heather?", "under £30"),
        ("cheapest honey under £10", "and in stock?", "under £10 cheapest"),
        # An order or a price of its own replaces the earlier one, and only that one.
        ("cheapest honey under £10", "and the biggest?", "under £10"),
        ("cheapest honey under £10", "and over £20?", "cheapest"),
        ("cheapest honey under £10", "and the biggest over £20?", ""),
        # Carried as said, so they read as they did: "cheap" with "big" is best value.
        ("a cheap manuka in a big jar", "and heather?", "cheap big"),
        ("how long does delivery take?", "and to Ireland?", ""),
    ],
)
def test_a_later_question_carries_the_price_and_order_it_does_not_say_itself(
    earlier: str, later: str, carried: str
) -> None:
    assert intent_carried_over(earlier, later) == carried


def test_what_is_carried_reads_as_the_earlier_price_and_order() -> None:
    earlier = "a cheap manuka under £30 in a big jar"

    said = query_intent_read(earlier)
    carried = query_intent_read(intent_carried_over(earlier, "and heather?"))

    assert said.orders == (ProductOrder.BEST_VALUE,)
    assert (carried.orders, carried.max_price) == (said.orders, said.max_price)


@pytest.mark.parametrize(
    ("name", "mgo"),
    [
        ("Manuka Honey UMF 5+ 250g", 83),
        ("Manuka Honey UMF 20+ 250g", 829),
        ("Manuka Honey UMF 12+", 363.4),
        ("Manuka Honey UMF 30+", 1571),
        ("Manuka Honey MGO 100+ 500g", 100),
        ("Manuka Honey Lozenges (20)", None),
    ],
)
def test_manuka_grades_compare_on_one_methylglyoxal_scale(name: str, mgo: float | None) -> None:
    assert manuka_grade_mgo(name) == pytest.approx(mgo)


@dataclass
class Jar:
    name: str
    price: Decimal
    weight_grams: int
    category_id: int


def test_an_order_moves_only_the_best_matchs_category_among_their_own_places() -> None:
    hits = [
        Jar("Manuka UMF 10+", Decimal("30"), 250, 1),
        Jar("Manuka gift box", Decimal("50"), 600, 2),
        Jar("Manuka lozenges", Decimal("8"), 90, 1),
        Jar("Manuka UMF 20+", Decimal("89"), 250, 1),
        Jar("Manuka MGO 100+", Decimal("32"), 500, 1),
    ]

    ordered = ordered_by_intent(hits, lambda hit: hit, [ProductOrder.STRONGEST])

    assert [hit.name for hit in ordered] == [
        "Manuka UMF 20+",
        "Manuka gift box",
        "Manuka lozenges",
        "Manuka UMF 10+",
        "Manuka MGO 100+",
    ]


def test_an_order_given_the_hits_that_may_move_sorts_those_whatever_their_category() -> None:
    hits = [
        Jar("Heather raw", Decimal("12.95"), 340, 1),
        Jar("Clover raw", Decimal("8.50"), 500, 1),
        Jar("Heather creamed", Decimal("10.50"), 250, 2),
        Jar("Heather comb", Decimal("16.50"), 227, 3),
    ]

    ordered = ordered_by_intent(
        hits,
        lambda hit: hit,
        [ProductOrder.CHEAPEST],
        movable=lambda hit: hit.name.startswith("Heather"),
    )

    assert [hit.name for hit in ordered] == [
        "Heather creamed",
        "Clover raw",
        "Heather raw",
        "Heather comb",
    ]


def test_best_value_orders_by_price_per_kilo_and_ties_keep_relevance() -> None:
    hits = [
        Jar("a", Decimal("10"), 250, 1),
        Jar("b", Decimal("16"), 1000, 1),
        Jar("c", Decimal("8"), 500, 1),
        Jar("d", Decimal("5"), 0, 1),
        Jar("e", Decimal("4"), 250, 1),
    ]

    ordered = ordered_by_intent(hits, lambda hit: hit, [ProductOrder.BEST_VALUE])

    assert [hit.name for hit in ordered] == ["b", "c", "e", "d", "a"]


def test_without_an_order_or_a_product_for_the_best_match_nothing_moves() -> None:
    hits = [Jar("a", Decimal("10"), 250, 1), Jar("b", Decimal("1"), 250, 1)]

    assert ordered_by_intent(hits, lambda hit: hit, []) == hits
    assert ordered_by_intent(hits, lambda hit: None, [ProductOrder.CHEAPEST]) == hits
    assert ordered_by_intent([], lambda hit: hit, [ProductOrder.CHEAPEST]) == []


def test_the_order_said_first_sorts_first_and_the_next_breaks_its_ties() -> None:
    hits = [
        Jar("UMF 10+ 500g", Decimal("45"), 500, 1),
        Jar("UMF 20+ 250g", Decimal("89"), 250, 1),
        Jar("UMF 10+ 250g", Decimal("30"), 250, 1),
    ]

    strong_cheap = ordered_by_intent(
        hits, lambda hit: hit, [ProductOrder.STRONGEST, ProductOrder.CHEAPEST]
    )
    cheap_strong = ordered_by_intent(
        hits, lambda hit: hit, [ProductOrder.CHEAPEST, ProductOrder.STRONGEST]
    )

    assert [hit.name for hit in strong_cheap] == ["UMF 20+ 250g", "UMF 10+ 250g", "UMF 10+ 500g"]
    assert [hit.name for hit in cheap_strong] == ["UMF 10+ 250g", "UMF 10+ 500g", "UMF 20+ 250g"]


@pytest.mark.parametrize(
    ("query", "subject"),
    [
        ("the strongest manuka under £50", "the manuka"),
        ("cheap big jar of raw honey", "jar of raw honey"),
        ("beeswax candles", "beeswax candles"),
    ],
)
def test_a_query_s_subject_leaves_out_its_price_and_order_words(query: str, subject: str) -> None:
    assert query_subject(query) == subject
