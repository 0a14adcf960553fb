"""What a product query asks for besides its subject: a price range and an order.

Embeddings and full-text rank match what a query is about, not how it wants the matches
ordered: for "the strongest most potent manuka" the UMF 20+ came fifth of the manuka jars, and
"small gift under 10 pounds" led with a £49.95 gift box. So a search reads two things out of
the query's words first:

- **a price range** said with a currency: "under £10", "less than 20 pounds", "over $15",
  "nothing over £20", "£12 or less", "£50+", "between £10 and £20", "£10-£20" ("£10-20" and
  "10-20 pounds" too: one currency serves both ends), or a price to come near ("around £25",
  "about 20 pounds", "£30 or so": a quarter either side of it), or a budget ("my budget is 40",
  the one place a number without a currency is a price). Amounts may have thousands' commas
  ("£1,000") or a decimal comma ("£5,50"), be in pence ("99p") or be a banknote's name ("a
  fiver", "a tenner"). It narrows the search's
  price filters (never widens them) and is cut out of the text that is embedded and ranked. A
  number without a currency ("under 12 months") is not a price.
- **orders**: cheapest, biggest, smallest, strongest (manuka grade), mildest, best value. The
  words stay in the text. Among the results that share the best match's category (or that the
  query names: ``catalog.selectors._named_among``) and have what the order compares (a grade, a
  weight), the order decides which result takes which of their places; every other result keeps
  its place. "cheap" and "big" together ask for the lowest price per kilo.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from itertools import pairwise
from typing import Any, Protocol, TypeVar

PENNY = Decimal("0.01")

# 12, 12.50, 12,50 (a decimal comma: at most two digits after it), 1,000 or 1,250.99 (any other
# comma between thousands), with at most 12 digits before the point: more than any price has
# (catalog.models), so a longer number is no price (around £ and 30 digits overflowed Decimal's
# 28 digits). A figure starts where its number starts:
# tried from every digit of a long run, each pattern read on to the run's end from each one (a
# chat message of 4,000 digits took 6.6 s) and could take the run's tail for a price.
_FIGURE = r"(?<![\d,.])(?:\d{1,3}(?:,\d{3}){1,3}|\d{1,12})(?!\d|,\d{3})(?:[.,]\d{1,2}(?!\d))?"
# A banknote by its name: "under a tenner" is under £10.
_NOTES = {"fiver": Decimal(5), "tenner": Decimal(10)}
_AMOUNT = (
    rf"(?:(?:[£$€]|\b(?:gbp|eur|usd)\s?)\s?{_FIGURE}"
    rf"|{_FIGURE}\s?(?:[£$€]|(?:pounds?|quid|gbp|euros?|eur|dollars?|usd|bucks|pence|p)\b)"
    rf"|\b(?:a\s+)?(?:{'|'.join(_NOTES)})\b)"
)
_FIGURE_IN_AMOUNT = re.compile(_FIGURE)
# The unit right after the figure: "15 GBP" ends in a "p" too.
_PENCE = re.compile(r"\d\s?(?:pence|p)$", re.IGNORECASE)
# "around £25" is the band from a quarter below it to a quarter above it; so is "£25ish" or
# "£25 or so".
AROUND_BAND = Decimal("0.25")
_ROUGHLY = r"(?:\s*-?ish\b|\s+or\s+so\b)"


def _amount_value(amount: str) -> Decimal:
    """The price an amount says, in its currency's main unit: "£1,000" 1000, "99p" 0.99, "a
    fiver" 5."""
    if note := _NOTES.get(amount.split()[-1].lower()):
        return note
    figure = _FIGURE_IN_AMOUNT.search(amount)
    assert figure is not None  # the phrase's pattern matched one
    whole, comma, decimals = figure.group().rpartition(",")
    digits = f"{whole}.{decimals}" if comma and len(decimals) <= 2 else figure.group()
    value = Decimal(digits.replace(",", ""))
    return value / 100 if _PENCE.search(amount) else value


def _amounts(said: Sequence[str]) -> list[Decimal]:
    """The prices a phrase's amounts say. A figure without a currency is in the other amount's:
    "£10-20" is £10 to £20, "50-99p" 50p to 99p."""
    in_pence = any(_PENCE.search(amount) for amount in said)
    return [
        _amount_value(amount) / 100
        if in_pence and _FIGURE_IN_AMOUNT.fullmatch(amount)
        else _amount_value(amount)
        for amount in said
    ]


def _range(amounts: list[Decimal]) -> dict[str, Decimal]:
    # "between £20 and £10" is the range from £10 to £20.
    low, high = sorted(amounts)
    return {"min": low, "max": high}


def _below(amounts: list[Decimal]) -> dict[str, Decimal]:
    return {"max": amounts[0] - PENNY}


def _at_most(amounts: list[Decimal]) -> dict[str, Decimal]:
    return {"max": amounts[0]}


def _above(amounts: list[Decimal]) -> dict[str, Decimal]:
    return {"min": amounts[0] + PENNY}


def _at_least(amounts: list[Decimal]) -> dict[str, Decimal]:
    return {"min": amounts[0]}


def _around(amounts: list[Decimal]) -> dict[str, Decimal]:
    spread = (amounts[0] * AROUND_BAND).quantize(PENNY)
    return {"min": amounts[0] - spread, "max": amounts[0] + spread}


_BoundsOf = Callable[[list[Decimal]], dict[str, Decimal]]
_PRICE_PHRASES: tuple[tuple[re.Pattern[str], _BoundsOf], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), bounds_of)
    for pattern, bounds_of in (
        # A range needs one currency, at either end: "£10-20", "10-20 pounds".
        (rf"\bbetween\s+({_AMOUNT})\s+and\s+({_AMOUNT}|{_FIGURE}\b)", _range),
        (rf"\bbetween\s+({_FIGURE})\s+and\s+({_AMOUNT})", _range),
        (rf"\bfrom\s+({_AMOUNT})\s+to\s+({_AMOUNT}|{_FIGURE}\b)", _range),
        (rf"\bfrom\s+({_FIGURE})\s+to\s+({_AMOUNT})", _range),
        (rf"({_AMOUNT})\s*(?:-|\u2013|to)\s*({_AMOUNT}|{_FIGURE}\b)", _range),
        (rf"({_FIGURE})\s*(?:-|\u2013|to)\s*({_AMOUNT})", _range),
        (
            rf"(?:\b(?:around|about|roughly|approximately|approx\.?|circa)\s+|~\s?)({_AMOUNT})"
            rf"{_ROUGHLY}?",
            _around,
        ),
        (rf"({_AMOUNT}){_ROUGHLY}", _around),
        # Negated bounds before the bounds they negate: "nothing over £20" is at most £20.
        (
            rf"\b(?:not|nothing|no)\s+(?:over|above|more\s+than|dearer\s+than"
            rf"|more\s+expensive\s+than)\s+({_AMOUNT})",
            _at_most,
        ),
        (
            rf"\b(?:not|nothing|no)\s+(?:under|below|less\s+than|cheaper\s+than"
            rf"|less\s+expensive\s+than)\s+({_AMOUNT})",
            _at_least,
        ),
        # Bounds said after the amount: "£12 or less", "£12 max", "£50 and up", "£50+".
        (
            rf"({_AMOUNT})\s+(?:(?:or|and)\s+(?:less|under|below|lower|cheaper)"
            rf"|max(?:imum)?|tops|at\s+(?:the\s+)?most)\b",
            _at_most,
        ),
        (
            rf"({_AMOUNT})(?:\s+(?:(?:or|and)\s+(?:more|over|above|up(?:wards)?)"
            rf"|min(?:imum)?|at\s+least)\b|\s?\+)",
            _at_least,
        ),
        (rf"\b(?:under|below|less\s+than|cheaper\s+than)\s+({_AMOUNT})", _below),
        (
            rf"\b(?:up\s+to|at\s+most|max(?:imum)?|within)\s+({_AMOUNT})",
            _at_most,
        ),
        (rf"\b(?:over|above|more\s+than|dearer\s+than)\s+({_AMOUNT})", _above),
        (rf"\b(?:at\s+least|min(?:imum)?|from)\s+({_AMOUNT})", _at_least),
        # "my budget is 40": the word makes a bare number a price.
        (rf"\bbudget(?:\s+(?:is|of)|:)?\s+({_AMOUNT}|{_FIGURE}\b)", _at_most),
    )
)


class ProductOrder(StrEnum):
    CHEAPEST = "cheapest"
    PRICIEST = "priciest"
    LARGEST = "largest"
    SMALLEST = "smallest"
    STRONGEST = "strongest"
    MILDEST = "mildest"
    BEST_VALUE = "best_value"


_ORDER_WORDS: dict[ProductOrder, re.Pattern[str]] = {
    order: re.compile(rf"\b(?:{words})\b", re.IGNORECASE)
    for order, words in {
        ProductOrder.BEST_VALUE: r"best\s+value|good\s+value|great\s+value|value\s+for\s+money",
        ProductOrder.CHEAPEST: (
            r"cheap|cheaper|cheapest|budget|inexpensive|affordable|bargain|least\s+expensive"
            r"|low[\s-]cost|low[\s-]priced?|lowest[\s-]priced?"
        ),
        ProductOrder.PRICIEST: r"most\s+expensive|priciest|dearest|highest[\s-]priced?",
        ProductOrder.LARGEST: (
            r"big(?![\s-]flavou?r)|bigger|biggest|large|larger|largest|bulk|jumbo|huge"
            r"|family[\s-]sized?"
        ),
        ProductOrder.SMALLEST: (
            r"small(?![\s-](?:batch|producers?|farms?|scale|apiar\w*|beekeepers?))|smaller"
            r"|smallest|mini|tiny|travel[\s-]sized?"
        ),
        ProductOrder.STRONGEST: (
            r"strong|stronger|strongest|potent|most\s+potent|powerful|most\s+powerful"
            r"|high[\s-]grade|highest[\s-]grade|top[\s-]grade|high[\s-]strength"
            r"|highest[\s-]strength|maximum[\s-]strength|highest\s+(?:umf|mgo)"
        ),
        ProductOrder.MILDEST: (
            r"mild|milder|mildest|weakest|low[\s-]grade|lowest[\s-]grade|entry[\s-]level"
            r"|lowest[\s-]strength|lowest\s+(?:umf|mgo)"
        ),
    }.items()
}


@dataclass(frozen=True)
class QueryIntent:
    text: str
    """The query without its price phrases: what the search embeds and ranks by."""
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    orders: tuple[ProductOrder, ...] = ()


def query_intent_read(query: str) -> QueryIntent:
    phrases, text = _price_phrases(query)
    bounds: dict[str, Decimal] = {}
    for match, bounds_of in phrases:
        amounts = _amounts(match.groups())
        for bound, value in bounds_of(amounts).items():
            tighter = min if bound == "max" else max
            bounds[bound] = tighter(bounds.get(bound, value), max(value, Decimal(0)))
    text = " ".join(text.split()) or " ".join(query.split())
    return QueryIntent(
        text=text,
        min_price=bounds.get("min"),
        max_price=bounds.get("max"),
        orders=_orders(text),
    )


def _price_phrases(query: str) -> tuple[list[tuple[re.Match[str], _BoundsOf]], str]:
    """``query``'s price phrases, each with what reads its bounds, and the text left without
    them. Each pattern reads what the patterns before it left."""
    phrases: list[tuple[re.Match[str], _BoundsOf]] = []
    text = query
    for pattern, bounds_of in _PRICE_PHRASES:
        phrases += [(match, bounds_of) for match in pattern.finditer(text)]
        text = pattern.sub(" ", text)
    return phrases, text


def intent_words(query: str, *, prices: bool = True, orders: bool = True) -> str:
    """``query``'s price phrases and order words, as it says them."""
    phrases, text = _price_phrases(query)
    said = [match.group() for match, _ in phrases] if prices else []
    if orders:
        said += [match.group() for match in _order_words(text)]
    return " ".join(said)


def intent_carried_over(earlier: str, later: str) -> str:
    """The price phrases and order words of ``earlier`` that ``later`` does not replace with
    its own, as ``earlier`` says them: "cheapest" from "your cheapest manuka?" for "and the
    heather honey?", but nothing for "and the biggest?" (an order of its own)."""
    said_later = query_intent_read(later)
    return intent_words(
        earlier,
        prices=said_later.min_price is None and said_later.max_price is None,
        orders=not said_later.orders,
    )


def query_subject(query: str) -> str:
    """What ``query`` is about: its text without price phrases and order words."""
    text = query_intent_read(query).text
    for words in _ORDER_WORDS.values():
        text = words.sub(" ", text)
    return " ".join(text.split())


def _order_words(text: str) -> list[re.Match[str]]:
    """Every order word of ``text``, in the order said."""
    said = (match for words in _ORDER_WORDS.values() for match in words.finditer(text))
    return sorted(said, key=lambda match: match.start())


def _orders(text: str) -> tuple[ProductOrder, ...]:
    # Each order by where the query first says it: the first said sorts first.
    found = {
        order: match.start()
        for order, words in _ORDER_WORDS.items()
        if (match := words.search(text))
    }
    # "cheap ... big jar" and "best value" both ask for the lowest price per kilo.
    if ProductOrder.CHEAPEST in found and ProductOrder.LARGEST in found:
        found.setdefault(ProductOrder.BEST_VALUE, found[ProductOrder.CHEAPEST])
    if ProductOrder.BEST_VALUE in found:
        found.pop(ProductOrder.CHEAPEST, None)
        found.pop(ProductOrder.LARGEST, None)
    # Opposites cancel out: "big or small" orders by neither.
    for first, second in (
        (ProductOrder.CHEAPEST, ProductOrder.PRICIEST),
        (ProductOrder.LARGEST, ProductOrder.SMALLEST),
        (ProductOrder.STRONGEST, ProductOrder.MILDEST),
    ):
        if first in found and second in found:
            del found[first], found[second]
    return tuple(sorted(found, key=found.__getitem__))


# --- ordering results -------------------------------------------------------------------------

# UMF grade → the least methylglyoxal (mg/kg) it certifies, by the UMF Honey Association's chart;
# grades between are interpolated. MGO-graded and UMF-graded jars compare on this one scale.
_UMF_TO_MGO = ((0, 0), (5, 83), (10, 263), (15, 514), (20, 829), (25, 1200))
_UMF = re.compile(r"\bUMF\s*(\d+(?:\.\d+)?)\s*\+?", re.IGNORECASE)
_MGO = re.compile(r"\bMGO\s*(\d+)\s*\+?", re.IGNORECASE)


def manuka_grade_mgo(name: str) -> float | None:
    """The grade a product's name states (UMF 15+, MGO 100+), as mg/kg methylglyoxal."""
    if match := _MGO.search(name):
        return float(match.group(1))
    if not (match := _UMF.search(name)):
        return None
    umf = float(match.group(1))
    # The chart's segment holding the grade; past its end, the last segment's slope.
    (low, low_mgo), (high, high_mgo) = next(
        (pair for pair in pairwise(_UMF_TO_MGO) if umf <= pair[1][0]),
        _UMF_TO_MGO[-2:],
    )
    return low_mgo + (umf - low) * (high_mgo - low_mgo) / (high - low)


class OrderedProduct(Protocol):
    name: str
    price: Decimal
    weight_grams: int
    category_id: int


P = TypeVar("P", bound=OrderedProduct)
H = TypeVar("H")


def _price(product: OrderedProduct) -> float:
    return float(product.price)


def _weight(product: OrderedProduct) -> float | None:
    return float(product.weight_grams) if product.weight_grams > 0 else None


def _grade(product: OrderedProduct) -> float | None:
    return manuka_grade_mgo(product.name)


def _price_per_kilo(product: OrderedProduct) -> float | None:
    weight = _weight(product)
    return None if weight is None else float(product.price) * 1000 / weight


# What each order compares (None: the product has nothing to compare), and which way: 1 puts
# the least first, -1 the most.
_ORDER_MEASURES: dict[ProductOrder, tuple[Callable[[OrderedProduct], float | None], int]] = {
    ProductOrder.CHEAPEST: (_price, 1),
    ProductOrder.PRICIEST: (_price, -1),
    ProductOrder.LARGEST: (_weight, -1),
    ProductOrder.SMALLEST: (_weight, 1),
    ProductOrder.STRONGEST: (_grade, -1),
    ProductOrder.MILDEST: (_grade, 1),
    ProductOrder.BEST_VALUE: (_price_per_kilo, 1),
}


def _sort_key(product: OrderedProduct, orders: Sequence[ProductOrder]) -> tuple[float, ...] | None:
    """``product``'s key under ``orders``, least first; None if it lacks a value for one."""
    key = []
    for order in orders:
        measure, direction = _ORDER_MEASURES[order]
        value = measure(product)
        if value is None:
            return None
        key.append(direction * value)
    return tuple(key)


def ordered_by_intent(
    hits: Sequence[H],
    product_of: Callable[[H], P | None],
    orders: Sequence[ProductOrder],
    *,
    movable: Callable[[H], bool] | None = None,
) -> list[H]:
    """``hits`` (best match first) with ``orders`` applied among the ``movable`` ones
    (``reordered_in_best_category``)."""
    if not orders:
        return list(hits)
    return reordered_in_best_category(
        hits, product_of, lambda product: _sort_key(product, orders), movable=movable
    )


def reordered_in_best_category(
    hits: Sequence[H],
    product_of: Callable[[H], P | None],
    key: Callable[[P], Any],
    *,
    descending: bool = False,
    movable: Callable[[H], bool] | None = None,
) -> list[H]:
    """``hits`` (best match first) with the ``movable`` ones (by default, those whose product
    shares the best match's category) that have a ``key`` (not None) sorted by it among the
    places they held; relevance breaks ties. Every other hit keeps its place: a search's tail
    is less relevant, and sorting it in would put a cheap jar of anything first for
    "candles"."""
    ordered = list(hits)
    best = product_of(ordered[0]) if ordered else None
    if best is None:
        return ordered
    keyed: list[tuple[Any, int]] = []
    for place, hit in enumerate(ordered):
        product = product_of(hit)
        if product is None:
            continue
        if not (movable(hit) if movable else product.category_id == best.category_id):
            continue
        if (value := key(product)) is not None:
            keyed.append((value, place))
    places = [place for _, place in keyed]
    # A stable sort of hits in relevance order: ties keep it, in either direction.
    by_key = sorted(keyed, key=lambda item: item[0], reverse=descending)
    for place, (_, source) in zip(places, by_key, strict=True):
        ordered[place] = hits[source]
    return ordered
