import re
import unicodedata
from collections.abc import Collection, Iterable
from decimal import Decimal
from typing import cast

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.contrib.postgres.validators import ArrayMaxLengthValidator
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Case, Expression, F, Func, Q, TextField, Value, When
from django.db.models.functions import Cast, Coalesce, Collate, Concat, Lower, NullIf, Upper
from django.utils.text import slugify
from pgvector.django import HalfVectorField, HnswIndex, VectorField

from beemanhoney.common.models import TimeStampedModel
from catalog.currencies import validate_currency

EMBEDDING_DIMENSIONS = 384
SEARCH_CONFIG = "english"
# Long texts are bounded well below PostgreSQL's 1 MB limit on a tsvector (the search columns);
# the embedding reads only their first 256 tokens anyway.
PRODUCT_DESCRIPTION_MAX_LENGTH = 10_000
ARTICLE_BODY_MAX_LENGTH = 50_000
# A sku is a path segment of /api/products/<sku>/: no '/', spaces or other characters to quote.
sku_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$",
    "letters, digits, '.', '_' or '-', at most 40 characters",
)

# The API's ?tags= filter splits on commas, and import files list tags joined by semicolons.
tag_validator = RegexValidator(r"^[^,;]*$", "a tag cannot hold ',' or ';'")
MAX_TAGS = 20
TAG_MAX_LENGTH = 40
# The model's own max_length message (MaxLengthValidator's), after the tag it is about as the
# API names each tag's errors (catalog.api.views.TagsField).
TAG_TOO_LONG = (
    "Tag %(nth)d: Ensure this value has at most %(limit_value)d characters (it has %(show_value)d)."
)


# Latin letters Unicode does not decompose to ASCII ones, which slugify would drop ("Straße" was
# "strae"), as the admin's slug field (Django's URLify) spells them.
_SLUG_SPELLINGS = str.maketrans(
    {
        "ß": "ss", "ẞ": "SS", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O",
        "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "TH",
        "ħ": "h", "Ħ": "H", "\u0131": "i", "ŋ": "ng", "Ŋ": "NG",
    }
)  # fmt: skip


def slug_of(text: str) -> str:
    """``text`` as a slug: ASCII letters, digits and hyphens, accents and ligatures spelt out."""
    return slugify(text.translate(_SLUG_SPELLINGS))


def tag_stored(tag: str) -> str:
    """A tag as stored: trimmed, lower-cased and in Unicode's composed form (NFC), so "mānuka"
    written with a combining macron, as macOS writes it, is the same tag as "mānuka"."""
    return unicodedata.normalize("NFC", tag.strip().lower())


def tags_normalised(tags: Iterable[str]) -> list[str]:
    """Tags as stored (``tag_stored``), without blanks or repeats. Tag filters match exactly,
    so tags from the API and admin take the import's form."""
    return list(dict.fromkeys(tag_stored(tag) for tag in tags if tag.strip()))


# A blank line, however written: an admin text box sends "\r\n" line ends.
_BLANK_LINE = re.compile(r"\n\s*\n")


def article_paragraphs(body: str) -> list[str]:
    return [p.strip() for p in _BLANK_LINE.split(body) if p.strip()]


def article_passages(title: str, body: str) -> list[str]:
    """An article's passages: its title, then each paragraph. ``KnowledgePassage`` rows hold
    them, and the agent's extracts choose among them."""
    return [title, *article_paragraphs(body)]


# What a keyword search reads a text as: decomposed (NFD), then without its combining marks, so
# "Mānuka" (however typed: macOS writes the macron as a mark of its own) and "Crème" are read as
# "manuka" and "creme", as customers type them; the query model reads them so already. Letters
# Unicode does not decompose ("ø", "ß") stay. ``lowered_without_accents`` is the same in Python,
# lower-cased too, as ``to_tsvector`` and ``name_order`` lower-case.
_COMBINING_MARKS = r"[\u0300-\u036f]"
_COMBINING_MARK = re.compile(_COMBINING_MARKS)
WITHOUT_ACCENTS_SQL = f"regexp_replace(normalize({{}}, NFD), '{_COMBINING_MARKS}', '', 'g')"


def lowered_without_accents(text: str) -> str:
    return _COMBINING_MARK.sub("", unicodedata.normalize("NFD", text)).lower()


def without_accents(expression: Expression | str) -> Func:
    """``expression`` as keyword search reads it (``WITHOUT_ACCENTS_SQL``)."""
    source = F(expression) if isinstance(expression, str) else expression
    return Func(
        source,
        template=WITHOUT_ACCENTS_SQL.format("%(expressions)s"),
        output_field=TextField(),
    )


def embedding_halfvec() -> Cast:
    """The embedding as half-precision floats: what the HNSW index holds and search orders by."""
    return Cast("embedding", HalfVectorField(dimensions=EMBEDDING_DIMENSIONS))


def name_order(field: str = "name") -> Collate:
    """What rows sort by for a name or title: without accents (``without_accents``: "Écorce"
    sorted after "Zebra"), lower-cased and compared character by character (the "C"
    collation), whatever the database's own collation (C.UTF-8 embedded, where "beeswax" sorts
    after "Zebra"); Python compares ``lowered_without_accents(name)`` alike."""
    return Collate(Lower(without_accents(field)), "C")


def embedding_hnsw_index(
    name: str, *, stored_half: bool = False, condition: Q | None = None
) -> HnswIndex:
    """Cosine HNSW over ``embedding_halfvec()`` (of the rows ``condition`` keeps), or over the
    column that stores it in the row (``stored_half``: ``Product.embedding_half``).

    Half precision halves the index (it must stay in shared buffers) at no measurable cost in
    recall. Over the stored column, each row a walk returns gives its distance from the row
    itself, where over the expression PostgreSQL fetched its single-precision vector from the
    TOAST table and cast it: 0.3-0.6 ms of a ~5 ms walk at 100k products
    (docs/benchmarks/journal.md, 2026-12-05: "a graph over the stored column"). A graph built
    with ef_construction 256 (pgvector's default is 64) reaches recall@10 0.98 at 100k products
    with ``SEARCH_HNSW_EF_SEARCH`` 200, where the default graph needs 300 and ~45% more time per
    query (5.2 against 3.6 ms). It costs about 2.7x as much per built or inserted row, which is
    why ``embeddings_refresh`` rebuilds it once after a large re-embed instead of inserting row
    by row. docs/benchmarks/journal.md, "2026-11-28, 15:25: the record run, its machine and
    method" and "2026-11-28, 16:17: the record run, and what closed the gap".
    """
    over = F("embedding_half") if stored_half else embedding_halfvec()
    return HnswIndex(
        OpClass(over, name="halfvec_cosine_ops"),
        name=name,
        m=16,
        ef_construction=256,
        condition=condition,
    )


# Budgets customers name ("under £10", "£20 or less"): each has a graph of the products it
# keeps, which PostgreSQL walks for a search whose max_price is at most it. Walking the whole
# catalogue's graph for such a search reads ~7 rows for each one that passes (14.8% of the rows
# at 100k products cost 19.5 ms, against 4.3 ms by the graph of those rows alone; a ceiling of
# 12 walks the £20 graph: 20.7 -> 10.4 ms). docs/benchmarks/journal.md, 2026-12-05: "budget
# graphs (a graph per price ceiling)".
PRODUCT_PRICE_CEILING_GRAPHS = (10, 20)


PRODUCT_GRAPH = "product_embedding_hnsw"


def product_price_ceiling_graph(ceiling: int) -> str:
    return f"{PRODUCT_GRAPH}_le_{ceiling}"


def product_price_ceiling_indexes() -> list[HnswIndex]:
    return [
        embedding_hnsw_index(
            product_price_ceiling_graph(ceiling), stored_half=True, condition=Q(price__lte=ceiling)
        )
        for ceiling in PRODUCT_PRICE_CEILING_GRAPHS
    ]


def product_graph_walked(max_price: Decimal | None) -> str:
    """The graph PostgreSQL walks for a search of the products priced at most ``max_price``:
    the smallest ceiling's that holds them all, else the whole catalogue's."""
    ceilings = [c for c in PRODUCT_PRICE_CEILING_GRAPHS if max_price is not None and max_price <= c]
    return product_price_ceiling_graph(min(ceilings)) if ceilings else PRODUCT_GRAPH


class Embedded(models.Model):
    """A row that carries its own embedding, the model that made it and the text it came from."""

    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS, null=True, blank=True, editable=False)
    embedding_model = models.CharField(max_length=100, blank=True, editable=False)
    embedding_text_hash = models.CharField(max_length=64, blank=True, editable=False)
    embedded_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        abstract = True

    def embedding_text(self) -> str:
        raise NotImplementedError

    @classmethod
    def search_only_fields(cls) -> list[str]:
        """The columns only SQL reads: the embedding and the stored columns made from the row
        (the words' search vector, a product's half-precision embedding). Python never needs
        them, and loading one parses it from text: a product's two vectors cost ~0.13 ms a row,
        1.3 s of a 10k-row backfill. Whatever reads rows in bulk defers them."""
        return [
            field.name
            for field in cls._meta.concrete_fields
            if field.name == "embedding" or isinstance(field, models.GeneratedField)
        ]

    @classmethod
    def embedding_text_sql(cls) -> Func:
        """``embedding_text()`` as PostgreSQL builds it, so that rows whose text changed since
        they were embedded can be found by a query (tests hold the two equal)."""
        raise NotImplementedError


def _text_part(field: str) -> NullIf:
    """The field, NULL where it is empty: a part of ``embedding_text``."""
    return NullIf(field, Value(""), output_field=TextField())


def _labelled_part(label: str, field: str) -> Case:
    """``f"{label}{field}."``, NULL where the field is empty: a part of ``embedding_text``."""
    return Case(
        When(
            ~Q(**{field: ""}),
            then=Concat(Value(label), F(field), Value("."), output_field=TextField()),
        ),
        output_field=TextField(),
    )


class Category(TimeStampedModel):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)

    class Meta:
        # Ties by id: "Manuka" and "M\u0101nuka" sort alike (name_order).
        ordering = [name_order().asc(), F("id").asc()]
        verbose_name_plural = "categories"
        constraints = [
            # Imports find a category by its name whatever its case.
            models.UniqueConstraint(
                Lower("name"),
                name="category_name_unique_any_case",
                violation_error_message="A category with this name already exists.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def name_as_written(text: str) -> str:
        """``text`` as a category's name is stored and looked up (by imports too): its runs of
        spaces one space, so "Raw  Honey" is "Raw Honey" rather than a category beside it."""
        return " ".join(text.split())

    def clean_fields(self, exclude: Collection[str] | None = None) -> None:
        if exclude is None or "name" not in exclude:
            self.name = self.name_as_written(self.name)
        super().clean_fields(exclude=exclude)


class Product(TimeStampedModel, Embedded):
    sku = models.CharField(max_length=40, unique=True, validators=[sku_validator])
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=220, unique=True)
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="products")
    description = models.TextField(
        blank=True, validators=[MaxLengthValidator(PRODUCT_DESCRIPTION_MAX_LENGTH)]
    )
    # The validators say at the field what the constraints below would refuse as a whole.
    price = models.DecimalField(max_digits=10, decimal_places=2, validators=[MinValueValidator(0)])
    currency = models.CharField(max_length=3, default="GBP", validators=[validate_currency])
    weight_grams = models.PositiveIntegerField(default=0)
    stock = models.IntegerField(default=0, validators=[MinValueValidator(0)])
    is_active = models.BooleanField(default=True)
    tags = ArrayField(
        models.CharField(max_length=TAG_MAX_LENGTH, validators=[tag_validator]),
        default=list,
        blank=True,
        validators=[ArrayMaxLengthValidator(MAX_TAGS)],
    )
    origin = models.CharField(max_length=120, blank=True)
    floral_source = models.CharField(max_length=120, blank=True)
    search_vector = models.GeneratedField(
        expression=SearchVector(without_accents("name"), weight="A", config=SEARCH_CONFIG)
        + SearchVector(
            without_accents(Coalesce("floral_source", models.Value(""))),
            weight="B",
            config=SEARCH_CONFIG,
        )
        + SearchVector(
            without_accents(Coalesce("origin", models.Value(""))), weight="C", config=SEARCH_CONFIG
        )
        + SearchVector(without_accents("description"), weight="C", config=SEARCH_CONFIG),
        output_field=SearchVectorField(),
        db_persist=True,
    )
    # ``embedding_halfvec()`` kept in the row itself (migration 0010 stores it uncompressed in
    # place; the embedding is moved out to the TOAST table). The HNSW graphs are built over it
    # (migration 0021), and a search filtered down to a few thousand products orders them by it
    # exactly, faster than the HNSW walk finds them (``SEARCH_EXACT_ORDER_MAX_ROWS``, ADR 0003).
    embedding_half = models.GeneratedField(
        expression=embedding_halfvec(),
        output_field=HalfVectorField(dimensions=EMBEDDING_DIMENSIONS, null=True),
        db_persist=True,
    )

    class Meta:
        # Names repeat (one honey in several sizes): the id makes the order total, so pages
        # neither repeat nor skip a product.
        ordering = [name_order().asc(), F("id").asc()]
        constraints = [
            models.CheckConstraint(condition=Q(stock__gte=0), name="product_stock_not_negative"),
            models.CheckConstraint(condition=Q(price__gte=0), name="product_price_not_negative"),
            models.CheckConstraint(
                condition=Q(currency__regex=r"^[A-Z]{3}$"), name="product_currency_iso_code"
            ),
        ]
        indexes = [
            GinIndex(fields=["search_vector"], name="product_search_vector_gin"),
            GinIndex(fields=["tags"], name="product_tags_gin"),
            embedding_hnsw_index(PRODUCT_GRAPH, stored_half=True),
            *product_price_ceiling_indexes(),
            # The catalogue's order: a page of the list reads 20 rows instead of sorting them
            # all (80 ms at 100k products). With is_active included, the list's count reads
            # this index alone instead of the table (36 -> 10 ms at 100k, where the visibility
            # map is current, as autovacuum keeps it). Not stock, which changes with every
            # order: a change to an indexed column cannot be a HOT update, so each one would
            # also insert into the HNSW graph and the GIN indexes.
            models.Index(name_order(), F("id"), include=["is_active"], name="product_name_order"),
            # ?ordering=price (and -price, read backwards): a page sorted by price sorted every
            # active product (~100 ms at 100k). Prices change far less often than stock, and
            # those updates were seldom HOT anyway: after a load, a page has no room for a
            # row's new version. With is_active included, whether few products are in a price
            # range (catalog.search_statements.FewRowsStatement) reads this index alone: 10-15
            # -> 1-3.5 ms at 100k.
            models.Index(fields=["price", "id"], include=["is_active"], name="product_price_id"),
            # The admin's search finds a product by the start of its sku in any case
            # (``istartswith``: ``UPPER(sku::text) LIKE 'TERM%'``), which only an index on that
            # expression serves; the sku's own indexes compare it as stored.
            models.Index(
                OpClass(Upper("sku"), name="text_pattern_ops"), name="product_sku_upper_prefix"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.sku})"

    def clean(self) -> None:
        # The field checked each tag as given, and lower-casing can lengthen one ("\u0130" is
        # two characters lower-cased): PostgreSQL would store it cut to the column's length.
        # One too long as given already has the field's own error.
        lengthened: list[ValidationError] = []
        for nth, tag in enumerate(self.tags, start=1):
            stored = tag_stored(tag)
            if len(tag) <= TAG_MAX_LENGTH < len(stored):
                params = {"nth": nth, "limit_value": TAG_MAX_LENGTH, "show_value": len(stored)}
                lengthened.append(ValidationError(TAG_TOO_LONG, code="max_length", params=params))
        if lengthened:
            raise ValidationError({"tags": lengthened})
        self.tags = tags_normalised(self.tags)

    @property
    def in_stock(self) -> bool:
        return self.stock > 0

    def embedding_text(self) -> str:
        parts = [self.name, self.category.name, self.description]
        if self.floral_source:
            parts.append(f"Floral source: {self.floral_source}.")
        if self.origin:
            parts.append(f"Origin: {self.origin}.")
        if self.tags:
            parts.append(f"Tags: {', '.join(self.tags)}.")
        return "\n".join(part for part in parts if part)

    @classmethod
    def embedding_text_sql(cls) -> Func:
        tags = Case(
            When(tags=[], then=None),
            default=Concat(
                Value("Tags: "),
                Func("tags", Value(", "), function="array_to_string", output_field=TextField()),
                Value("."),
                output_field=TextField(),
            ),
            output_field=TextField(),
        )
        return Func(
            Value("\n"),  # concat_ws skips the NULL parts, as embedding_text the empty ones
            _text_part("name"),
            _text_part("category__name"),
            _text_part("description"),
            _labelled_part("Floral source: ", "floral_source"),
            _labelled_part("Origin: ", "origin"),
            tags,
            function="concat_ws",
            output_field=TextField(),
        )


class KnowledgeArticle(TimeStampedModel, Embedded):
    class Topic(models.TextChoices):
        SHIPPING = "shipping"
        RETURNS = "returns"
        STORAGE = "storage"
        HEALTH = "health"
        BEEKEEPING = "beekeeping"
        ORDERS = "orders"
        PRODUCTS = "products"

    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=220, unique=True)
    topic = models.CharField(max_length=20, choices=Topic.choices)
    body = models.TextField(validators=[MaxLengthValidator(ARTICLE_BODY_MAX_LENGTH)])
    is_published = models.BooleanField(default=True)
    search_vector = models.GeneratedField(
        expression=SearchVector(without_accents("title"), weight="A", config=SEARCH_CONFIG)
        + SearchVector(without_accents("body"), weight="B", config=SEARCH_CONFIG),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta:
        ordering = ["topic", name_order("title").asc(), "id"]
        indexes = [
            GinIndex(fields=["search_vector"], name="article_search_vector_gin"),
            embedding_hnsw_index("article_embedding_hnsw"),
        ]

    def __str__(self) -> str:
        return self.title

    def embedding_text(self) -> str:
        return f"{self.title}\n{self.body}"

    @classmethod
    def embedding_text_sql(cls) -> Func:
        return Concat("title", Value("\n"), "body", output_field=TextField())


class ProductNameWord(models.Model):
    """A word of some product's name, as the database splits it (on spaces, lower-cased),
    recorded as the product is embedded (``catalog.services.product_name_words_record``). The
    words a misspelt search word is corrected to (``catalog.spelling``); those of a renamed or
    deleted product are pruned daily (``catalog.tasks.prune_product_name_words``)."""

    word = models.CharField(max_length=200, primary_key=True)

    def __str__(self) -> str:
        return self.word


class KnowledgePassage(models.Model):
    """A passage of an article (its title, or one paragraph), embedded with the article, by the
    same model, whenever the article is: the knowledge search ranks articles by their nearest
    passage, since the article's own embedding reads only its first 256 tokens (every demo
    article is longer) and averages the rest into one meaning."""

    # No index of its own: the unique (article, position) one serves lookups by article.
    article = models.ForeignKey(
        KnowledgeArticle, on_delete=models.CASCADE, related_name="passages", db_index=False
    )
    position = models.PositiveSmallIntegerField()  # 0: the title, then the paragraphs in order
    text = models.TextField()
    embedding = HalfVectorField(dimensions=EMBEDDING_DIMENSIONS)

    class Meta:
        ordering = ["article", "position"]
        constraints = [
            models.UniqueConstraint(fields=["article", "position"], name="passage_article_position")
        ]

    def __str__(self) -> str:
        return "title" if self.position == 0 else f"paragraph {self.position}"


def graph_vector(model: type[Embedded]) -> Expression:
    """What ``model``'s HNSW graphs are built over (``embedding_hnsw_index``), as their
    definitions say: a search orders by it, so that PostgreSQL can walk one of them."""
    graph = next(index for index in model._meta.indexes if isinstance(index, HnswIndex))
    return cast(OpClass, graph.expressions[0]).get_source_expressions()[0]
