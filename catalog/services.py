"""Every write to the catalog: products, articles, imports and embeddings."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Container, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property, partial
from itertools import chain, count, islice
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Count, ForeignKey, Model, Q, QuerySet
from django.db.models.expressions import Combinable
from django.db.models.functions import Length
from django.utils import timezone
from pgvector.django import HnswIndex
from psycopg import sql
from psycopg.errors import DeadlockDetected

from beemanhoney.common.exceptions import DeletedMeanwhile
from beemanhoney.common.models import max_length_of
from catalog.embeddings import (
    EmbeddingBackend,
    current_model_name,
    embedding_refused,
    get_embedding_backend,
    text_hash,
)
from catalog.import_files import cell
from catalog.knowledge_rows import ArticleRow, parse_article_rows
from catalog.models import (
    EMBEDDING_DIMENSIONS,
    Category,
    KnowledgeArticle,
    KnowledgePassage,
    Product,
    ProductNameWord,
    article_passages,
    slug_of,
)
from catalog.product_rows import (
    ProductRow,
    existing_categories,
    is_new_category,
    keeps_what_only_stored_products_may,
    parse_product_rows,
)
from catalog.query_keywords import forget_common_lexemes
from catalog.search_statements import forget_few_rows
from catalog.selectors import (
    categories_named,
    embedding_is_current,
    embeddings_left_stale,
    stored_passage_vectors,
)

logger = logging.getLogger(__name__)
R = TypeVar("R", ProductRow, ArticleRow)
E = TypeVar("E", Product, KnowledgeArticle)
# ``on_progress(done, total)``: a long operation's rows done so far, for a progress bar.
Progress = Callable[[int, int], None]
# A row that carries an embedding (``catalog.models.Embedded``), as a type that has its fields.
EmbeddedRow = Product | KnowledgeArticle

EMBEDDED_MODELS: dict[str, type[EmbeddedRow]] = {
    "products": Product,
    "knowledge": KnowledgeArticle,
}
# Stale rows handed to the model per call. The model sorts a call's texts by their length in
# tokens (``LocalEmbeddingBackend.embed_documents``), so calls of 64 rows pad more and encode
# slower (docs/BENCHMARKS.md, "Backfill").
ENCODE_SLICE_ROWS = 1024
# Rows per queued embedding task: a large import or re-embed becomes tasks that workers share,
# each well inside the task time limit (~7 s of encoding at the 72 rows/s measured here).
EMBED_TASK_ROWS = 500
# New rows an import inserts per statement.
IMPORT_INSERT_BATCH_ROWS = 1000
# The categories an import's summary (or refusal) names; a file of hundreds names the rest by
# count.
SUMMARY_CATEGORIES = 10
# A vector as PostgreSQL reads it: 9 significant digits give back every float4 exactly, and one
# format string writes them at less than half the cost of pgvector's Vector.to_text.
VECTOR_TEXT = "[" + ",".join(["%.9g"] * EMBEDDING_DIMENSIONS) + "]"
# The rows are read shortest text first, so each slice holds texts of about one length and pads
# as little as one call over every text would.
TEXT_LENGTH: dict[type[EmbeddedRow], Combinable] = {
    Product: Length("name") + Length("description") + Length("origin") + Length("floral_source"),
    KnowledgeArticle: Length("title") + Length("body"),
}


# --- embeddings -------------------------------------------------------------------------------


@dataclass
class EmbeddingReport:
    embedded: int = 0
    current: int = 0
    seconds: float = 0.0
    # Of ``seconds``, what loading the embedding model took (a process's first run).
    model_load_seconds: float = 0.0
    # Articles' passages sent to the model with them (not those reused as stored).
    passages_embedded: int = 0
    # Rows embedded but not written, saved since they were read: their own task embeds them.
    saved_meanwhile: int = 0

    @property
    def rows_per_second(self) -> float:
        """The rate of reading, embedding and writing rows: a model load is no row's work (22
        articles read "1.4 rows/s" on a first run, where the rows took 0.3 s)."""
        working = self.seconds - self.model_load_seconds
        return self.embedded / working if working > 0 else 0.0


def _rows_to_embed(model: type[EmbeddedRow], ids: Iterable[int] | None) -> Any:
    rows: QuerySet[Any] = (
        Product.objects.select_related("category") if model is Product else model.objects.all()
    )
    rows = rows.order_by(TEXT_LENGTH[model], "pk")
    return rows.filter(pk__in=list(ids)) if ids is not None else rows


def embeddings_refresh(
    *,
    kind: str,
    ids: Iterable[int] | None = None,
    force: bool = False,
    batch_size: int = 64,
    dry_run: bool = False,
    on_progress: Progress | None = None,
) -> EmbeddingReport:
    """Embed the rows of ``kind`` whose text or model changed (all of them with ``force``).

    Stale rows go to the model ``ENCODE_SLICE_ROWS`` at a time (it sorts each call's texts by
    length, so bigger calls pad less) and are written ``batch_size`` rows per transaction, so
    an interrupted run keeps what it wrote and a re-run continues with what is still stale.
    ``on_progress(done, total)`` is called after every ``batch_size`` rows read and after each
    slice is written: ``done`` counts the rows found current (those the database finds so
    count from the start, and only the others are read) and the rows written, not rows read
    and still waiting for the model (a bar at 93% had written none of them).

    When a run over the whole table (``backfill_embeddings``, not a task over some ids) is to
    re-embed most of a large table (another model, or ``force``), the HNSW index is dropped for
    the run and built once at the end: inserting into it row by row costs more than the build.
    Searches meanwhile scan; writes wait while it is built. Never inside a caller's
    transaction, where the dropped index would lock the table until it commits.
    """
    model = EMBEDDED_MODELS[kind]
    model_name = current_model_name()
    rows = _rows_to_embed(model, ids).defer(*model.search_only_fields())
    report = EmbeddingReport()
    started = time.perf_counter()
    if force:
        total, to_check = rows.count(), rows
    else:
        # Rows the database finds current (it hashes each row's text as Python does) are not
        # read: a re-run over 10k unchanged rows took ~1 s reading them all.
        current = embedding_is_current(model=model)
        counts = rows.aggregate(total=Count("pk"), current=Count("pk", filter=current))
        total, report.current = counts["total"], counts["current"]
        to_check = rows.exclude(current)
    rebuild = (
        ids is None
        and not dry_run
        and not connection.in_atomic_block
        and _rebuilds_index(model, rows, table_rows=total, model_name=model_name, force=force)
    )
    flush = partial(
        _embed_stale,
        model,
        report,
        model_name=model_name,
        force=force,
        batch_size=batch_size,
        dry_run=dry_run,
    )
    stale: list[tuple[EmbeddedRow, str, str]] = []
    checked = report.current
    with _hnsw_indexes_rebuilt(model) if rebuild else nullcontext():
        for row in to_check.iterator(chunk_size=2000):
            checked += 1
            text = row.embedding_text()
            digest = text_hash(text)  # again: the row may have changed since it was counted
            if force or row.embedding_model != model_name or row.embedding_text_hash != digest:
                stale.append((row, text, digest))
            else:
                report.current += 1
            if len(stale) >= ENCODE_SLICE_ROWS:
                flush(stale)
                stale = []
                if on_progress:
                    on_progress(checked, total)
            elif on_progress and checked % batch_size == 0:
                on_progress(checked - len(stale), total)
        flush(stale)
        if on_progress:
            on_progress(checked, total)
    report.seconds = time.perf_counter() - started
    logger.info(
        "catalog.embeddings_refreshed",
        extra={"kind": kind, "embedded": report.embedded, "current": report.current},
    )
    return report


def _embed_stale(
    model: type[EmbeddedRow],
    report: EmbeddingReport,
    stale: list[tuple[EmbeddedRow, str, str]],
    *,
    model_name: str,
    force: bool,
    batch_size: int,
    dry_run: bool,
) -> None:
    """Embed and write the ``stale`` rows (each with its text and the text's hash), counted
    in ``report`` (``embeddings_refresh``)."""
    if dry_run:
        report.embedded += len(stale)
    elif stale:
        loading = time.perf_counter()
        backend = get_embedding_backend()  # built once per process: the first call loads
        report.model_load_seconds += time.perf_counter() - loading
        # Each request's rows are written before the next is sent: a rate limit met halfway
        # through a slice had lost the requests before it, paid for, on every run.
        start = 0
        for rows in backend.document_calls([text for _, text, _ in stale]):
            part = stale[start : start + rows]
            start += rows
            embedded = _embed(backend, part, model_name, reuse_passages=not force)
            report.passages_embedded += embedded.passages_embedded
            # Rows saved meanwhile are not written (``_store_embeddings``): counted apart.
            written = _store_embeddings(model, embedded, batch_size=batch_size)
            report.embedded += written
            report.saved_meanwhile += len(part) - written


def embeddings_repair(*, saved_before: datetime, limit: int) -> dict[str, int]:
    """Embed the rows their own task left stale (``embeddings_left_stale``), up to ``limit`` of
    each kind; how many of each were embedded. Another model's rows are left stale too, so a
    model switch is repaired here, slowly: ``backfill_embeddings`` is the way to make one."""
    embedded = {}
    for kind, model in EMBEDDED_MODELS.items():
        ids = embeddings_left_stale(model=model, saved_before=saved_before, limit=limit)
        embedded[kind] = _embedded_around_refusals(kind, ids) if ids else 0
    return embedded


def _embedded_around_refusals(kind: str, ids: list[int]) -> int:
    """Embed the rows ``ids`` (``embeddings_refresh``); how many were. When the model refuses a
    call (``embedding_refused``), each half is tried on its own, down to the row it refuses,
    which is logged and left stale: waiting longest, it comes first each hour, and would
    otherwise fail every row after it, every hour."""
    try:
        return embeddings_refresh(kind=kind, ids=ids).embedded
    except Exception as error:
        if not embedding_refused(error):
            raise
        if len(ids) == 1:
            logger.warning(
                "catalog.embedding_refused",
                extra={"kind": kind, "id": ids[0], "error": str(error)[:300]},
            )
            return 0
        middle = len(ids) // 2
        return _embedded_around_refusals(kind, ids[:middle]) + _embedded_around_refusals(
            kind, ids[middle:]
        )


def _hnsw_indexes(model: type[EmbeddedRow]) -> list[HnswIndex]:
    """The model's HNSW graphs: the whole table's, and a product's price-ceiling graphs."""
    return [i for i in model._meta.indexes if isinstance(i, HnswIndex)]


def _hnsw_indexes_exist(model: type[EmbeddedRow]) -> bool:
    names = [index.name for index in _hnsw_indexes(model)]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT bool_and(to_regclass(name) IS NOT NULL) FROM unnest(%s::text[]) AS name",
            [names],
        )
        return bool(cursor.fetchone()[0])


def _rebuilds_index(
    model: type[EmbeddedRow], rows: Any, *, table_rows: int, model_name: str, force: bool
) -> bool:
    """Whether this whole-table run over ``rows`` drops the HNSW indexes (``embeddings_refresh``).

    Judged from what SQL can tell (no vector, or another model's), not from text changes. An
    index missing at the start (a run killed while it was dropped) is built at the end.
    """
    if not _hnsw_indexes_exist(model):
        return True
    if force:
        count = table_rows
    else:
        count = rows.filter(~Q(embedding_model=model_name) | Q(embedding=None)).count()
    return count >= settings.EMBEDDING_INDEX_REBUILD_MIN_ROWS and count * 2 >= table_rows


class IndexRebuildInterrupted(KeyboardInterrupt):
    """Ctrl-C (or a stop) while a whole-table run built again the HNSW indexes it had dropped:
    ``missing`` are not built, and searches scan the table until the next run builds them."""

    def __init__(self, missing: list[str]) -> None:
        super().__init__(", ".join(missing))
        self.missing = missing


@contextmanager
def _hnsw_indexes_rebuilt(model: type[EmbeddedRow]) -> Iterator[None]:
    indexes = _hnsw_indexes(model)
    with connection.cursor() as cursor:
        for index in indexes:
            cursor.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(index.name)))
    failed = True
    try:
        yield
        failed = False
    finally:
        built: list[str] = []
        try:
            for index in indexes:
                with connection.schema_editor() as editor:
                    # Two runs that both dropped it must not both build it.
                    editor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [index.name])
                    statement = str(index.create_sql(model, editor))
                    editor.execute(
                        statement.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS", 1)
                    )
                built.append(index.name)
                logger.info("catalog.hnsw_index_rebuilt", extra={"index": index.name})
        except KeyboardInterrupt:
            # A second Ctrl-C, or a stop after the first: it ends the run all the same, saying
            # what it left undone.
            missing = [index.name for index in indexes if index.name not in built]
            raise IndexRebuildInterrupted(missing) from None
        except Exception:
            # Keep the run's own error; the next whole-table run builds the indexes.
            logger.exception("catalog.hnsw_index_rebuild_failed", extra={"index": index.name})
            if not failed:
                raise


@dataclass
class _Embedded:
    """Rows given their new embedding fields, and each article's passages with theirs."""

    rows: list[EmbeddedRow]
    passages: dict[int, list[KnowledgePassage]]
    # How many of the passages' texts the model was given (the others were stored already).
    passages_embedded: int = 0


def _embed(
    backend: EmbeddingBackend,
    stale: list[tuple[EmbeddedRow, str, str]],
    model_name: str,
    *,
    reuse_passages: bool,
) -> _Embedded:
    """One call to the model for the rows' texts and, for articles, their passages: those
    whose text a stored passage already holds as embedded by ``model_name`` are reused with
    ``reuse_passages`` (an edit to one paragraph re-embeds the article and that paragraph)."""
    passage_texts = {
        row.pk: article_passages(row.title, row.body)
        for row, _, _ in stale
        if isinstance(row, KnowledgeArticle)
    }
    wanted = [text for each in passage_texts.values() for text in each]
    known = (
        stored_passage_vectors(texts=wanted, model_name=model_name)
        if reuse_passages and wanted
        else {}
    )
    new = [text for text in dict.fromkeys(wanted) if text not in known]
    texts = [text for _, text, _ in stale]
    vectors = backend.embed_documents(texts + new)
    now = timezone.now()
    for (row, _, digest), vector in zip(stale, vectors[: len(stale)], strict=True):
        row.embedding = vector
        row.embedding_model = model_name
        row.embedding_text_hash = digest
        row.embedded_at = now
    known.update(zip(new, vectors[len(stale) :], strict=True))
    passages = {
        pk: [
            KnowledgePassage(article_id=pk, position=position, text=text, embedding=known[text])
            for position, text in enumerate(each)
        ]
        for pk, each in passage_texts.items()
    }
    return _Embedded([row for row, _, _ in stale], passages, passages_embedded=len(new))


def _store_embeddings(model: type[EmbeddedRow], embedded: _Embedded, *, batch_size: int) -> int:
    """Write the rows' embedding fields, ``batch_size`` rows per transaction, and replace the
    passages of the articles written in the same transaction; how many rows.

    One ``UPDATE ... FROM unnest(...)`` per batch: ``bulk_update`` builds a ``CASE`` per row
    and field, and that cost more CPU than PostgreSQL's own work (0.8 ms per row). A row saved
    since it was read keeps what it has: this vector may be of its old text, and the save
    queued an embedding of the new one, which may already have been written.
    """
    statement = sql.SQL(
        "UPDATE {} AS row SET embedding = new.embedding, embedding_model = %s,"
        " embedding_text_hash = new.text_hash, embedded_at = %s"
        " FROM unnest(%s::bigint[], %s::text[]::vector[], %s::text[], %s::timestamptz[])"
        " AS new(id, embedding, text_hash, updated_at)"
        " WHERE row.id = new.id AND row.updated_at = new.updated_at RETURNING row.id"
    ).format(sql.Identifier(model._meta.db_table))
    rows = embedded.rows
    written = 0
    for first in range(0, len(rows), batch_size):
        batch = rows[first : first + batch_size]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                statement,
                [
                    batch[0].embedding_model,
                    batch[0].embedded_at,
                    [row.pk for row in batch],
                    [VECTOR_TEXT % tuple(row.embedding) for row in batch],
                    [row.embedding_text_hash for row in batch],
                    [row.updated_at for row in batch],
                ],
            )
            ids = [pk for (pk,) in cursor.fetchall()]
            _replace_passages(ids, embedded.passages)
            if model is Product:
                product_name_words_record(ids=ids)
            written += len(ids)
    return written


def _name_words(where: sql.Composable) -> sql.Composed:
    """The words of the names of the products ``where`` picks, as ``ProductNameWord`` holds
    them (split on white space, lower-cased): recorded and pruned alike, or the prune would
    delete what was recorded."""
    return sql.SQL(
        "SELECT DISTINCT word FROM {products}, regexp_split_to_table(lower(name), '\\s+') AS word"
        " WHERE word <> '' AND {where}"
    ).format(products=sql.Identifier(Product._meta.db_table), where=where)


def product_name_words_record(*, ids: list[int]) -> None:
    """Record the words of these products' names (``ProductNameWord``, which spelling corrects
    to), as they are embedded. In order, so two batches sharing new words wait for each other
    rather than deadlock."""
    if not ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL(
                "INSERT INTO {words} (word) {names} ORDER BY word ON CONFLICT DO NOTHING"
            ).format(
                words=sql.Identifier(ProductNameWord._meta.db_table),
                names=_name_words(sql.SQL("id = ANY(%s)")),
            ),
            [ids],
        )


def product_name_words_prune() -> int:
    """Delete the recorded words no product's name holds any more (a renamed or deleted
    product's), which spelling would otherwise correct to; how many."""
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("DELETE FROM {words} WHERE word NOT IN ({names})").format(
                words=sql.Identifier(ProductNameWord._meta.db_table),
                names=_name_words(sql.SQL("TRUE")),
            )
        )
        return cursor.rowcount


def _replace_passages(article_ids: list[int], passages: dict[int, list[KnowledgePassage]]) -> None:
    written = [pk for pk in article_ids if pk in passages]
    if written:
        KnowledgePassage.objects.filter(article_id__in=written).delete()
        KnowledgePassage.objects.bulk_create(
            [passage for pk in written for passage in passages[pk]]
        )


def embeddings_refresh_on_commit(
    *,
    kind: str,
    ids: list[int],
    force: bool = False,
    on_not_queued: Callable[[int], None] | None = None,
) -> None:
    """Queue embedding of these rows once the current transaction commits.

    A broker outage must not fail the write that asked for it: the rows stay stale (visible in
    admin) until beat's hourly repair (``embeddings_repair``) or a backfill embeds them. It is
    logged in one line (Django logged a traceback for each write), and ``on_not_queued(rows)``
    is told how many rows were not queued. The tasks go to the background queue
    (``beemanhoney.celery.route_background_tasks``)."""

    def queue() -> None:
        try:
            embeddings_queue(kind=kind, ids=ids, force=force)
        except EmbeddingsNotQueued as error:
            logger.warning(
                "catalog.embeddings_not_queued",
                extra={"kind": kind, "rows": len(ids) - error.queued, "error": str(error)},
            )
            if on_not_queued is not None:
                on_not_queued(len(ids) - error.queued)

    if ids:
        transaction.on_commit(queue, robust=True)


def embeddings_queue(*, kind: str, ids: list[int], force: bool = False) -> int:
    """Queue embedding of these rows now, ``EMBED_TASK_ROWS`` a task; how many rows were
    queued. ``EmbeddingsNotQueued`` (with that count) if the broker refuses a task."""
    from catalog.tasks import embed_rows

    for first in range(0, len(ids), EMBED_TASK_ROWS):
        try:
            embed_rows.delay(kind, ids[first : first + EMBED_TASK_ROWS], force)
        except Exception as error:
            raise EmbeddingsNotQueued(queued=first) from error
    return len(ids)


class EmbeddingsNotQueued(Exception):
    def __init__(self, *, queued: int) -> None:
        super().__init__(f"the task queue did not take the rows after the first {queued}")
        self.queued = queued

    def __str__(self) -> str:
        cause, reason = self.__cause__, super().__str__()
        return f"{reason} ({type(cause).__name__}: {cause})" if cause else reason


# --- products ---------------------------------------------------------------------------------


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    invalid: int = 0
    errors: list[str] = field(default_factory=list)
    # The names of the categories a product import created, in the file's order.
    created_categories: list[str] = field(default_factory=list)
    # Rows saved whose embedding the task queue did not take (``embeddings_refresh_on_commit``).
    not_queued: int = 0

    def not_queued_add(self, rows: int) -> None:
        self.not_queued += rows

    def counts(self) -> str:
        return (
            f"created {self.created}, updated {self.updated}, "
            f"unchanged {self.unchanged}, invalid {self.invalid}"
        )

    def summary(self) -> str:
        """The counts, the categories created (a misspelt category shows up here), and rows
        left to embed because the task queue could not be reached."""
        summary = self.counts()
        if self.created_categories:
            summary += f"; created categories: {_categories_listed(self.created_categories)}"
        if self.not_queued:
            summary += (
                f"; {self.not_queued} row(s) not queued for embedding (the task queue cannot be"
                " reached): backfill_embeddings embeds them, or the hourly repair will"
            )
        return summary


def _categories_listed(names: list[str]) -> str:
    listed = ", ".join(names[:SUMMARY_CATEGORIES])
    more = len(names) - SUMMARY_CATEGORIES
    return listed + (f" and {more} more" if more > 0 else "")


def _new_categories_refusal(names: list[str]) -> str:
    """Why an import that may not create categories wrote nothing: which it would have made."""
    return (
        f"the file names categories that do not exist ({_categories_listed(names)}), which the"
        " import would create, and you may not add categories: name existing ones, or ask"
        " someone who may add categories to create them (or to import the file)"
    )


class CatalogImportError(Exception):
    """Nothing was imported: the message says why in one line, ``report.errors`` which rows."""

    def __init__(self, report: ImportReport, message: str = "") -> None:
        super().__init__(message or f"{report.invalid} invalid row(s); nothing was imported")
        self.report = report


def _unique_slug(
    model: type[Category] | type[Product] | type[KnowledgeArticle],
    base: str,
    suffix: str = "",
    *,
    taken: Container[str] | None = None,
) -> str:
    """``base`` as a slug no row of ``model`` has yet (or ``taken`` holds, where given), within
    the field's length: as it is, else ending in ``suffix`` (a sku), else in a number too (skus
    that differ only in case slugify alike)."""
    for slug in _slug_candidates(model, base, suffix):
        held = slug in taken if taken is not None else _slug_exists(model, slug)
        if not held:
            return slug
    raise AssertionError("count() does not end")


def _slug_candidates(
    model: type[Category] | type[Product] | type[KnowledgeArticle], base: str, suffix: str = ""
) -> Iterator[str]:
    longest = max_length_of(model, "slug")
    suffix_slug = slug_of(suffix)
    stem = slug_of(base) or suffix_slug or model.__name__.lower()
    tail = f"-{suffix_slug}" if suffix_slug else ""
    for ending in chain([""], [tail] if tail else [], (f"{tail}-{n}" for n in count(2))):
        yield stem[: longest - len(ending)].rstrip("-") + ending


def _slug_exists(model: type[Category] | type[Product] | type[KnowledgeArticle], slug: str) -> bool:
    return model.objects.filter(slug=slug).exists()


class _ProductSlugsTaken:
    """The product slugs an import may not give: those rows hold, and those it gave new rows
    not yet inserted. Whether rows hold a name's slug or the slug ending in its sku is asked
    of the database for all the file's rows at once, when the first new row needs a slug (one
    statement a row was 40% of an import's time, profiled); a numbered slug, row by row."""

    def __init__(self, rows: list[ProductRow]) -> None:
        self.rows = rows
        self.given: set[str] = set()

    @cached_property
    def asked(self) -> set[str]:
        return {
            slug
            for row in self.rows
            for slug in islice(_slug_candidates(Product, row.name, row.sku), 2)
        }

    @cached_property
    def held(self) -> set[str]:
        asked = list(self.asked)
        held: set[str] = set()
        for first in range(0, len(asked), IMPORT_INSERT_BATCH_ROWS):
            some = asked[first : first + IMPORT_INSERT_BATCH_ROWS]
            held.update(Product.objects.filter(slug__in=some).values_list("slug", flat=True))
        return held

    def __contains__(self, slug: object) -> bool:
        if slug in self.given or slug in self.held:
            return True
        return slug not in self.asked and _slug_exists(Product, str(slug))

    def add(self, slug: str) -> None:
        self.given.add(slug)


def _slug_made_from(
    model: type[Category] | type[KnowledgeArticle],
    text: str,
    *,
    text_field: str,
    unique: bool = True,
) -> str:
    """A new row's slug made from its name or title (``_unique_slug``; not ``unique``: within
    the field's length, whether a row has it or not). Text slugify keeps nothing of
    (punctuation, a script other than Latin) is refused on ``slug``, as the knowledge import
    refuses such a title, rather than given the model's name for a slug."""
    if not slug_of(text):
        message = f"The {text_field} has no ASCII letters or digits to make one of; give a slug."
        raise ValidationError({"slug": [ValidationError(message, code="required")]})
    if not unique:
        return slug_of(text)[: max_length_of(model, "slug")].rstrip("-")
    return _unique_slug(model, text)


def catalog_statistics_refresh() -> None:
    """ANALYZE the searchable tables now, as autovacuum does a while after a bulk load: the
    planner's estimates and the words a search leaves out as too common
    (``catalog.query_keywords``) come from these statistics."""
    tables = [sql.Identifier(model._meta.db_table) for model in (Product, KnowledgeArticle)]
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("ANALYZE {}").format(sql.SQL(", ").join(tables)))
    forget_common_lexemes()
    forget_few_rows()


def _validated_save(
    row: Model, *, exclude: list[str] | None = None, update_fields: list[str] | None = None
) -> None:
    """``full_clean`` then save (``update_fields`` alone, if given). A unique value that
    another request saved in between fails as ``full_clean`` would have, with the field's
    ``ValidationError``, not an ``IntegrityError``; so does a row it refers to (a product's
    category) that another request deletes meanwhile."""
    with transaction.atomic():
        if update_fields is not None:
            _row_locked(row)
        _references_locked(row, exclude=exclude or [])
        row.full_clean(exclude=exclude)
        try:
            with transaction.atomic():
                row.save(update_fields=update_fields)
        except IntegrityError:
            row.validate_unique(exclude=exclude)
            row.validate_constraints(exclude=exclude)
            raise


def _row_locked(row: Model) -> None:
    """Lock ``row`` for its update; ``DeletedMeanwhile`` if another request deleted it since it
    was read (its save would fail as affecting no row)."""
    if not type(row)._default_manager.select_for_update().filter(pk=row.pk).exists():
        raise DeletedMeanwhile


def _references_locked(row: Model, *, exclude: list[str]) -> None:
    """Lock the rows ``row``'s foreign keys name as their checks at commit would
    (``FOR KEY SHARE``): a delete of one that comes later waits for this transaction, and one
    that came first, even uncommitted then, is seen gone by ``full_clean``."""
    for key in row._meta.concrete_fields:
        if not isinstance(key, ForeignKey) or key.name in exclude:
            continue
        if (value := getattr(row, key.attname)) is None:
            continue
        statement = sql.SQL("SELECT 1 FROM {} WHERE {} = %s FOR KEY SHARE").format(
            sql.Identifier(key.target_field.model._meta.db_table),
            sql.Identifier(key.target_field.column),
        )
        with connection.cursor() as cursor:
            cursor.execute(statement, [value])


def category_create(*, name: str, slug: str = "", description: str = "") -> Category:
    """A new category; without a ``slug``, one made from the name, which no category may have
    yet: "Raw Honey!" beside "Raw Honey" is refused, as an import refuses it, not made
    ``raw-honey-2`` (near-duplicate categories are typos more often than not)."""
    made = "" if slug else _slug_made_from(Category, name, text_field="name", unique=False)
    category = Category(name=name, slug=slug or made, description=description)
    if made and (other := Category.objects.filter(slug=made).first()) is not None:
        category.full_clean(exclude=["slug"])  # the name's own errors ("raw honey") first
        message = (
            f"The slug made from the name ({made}) is the category {other.name!r}'s: use that"
            " category, or give this one a slug of its own."
        )
        raise ValidationError({"slug": [ValidationError(message, code="unique")]})
    _validated_save(category)
    return category


def category_update(*, category: Category, **fields: Any) -> Category:
    """Change ``category``, writing ``fields`` alone (``_written_only``); a new name is queued
    into its products' embeddings."""
    if not fields:
        return category  # an empty PATCH changes nothing, its updated_at included
    renamed = "name" in fields and fields["name"] != category.name
    with transaction.atomic():
        for name, value in fields.items():
            setattr(category, name, value)
        exclude, update_fields = _written_only(category, list(fields))
        _validated_save(category, exclude=exclude, update_fields=update_fields)
        if renamed:
            category_renamed(category=category)
    return category


def category_renamed(*, category: Category) -> None:
    """Each product's embedded text names its category: its products are marked changed (so an
    embedding of the old name in flight is not written, ``_store_embeddings``) and queued."""
    products = category.products.all()
    ids = list(products.values_list("pk", flat=True))
    products.update(updated_at=timezone.now())
    embeddings_refresh_on_commit(kind="products", ids=ids)


class _ImportCategories:
    """The category each of an import's rows names, found or made: the one of that name in any
    case, else the one of that slug (as the API shows a product's category), else a new one.
    One read for all of them (on first use, so inside the import's transaction) and again after
    each category the import makes: that one may be what later rows name. Read for each row, a
    row cost one or two statements."""

    def __init__(self, names: Iterable[str], *, may_create: bool = True) -> None:
        self._names = list(dict.fromkeys(names))
        self._named: dict[str, Category] | None = None
        self._may_create = may_create

    def get_or_create(self, name: str) -> tuple[Category, bool]:
        if self._named is None:
            self._named = categories_named(names=self._names)
        if (category := self._named.get(name)) is not None:
            return category, False
        if not self._may_create:
            # It was there when the file was checked (``product_import``), and was deleted or
            # renamed since: the import is refused as it would have been then.
            raise CatalogImportError(ImportReport(), _new_categories_refusal([name]))
        category = Category.objects.create(name=name, slug=_unique_slug(Category, name))
        self._named = categories_named(names=self._names)
        return category, True


def _product_values(
    row: ProductRow, report: ImportReport, *, categories: _ImportCategories
) -> dict[str, Any]:
    """The fields of the columns the row gives (a new product takes defaults for the rest); a
    category it creates is added to ``report``."""
    category, created = categories.get_or_create(row.category)
    if created:
        report.created_categories.append(category.name)
    values = {
        "name": row.name,
        "category": category,
        "description": row.description,
        "price": row.price,
        "currency": row.currency,
        "weight_grams": row.weight_grams,
        "stock": row.stock,
        "tags": list(row.tags),
        "origin": row.origin,
        "floral_source": row.floral_source,
    }
    return {name: value for name, value in values.items() if name in row.given}


def product_import(
    *,
    rows: list[dict[str, Any]],
    skip_invalid: bool = False,
    may_create_categories: bool = True,
    on_progress: Progress | None = None,
) -> ImportReport:
    """Upsert products by sku. All-or-nothing unless ``skip_invalid``: then good rows load,
    and a file without one fails all the same.

    A category the rows name that does not exist is created, unless ``may_create_categories``
    is False (staff who may not add categories): a row naming one is then an invalid row, with
    its place in the file. All-or-nothing, the file is refused with a message naming those
    categories; with ``skip_invalid``, those rows are skipped as any invalid row is, and the
    rows naming existing categories load."""
    known = existing_categories(rows, may_create_categories=may_create_categories)
    parsed, errors = parse_product_rows(
        rows, categories=known, may_create_categories=may_create_categories
    )
    if errors and not skip_invalid and not may_create_categories:
        named = dict.fromkeys(cell(row, "category") for row in rows)
        if new := [name for name in named if is_new_category(name, known)]:
            raise CatalogImportError(
                ImportReport(invalid=len(errors), errors=errors), _new_categories_refusal(new)
            )
    categories = _ImportCategories(
        (row.category for row in parsed), may_create=may_create_categories
    )
    slugs = _ProductSlugsTaken(parsed)

    def new_row_fields(row: ProductRow) -> dict[str, Any]:
        if keeps_what_only_stored_products_may(row):
            # Its sku or currency passed as a stored product's: the product was deleted since
            # the file was read (``_rows_import`` reports it; nothing is imported).
            raise IntegrityError(f"sku {row.sku!r} was deleted meanwhile")
        slug = _unique_slug(Product, row.name, row.sku, taken=slugs)
        slugs.add(slug)
        return {"slug": slug}

    return _rows_import(
        kind="products",
        parsed=parsed,
        errors=errors,
        skip_invalid=skip_invalid,
        key="sku",
        values=lambda row, report: _product_values(row, report, categories=categories),
        new_row_fields=new_row_fields,
        on_progress=on_progress,
    )


def _rows_import(
    *,
    kind: str,
    parsed: list[R],
    errors: list[str],
    skip_invalid: bool,
    key: str,
    values: Callable[[R, ImportReport], dict[str, Any]],
    new_row_fields: Callable[[R], dict[str, Any]],
    on_progress: Progress | None = None,
) -> ImportReport:
    """Upsert the ``parsed`` rows of ``kind`` (``EMBEDDED_MODELS``) by their ``key`` field, in
    one transaction; ``values(row, report)``: the fields a row sets (noting in ``report`` what
    else it created), ``new_row_fields(row)``: what a new one also needs;
    ``on_progress(done, total)``: rows compared, updated or inserted so far. Rows that changed
    are queued for embedding once the transaction commits."""
    report = ImportReport(invalid=len(errors), errors=errors)
    if errors and not skip_invalid:
        raise CatalogImportError(report)
    if errors and not parsed:
        # skip_invalid loads what it can; that nothing could be is a failure, not a success.
        raise CatalogImportError(
            report, f"no row is valid ({report.counts()}); nothing was imported"
        )
    try:
        _rows_upsert(
            kind=kind,
            parsed=parsed,
            key=key,
            values=values,
            report=report,
            new_row_fields=new_row_fields,
            on_progress=on_progress or (lambda done, total: None),
        )
    except IntegrityError as exc:
        # A row another request saved after this import looked for it (a category by the same
        # name, a product of the same sku).
        reason = str(exc).splitlines()[0]
        raise CatalogImportError(
            report,
            f"a change saved meanwhile conflicts with this import ({reason});"
            " nothing was imported: try again",
        ) from None
    except OperationalError as exc:
        # Another writer of some of these rows (a category's rename marks its products) that
        # wrote them in another order: PostgreSQL ended this import to end the deadlock.
        if not isinstance(exc.__cause__, DeadlockDetected):
            raise
        raise CatalogImportError(
            report,
            "another change to these rows at the same moment deadlocked with this import;"
            " nothing was imported: try again",
        ) from None
    logger.info("catalog.rows_imported", extra={"kind": kind, "summary": report.summary()})
    return report


def _rows_upsert(
    *,
    kind: str,
    parsed: list[R],
    key: str,
    values: Callable[[R, ImportReport], dict[str, Any]],
    new_row_fields: Callable[[R], dict[str, Any]],
    report: ImportReport,
    on_progress: Progress,
) -> None:
    model = EMBEDDED_MODELS[kind]
    total = len(parsed)
    touched: list[int] = []
    new: list[Any] = []
    with transaction.atomic():
        # Django's foreign keys are checked at commit, outside the caller's ``IntegrityError``
        # handler: a category deleted while the import runs would end it in a traceback there.
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        keys = [getattr(row, key) for row in parsed]
        # Without what only searches read, which an import neither compares nor writes: a save
        # then writes only the fields loaded.
        rows = model.objects.filter(**{f"{key}__in": keys}).defer(*model.search_only_fields())
        existing = {getattr(obj, key): obj for obj in rows}
        changed: list[tuple[Any, dict[str, Any]]] = []
        for row in parsed:
            given: dict[str, Any] = values(row, report)
            obj = existing.get(getattr(row, key))
            if obj is None:
                new.append(model(**{key: getattr(row, key)}, **new_row_fields(row), **given))
            elif any(_differs(obj, name, value) for name, value in given.items()):
                changed.append((obj, given))
            else:
                report.unchanged += 1
        on_progress(report.unchanged, total)
        # Rows are written in key order, whatever the file's: two imports of the same rows in
        # other orders, at once, each waited for a row the other had written (a deadlock).
        for obj, given in sorted(changed, key=lambda change: getattr(change[0], key)):
            # The file's columns alone: a stock level or a deactivation saved since the rows
            # were read is not put back (as ``product_update``).
            if not model.objects.filter(pk=obj.pk).update(**given, updated_at=timezone.now()):
                # Deleted since it was read: as a row saved meanwhile (``_rows_import``).
                raise IntegrityError(f"{key} {getattr(obj, key)!r} was deleted meanwhile")
            report.updated += 1
            touched.append(obj.pk)
            if report.updated % IMPORT_INSERT_BATCH_ROWS == 0:
                on_progress(report.unchanged + report.updated, total)
        new.sort(key=lambda obj: getattr(obj, key))
        # A statement per 1,000 rows, not one a row: with the slugs asked for at once, 100k new
        # products import in 44 s, against 80 (docs/BENCHMARKS.md, "Import").
        for first in range(0, len(new), IMPORT_INSERT_BATCH_ROWS):
            batch = model.objects.bulk_create(new[first : first + IMPORT_INSERT_BATCH_ROWS])
            touched.extend(obj.pk for obj in batch)
            report.created += len(batch)
            on_progress(report.unchanged + report.updated + report.created, total)
        on_progress(total, total)
        embeddings_refresh_on_commit(kind=kind, ids=touched, on_not_queued=report.not_queued_add)
        if touched:
            # Which words are too common to tell rows apart comes from these statistics;
            # autovacuum would refresh them only a minute or so later.
            transaction.on_commit(catalog_statistics_refresh, robust=True)


def _differs(row: Model, name: str, value: Any) -> bool:
    """Whether ``value`` would change ``row``'s field ``name``; a related row by its key, which
    ``row`` holds, rather than by loading the row it refers to."""
    field = row._meta.get_field(name)
    if isinstance(field, ForeignKey):
        return bool(getattr(row, field.attname) != value.pk)
    return bool(getattr(row, name) != value)


def _embedded_row_save(row: E, *, kind: str, written: list[str] | None = None) -> E:
    """Validate and save ``row`` (a product or an article), its embedding queued on commit;
    with ``written``, those fields alone (``_written_only``), and nothing when it is empty (an
    empty PATCH: its ``updated_at``, and so its ETag, are left as they were)."""
    exclude = update_fields = None
    if written == []:
        return row
    if written is not None:
        exclude, update_fields = _written_only(row, written)
    with transaction.atomic():
        _validated_save(row, exclude=exclude, update_fields=update_fields)
        embeddings_refresh_on_commit(kind=kind, ids=[row.pk])
    return row


def _written_only(row: Model, written: list[str]) -> tuple[list[str], list[str]]:
    """What ``full_clean`` excludes and ``save`` writes to validate and save the ``written``
    fields of ``row`` and its ``updated_at``, and no other: as a ``ModelForm`` validates only
    its own fields, a value the row holds that the caller does not write is not its to refuse
    (a sku saved before migration 0007 checked skus)."""
    update_fields = list(dict.fromkeys([*written, "updated_at"]))
    exclude = [f.name for f in row._meta.concrete_fields if f.name not in update_fields]
    return exclude, update_fields


def product_create(*, sku: str, **fields: Any) -> Product:
    return _created_under_a_made_slug(
        Product(sku=sku, **fields),
        kind="products",
        made=lambda: _unique_slug(Product, fields["name"], sku),
    )


# Creates at once that made one slug: each that finds it taken makes another, this often.
SLUG_ATTEMPTS = 5


def _created_under_a_made_slug(row: E, *, kind: str, made: Callable[[], str]) -> E:
    """Save the new ``row`` (``_embedded_row_save``) under the slug ``made()`` makes, made
    again if another create took it meanwhile: the client gave no slug, so that clash is not
    theirs to mend (it was a 400 on a field they never sent)."""
    for attempt in range(1, SLUG_ATTEMPTS + 1):
        row.slug = made()
        try:
            return _embedded_row_save(row, kind=kind)
        except ValidationError as error:
            if attempt == SLUG_ATTEMPTS or not _slug_taken_alone(error):
                raise
    raise AssertionError("the last attempt returns or raises")


def _slug_taken_alone(error: ValidationError) -> bool:
    errors = getattr(error, "error_dict", {})
    return list(errors) == ["slug"] and all(e.code == "unique" for e in errors["slug"])


def product_update(
    *, product: Product, update_fields: Iterable[str] = (), **fields: Any
) -> Product:
    """Set ``fields`` on ``product`` and save them and ``update_fields`` (what the admin's page
    changed on ``product`` itself), no other column: a stock level an import or an order saved
    after ``product`` was read is not put back by a change of its price."""
    for name, value in fields.items():
        setattr(product, name, value)
    return _embedded_row_save(product, kind="products", written=[*update_fields, *fields])


# --- knowledge --------------------------------------------------------------------------------


def knowledge_article_create(*, title: str, slug: str = "", **fields: Any) -> KnowledgeArticle:
    """A new article; without a ``slug``, one made from the title that no article has yet."""
    article = KnowledgeArticle(title=title, slug=slug, **fields)
    if slug:
        return _embedded_row_save(article, kind="knowledge")
    return _created_under_a_made_slug(
        article,
        kind="knowledge",
        made=lambda: _slug_made_from(KnowledgeArticle, title, text_field="title"),
    )


def knowledge_article_update(
    *, article: KnowledgeArticle, update_fields: Iterable[str] = (), **fields: Any
) -> KnowledgeArticle:
    """As ``product_update``: ``fields`` and ``update_fields`` are written, no other column."""
    for name, value in fields.items():
        setattr(article, name, value)
    return _embedded_row_save(article, kind="knowledge", written=[*update_fields, *fields])


def _article_values(row: ArticleRow, report: ImportReport) -> dict[str, Any]:
    """The fields of the columns the row gives (a new article is published unless it says)."""
    values = {
        "title": row.title,
        "topic": row.topic,
        "body": row.body,
        "is_published": row.is_published,
    }
    return {name: value for name, value in values.items() if name in row.given}


def knowledge_import(
    *, rows: list[dict[str, Any]], skip_invalid: bool = False, on_progress: Progress | None = None
) -> ImportReport:
    """Upsert knowledge articles by slug (given, or made from the title). All-or-nothing
    unless ``skip_invalid``: then good rows load, and a file without one fails all the same."""
    parsed, errors = parse_article_rows(rows)
    return _rows_import(
        kind="knowledge",
        parsed=parsed,
        errors=errors,
        skip_invalid=skip_invalid,
        key="slug",
        values=_article_values,
        new_row_fields=lambda row: {},
        on_progress=on_progress,
    )
