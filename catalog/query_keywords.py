"""The words of a query the keyword half of a search ranks by, and which of them tell rows apart.

``ts_rank_cd`` weighs every word of a query alike. In a honey shop ~80% of the products say
"honey", several times each, so for "honey for a sore throat" the rows saying honey most often
outranked the ones about throats, and the manuka came fifth. A word that more than
``COMMON_SHARE`` of the rows hold tells them apart little, so the keyword rank counts it for
less (``catalog.search_statements``). Left out altogether, it took the title's "honey" from
"Why honey crystallises", the best answer to "my honey has gone hard and grainy".

Which lexemes are that common comes from PostgreSQL's own statistics of the ``search_vector``
column (``pg_stats.most_common_elems``, sampled by ANALYZE, which autovacuum runs as a table
changes), read at most every ``COMMON_LEXEMES_TTL_SECONDS`` per process and table. A table never
analysed, or analysed empty, has no common words. The words' lexemes come from the server's own
stemmer, cached per process. Both reads happen on the search's side thread, while the request
thread embeds the query (``catalog.selectors``), so they add nothing to a search's latency.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection
from django.db.backends.base.base import BaseDatabaseWrapper

from beemanhoney.common.lru import ExpiringLruCache, LruCache
from catalog.models import SEARCH_CONFIG, lowered_without_accents
from catalog.spelling import spelling_corrections

WORD = re.compile(r"[^\W_]+")
MAX_QUERY_WORDS = 32
COMMON_SHARE = 0.5
COMMON_LEXEMES_TTL_SECONDS = 300.0

_lexemes: LruCache[tuple[str, ...]] = LruCache(size=50_000)
_common: ExpiringLruCache[frozenset[str]] = ExpiringLruCache(
    size=64, max_age=COMMON_LEXEMES_TTL_SECONDS
)


def query_words(text: str) -> list[str]:
    """Every word of ``text``, lower-cased and without accents, as full-text search reads them."""
    return WORD.findall(lowered_without_accents(text))[:MAX_QUERY_WORDS]


@dataclass(frozen=True)
class QueryKeywords:
    # The query's words but its stop words.
    words: tuple[str, ...] = ()
    # Those of them that not nearly every row holds: the words but those whose every lexeme more
    # than COMMON_SHARE of the rows hold, or all of them if that leaves none ("honey").
    telling: tuple[str, ...] = ()
    # Misspelt words of the query put right, each to the word meant (``catalog.spelling``).
    corrections: tuple[tuple[str, str], ...] = ()

    @property
    def common(self) -> tuple[str, ...]:
        return tuple(word for word in self.words if word not in self.telling)


def query_keywords(
    text: str,
    *,
    table: str,
    using: BaseDatabaseWrapper | None = None,
    correct_spelling: bool = False,
) -> QueryKeywords:
    """The keywords of ``text`` for ranking the rows of ``table``. ``using``: a connection
    other than this thread's own. ``correct_spelling``: misspelt words put right, to words of
    what a search of ``table`` reads (``catalog.spelling``)."""
    words = query_words(text)
    if not words:
        return QueryKeywords()
    db = using or connection
    lexemes = _word_lexemes(words, db)
    corrections = (
        spelling_corrections(words, lexemes, table=table, using=db) if correct_spelling else {}
    )
    if corrections:
        words = [corrections.get(word, word) for word in words]
        lexemes = _word_lexemes(words, db)
    common = common_lexemes(table, using=db)
    meaningful = tuple(word for word in words if lexemes[word])
    telling = tuple(word for word in meaningful if set(lexemes[word]) - common)
    return QueryKeywords(meaningful, telling or meaningful, tuple(corrections.items()))


def common_lexemes(table: str, *, using: BaseDatabaseWrapper | None = None) -> frozenset[str]:
    """The lexemes of ``table``'s ``search_vector`` that more than ``COMMON_SHARE`` of its rows
    hold, by its last ANALYZE; read again after ``COMMON_LEXEMES_TTL_SECONDS``."""
    return _common.get_or_make(table, lambda: _read_common_lexemes(table, using or connection))


def forget_common_lexemes() -> None:
    """Read the statistics again at the next search (after an ANALYZE, say)."""
    _common.clear()


def _read_common_lexemes(table: str, db: BaseDatabaseWrapper) -> frozenset[str]:
    # The frequencies are shares of the rows sampled; three summary values follow them, which
    # zip() leaves out. reltuples is 0 once a table has been analysed empty, while pg_stats
    # keeps what the last non-empty sample said.
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT s.most_common_elems::text::text[], s.most_common_elem_freqs"
            " FROM pg_stats s JOIN pg_class c ON c.oid = to_regclass(%s)"
            " WHERE s.schemaname = current_schema() AND s.tablename = %s"
            " AND s.attname = 'search_vector' AND NOT s.inherited AND c.reltuples > 0",
            [table, table],
        )
        row = cursor.fetchone()
    if row is None or row[0] is None:
        return frozenset()
    elements, shares = row
    return frozenset(
        lexeme for lexeme, share in zip(elements, shares, strict=False) if share > COMMON_SHARE
    )


def _word_lexemes(words: Sequence[str], db: BaseDatabaseWrapper) -> dict[str, tuple[str, ...]]:
    """Each word's lexemes (none for a stop word), by the search configuration's stemmer."""
    lexemes = {word: known for word in words if (known := _lexemes.get(word)) is not None}
    missing = sorted(set(words) - lexemes.keys())
    if missing:
        with db.cursor() as cursor:
            cursor.execute(
                "SELECT word, tsvector_to_array(to_tsvector(%s::regconfig, word))"
                " FROM unnest(%s::text[]) AS word",
                [SEARCH_CONFIG, missing],
            )
            for word, stemmed in cursor.fetchall():
                lexemes[word] = tuple(stemmed)
                _lexemes.put(word, lexemes[word])
    return lexemes
