"""Words that tell texts apart, crudely stemmed: what the offline assistant compares a question
with articles, paragraphs and products' descriptions by, beside their meaning."""

from __future__ import annotations

import re

WORD = re.compile(r"[a-z0-9]+")
# The shop's own words: in products' names, but telling neither products nor articles apart.
SHOP_WORDS = frozenset(WORD.findall("honey honeys bee bees beeman shop jar jars product products"))
GRAMMAR_WORDS = frozenset(
    WORD.findall(
        """a about after all also am an and any are as at be been being but by can could did do
    does doing for from get got had has have he her him his how i if in into is it its just like
    me might more most much my no not of on or our out please she should so some such than that
    the their them then there these they this those to too us very was we were what when where
    which who whom why will with would yes you your yours"""
    )
)
# Grammar and the shop's own words ("honey") do not tell articles apart.
STOP_WORDS = GRAMMAR_WORDS | SHOP_WORDS


def is_plural(word: str) -> bool:
    """Crudely: "wraps", "candles"; not "glass", "citrus", "basis" nor "gas"."""
    return word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 3


def stem(word: str) -> str:
    """A crude stem, enough to match "allergy" with "allergies" and "crystallised" with
    "crystallises": the plural dropped, then the first six letters."""
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif is_plural(word):
        word = word[:-1]
    return word[:6]


def stems(text: str) -> set[str]:
    words = WORD.findall(text.lower())
    return {stem(w) for w in words if w not in STOP_WORDS and len(w) > 2 and not w.isdigit()}
