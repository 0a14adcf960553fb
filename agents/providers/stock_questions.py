"""Words asking whether a product is in stock, sold out or coming back: read by the router (no
product's name holds them, so "is the UMF 20+ sold out?" names the UMF 20+) and by the offline
sales agent (which searches without them and says when the product asked about is sold out)."""

from __future__ import annotations

import re

IN_STOCK = re.compile(r"\b(?:in stock|available|availability|ship (?:now|today))\b", re.IGNORECASE)
# Asking when a product will be had again: the shop keeps no restock dates to tell.
BACK_IN_STOCK = re.compile(
    r"\b(?:when|restock(?:ed|ing)?|(?:be|come|coming) back)\b", re.IGNORECASE
)
SOLD_OUT = re.compile(r"\b(?:sold out|out of stock|restock(?:ed|ing)?)\b", re.IGNORECASE)
# Searched for with them, "is the Manuka UMF 15+ in stock?" was no exact match for the UMF 15+,
# and the UMF 10+ came first.
STOCK_WORDS = re.compile(
    rf"{IN_STOCK.pattern}|{BACK_IN_STOCK.pattern}|{SOLD_OUT.pattern}"
    r"|\b(?:stock|back|soon|again|yet|(?:getting|get|have) (?:any |some )?more)\b",
    re.IGNORECASE,
)
_STOCK_OR_BACK = re.compile(r"\b(?:stock|back)\b", re.IGNORECASE)


def asks_about_stock(question: str) -> bool:
    """Whether ``question`` asks if something is in stock, sold out or coming back ("will the
    lavender honey be back soon?")."""
    return bool(
        IN_STOCK.search(question)
        or SOLD_OUT.search(question)
        or (BACK_IN_STOCK.search(question) and _STOCK_OR_BACK.search(question))
    )


def without_stock_words(text: str) -> str:
    return " ".join(STOCK_WORDS.sub(" ", text).split())
