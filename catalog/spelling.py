"""Misspelt words of a search, put right.

"lavendar honey" found no row by its telling word, so only the semantic half ranked, and the
model, reading the word as typed, put the Lavender-Infused Honey fifth. A query word is taken for
the one word of what is searched (``Searched``) nearest it in spelling when:

- it is at least ``MIN_LENGTH`` letters long (short words are too near too many others: "toast"
  is one letter from "roast");
- it is no English word (``english_words``, pyspellchecker's list of 160k): "smoked" is one
  letter from the Smoker, "handle" from a candle, "finger" from ginger, "clever" from clover;
- it shares no lexeme with the vocabulary's words (so "honeys" is not a misspelling of "honey");
- one word of the vocabulary, and only one, is fewest edits from it, and within ``max_edits`` (a
  letter added, dropped, changed, or two side by side swapped), and not by letters put before
  it ("unpasteurised" is no misspelt "pasteurised");
- and no searched row's text holds it at all (a word of a description is a real word of the
  shop).

A product search's vocabulary is the words of the products' names (``ProductNameWord``, recorded
as products are embedded); a help-centre search's is the words of the published articles'
titles and bodies, and the names' words too, so that "lavendar" in a help question is read as
"lavender", not as "calendar" two edits away.

The keyword half then ranks by the word meant, and the semantic half embeds the query with it
(``catalog.selectors``: a second embedding, for such queries only). What a word is taken for is
kept per process and table for ``VOCABULARY_TTL_SECONDS``, as are the vocabularies: only a word
that passes the first four tests costs a statement (the last), once a minute at most; at most
``MAX_SUSPECTS`` words of a query are looked at.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from importlib import resources

from django.db import connection
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg import sql

from beemanhoney.common.lru import ExpiringLruCache
from catalog.models import (
    SEARCH_CONFIG,
    WITHOUT_ACCENTS_SQL,
    KnowledgeArticle,
    Product,
    ProductNameWord,
    lowered_without_accents,
)

MIN_LENGTH = 6
MAX_SUSPECTS = 4
LETTERS = re.compile(r"[^\W\d_]+")
VOCABULARY_TTL_SECONDS = 60.0


@dataclass(frozen=True)
class Searched:
    """What a search of ``table`` corrects misspelt words to: the words of ``texts``, a statement
    of one text column (split on white space there, into letters here). ``rows``: a condition
    on ``table``; a word that such a row's text holds is a real word, never corrected."""

    table: str
    texts: sql.Composable
    rows: sql.Composable


_NAME_WORDS = sql.SQL("SELECT word FROM {}").format(sql.Identifier(ProductNameWord._meta.db_table))
# By the table searched.
SEARCHED = {
    searched.table: searched
    for searched in (
        Searched(Product._meta.db_table, _NAME_WORDS, sql.SQL("TRUE")),
        Searched(
            KnowledgeArticle._meta.db_table,
            sql.SQL(
                "SELECT regexp_split_to_table(lower(title || ' ' || body), '\\s+') FROM {}"
                " WHERE is_published UNION {}"
            ).format(sql.Identifier(KnowledgeArticle._meta.db_table), _NAME_WORDS),
            sql.SQL("is_published"),
        ),
    )
}


@dataclass(frozen=True)
class Vocabulary:
    words: frozenset[str]
    lexemes: frozenset[str]


# By table.
_vocabularies: ExpiringLruCache[Vocabulary] = ExpiringLruCache(
    size=len(SEARCHED), max_age=VOCABULARY_TTL_SECONDS
)
# (table, each query word looked at) -> the vocabulary's word it misspells, or None.
_corrections: ExpiringLruCache[str | None] = ExpiringLruCache(
    size=50_000, max_age=VOCABULARY_TTL_SECONDS
)


def max_edits(word: str) -> int:
    return 1 if len(word) < 8 else 2


def spelling_corrections(
    words: Sequence[str],
    lexemes: Mapping[str, tuple[str, ...]],
    *,
    table: str,
    using: BaseDatabaseWrapper | None = None,
) -> dict[str, str]:
    """Each of ``words`` (with their ``lexemes``) that is a misspelling of a word of a search
    of ``table`` (one of ``SEARCHED``), to that word. What each word is taken for is kept for
    ``VOCABULARY_TTL_SECONDS``."""
    searched = SEARCHED[table]
    db = using or connection
    english = english_words()
    suspects = [
        word
        for word in dict.fromkeys(words)
        if len(word) >= MIN_LENGTH and word.isalpha() and lexemes.get(word) and word not in english
    ]
    corrections = {}
    for word in suspects[:MAX_SUSPECTS]:
        meant = _corrections.get_or_make(
            (table, word), partial(_correction, word, lexemes[word], searched, db)
        )
        if meant is not None:
            corrections[word] = meant
    return corrections


def _correction(
    word: str, lexemes: tuple[str, ...], searched: Searched, db: BaseDatabaseWrapper
) -> str | None:
    vocabulary = spelling_vocabulary(table=searched.table, using=db)
    if set(lexemes) & vocabulary.lexemes:
        return None
    nearest = nearest_word(word, vocabulary.words)
    if nearest is None or is_prefixed(word, nearest) or _held_by_some_row(word, searched, db):
        return None
    return nearest


def is_prefixed(word: str, known: str) -> bool:
    """Whether ``word`` is ``known`` with two letters or more before it: another word made of it
    ("unpasteurised", missing from the English list, is not "pasteurised" misspelt), where a
    slip adds one letter at most."""
    return len(word) > len(known) + 1 and word.endswith(known)


@lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """pyspellchecker's English words (lower-cased), once per process."""
    packed = resources.files("spellchecker").joinpath("resources", "en.json.gz").read_bytes()
    return frozenset(json.loads(gzip.decompress(packed)))


def spelling_corrected(text: str, corrections: Sequence[tuple[str, str]]) -> str:
    """``text`` with each misspelt word of ``corrections`` (lower-cased) put right."""
    meant = dict(corrections)
    return LETTERS.sub(
        lambda word: meant.get(lowered_without_accents(word.group()), word.group()), text
    )


def nearest_word(word: str, vocabulary: frozenset[str]) -> str | None:
    """The one word of ``vocabulary`` fewest edits from ``word`` (within ``max_edits``), or
    None if none is, or two are equally near."""
    most = max_edits(word)
    best: list[str] = []
    best_edits = most + 1
    for known in vocabulary:
        if abs(len(known) - len(word)) > most:
            continue
        edits = edit_distance(word, known, most=most)
        if edits < best_edits:
            best, best_edits = [known], edits
        elif edits == best_edits <= most:
            best.append(known)
    return best[0] if len(best) == 1 and best_edits > 0 else None


def edit_distance(a: str, b: str, *, most: int) -> int:
    """Letters added, dropped, changed or swapped with a neighbour to make ``b`` of ``a`` (the
    optimal string alignment distance); ``most + 1`` once it is known to exceed ``most``."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > most:
            return most + 1
        previous2, previous = previous, current
    return min(previous[-1], most + 1)


def spelling_vocabulary(*, table: str, using: BaseDatabaseWrapper | None = None) -> Vocabulary:
    """The words a search of ``table`` corrects to and their lexemes (``SEARCHED``), read again
    after ``VOCABULARY_TTL_SECONDS``."""
    return _vocabularies.get_or_make(
        table, lambda: _read_vocabulary(SEARCHED[table], using or connection)
    )


def forget_vocabularies() -> None:
    """Read the vocabularies again at the next search, and look at every word afresh."""
    _vocabularies.clear()
    _corrections.clear()


def _read_vocabulary(searched: Searched, db: BaseDatabaseWrapper) -> Vocabulary:
    with db.cursor() as cursor:
        # Split on spaces only ("chilli-infused", "(pair)", "jar?"): the words are taken here.
        # Without accents, as the search columns and the query's words are.
        cursor.execute(
            sql.SQL(
                "SELECT token, tsvector_to_array(to_tsvector(%s::regconfig, token))"
                " FROM (SELECT {} FROM ({}) AS texts (raw)) AS tokens (token) WHERE token <> ''"
            ).format(sql.SQL(WITHOUT_ACCENTS_SQL.format("raw")), searched.texts),
            [SEARCH_CONFIG],
        )
        rows = cursor.fetchall()
    words = frozenset(word for token, _ in rows for word in LETTERS.findall(token))
    return Vocabulary(words, frozenset(lexeme for _, lexemes in rows for lexeme in lexemes))


def _held_by_some_row(word: str, searched: Searched, db: BaseDatabaseWrapper) -> bool:
    with db.cursor() as cursor:
        cursor.execute(
            sql.SQL(
                "SELECT EXISTS (SELECT 1 FROM {} WHERE {}"
                " AND search_vector @@ plainto_tsquery(%s::regconfig, %s))"
            ).format(sql.Identifier(searched.table), searched.rows),
            [SEARCH_CONFIG, word],
        )
        row = cursor.fetchone()
    return bool(row and row[0])
