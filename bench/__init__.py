"""What both benchmarks share: their own database, a synthetic catalogue and cached vectors.

The benchmarks never touch the development database: ``bench_django_setup()`` creates
``beemanhoney_bench`` on the same embedded PostgreSQL (or on the server of ``BENCH_DATABASE_URL``),
points Django at it before ``django.setup()`` and migrates it. Product ``i`` of the synthetic
catalogue depends only on the seed and ``i``, so a smaller catalogue is a prefix of a larger one
and vectors are cached per chunk of ``VECTOR_CHUNK`` products under ``var/bench/vectors/``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import re
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent
BENCH_DIR = PROJECT_DIR / "var" / "bench"
BENCH_DATABASE = "beemanhoney_bench"
VECTOR_CHUNK = 10_000
# The chat benchmarks' customers all come from 127.0.0.1 and post far more than a customer would:
# the per-address and per-customer rates a real shop sets would throttle the benchmark itself
# (the per-address daily message quota refused a second `bench.load` in a day). Every throttle
# still runs, its cache round trips part of each request; only its limit is lifted.
THROTTLES_LIFTED = {
    "THROTTLE_GUEST_CREATE": "1000000/hour",
    "THROTTLE_MESSAGE_POST": "1000000/min",
    "THROTTLE_MESSAGE_DAILY": "10000000/day",
    "THROTTLE_MESSAGE_DAILY_PER_IP": "10000000/day",
    "THROTTLE_READ": "1000000/min",
}
COPY_COLUMNS = (
    "created_at", "updated_at", "embedding", "embedding_model", "embedding_text_hash",
    "embedded_at", "sku", "name", "slug", "description", "price", "currency", "weight_grams",
    "stock", "is_active", "tags", "origin", "floral_source", "category_id",
)  # fmt: skip
COPY_TYPES = (
    "timestamptz", "timestamptz", "vector", "varchar", "varchar", "timestamptz", "varchar",
    "varchar", "varchar", "text", "numeric", "varchar", "int4", "int4", "bool", "varchar[]",
    "varchar", "varchar", "int8",
)  # fmt: skip


def log(message: str) -> None:
    """Progress on stderr, so stdout holds only the tables."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def wait_for_quiet(minutes: float, *, database: str = BENCH_DATABASE) -> tuple[float, ...]:
    """Wait up to ``minutes`` until no other benchmark, test run or busy process works
    (``bench.processes.wait_until_quiet``; ``database`` is this benchmark's own). Returns the load
    average it started with, for the report.

    Timings on a shared 2-core machine swing by 10x while other jobs run; this keeps a run from
    starting in the middle of someone's test suite. Not the load average: it counts the
    benchmark's own minutes of embedding, and a run waited on itself.
    """
    if minutes > 0:
        from bench.processes import wait_until_quiet

        wait_until_quiet(minutes, database=database)
    return os.getloadavg()


# --- the benchmark database -------------------------------------------------------------------


def database_ensure(url: str) -> str:
    """Create the database ``url`` names if its server lacks it; return ``url``."""
    import psycopg
    from psycopg import sql

    name = str(psycopg.conninfo.conninfo_to_dict(url)["dbname"])
    admin_url = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return url


def embedded_redis_url(db: int) -> str:
    """The embedded Valkey (started if need be), database ``db``."""
    from beemanhoney.embedded import ensure_valkey

    return re.sub(r"/\d+$", f"/{db}", ensure_valkey())


def bench_database_url(database: str = BENCH_DATABASE) -> str:
    """``BENCH_DATABASE_URL`` (its database replaced by ``database`` when that is not the
    default) or ``database`` on the embedded server; made if missing."""
    import psycopg

    url = os.environ.get("BENCH_DATABASE_URL")
    if url is not None and database != BENCH_DATABASE:
        url = psycopg.conninfo.make_conninfo(url, dbname=database)
    if url is None:
        from beemanhoney.embedded import ensure_postgres

        url = ensure_postgres().url(database)
    if psycopg.conninfo.conninfo_to_dict(url)["dbname"] == "beemanhoney":
        raise SystemExit("refusing to benchmark against the development database 'beemanhoney'")
    return database_ensure(url)


def bench_environment() -> None:
    """The settings a benchmark's Django starts with, where the caller's environment is silent."""
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "beemanhoney.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    if str(PROJECT_DIR) not in sys.path:
        sys.path.insert(0, str(PROJECT_DIR))


def servers_environment(
    database: str, *, redis_db: int, workers_queue_prefix: str | None = None
) -> dict[str, str]:
    """For a benchmark that starts servers of its own: its database, a Redis database of its
    own and, given ``workers_queue_prefix``, a queue of its own for Celery workers that answer
    with the offline provider, set in the environment before Django starts (the servers it
    starts inherit them). Its URLs, and the queue."""
    from beemanhoney import embedded

    bench_environment()
    os.environ["DJANGO_SETTINGS_MODULE"] = "beemanhoney.settings"
    # Only this process: progress on stderr stays readable. The servers it starts log as in
    # production (``make run``).
    os.environ["LOG_LEVEL"] = "WARNING"
    url = database_ensure(embedded.ensure_postgres().url(database))
    redis_url = embedded_redis_url(redis_db)
    os.environ.update(DATABASE_URL=url, REDIS_URL=redis_url)
    if workers_queue_prefix is None:
        return {"database_url": url, "redis_url": redis_url}
    queue = f"{workers_queue_prefix}-{uuid.uuid4().hex[:8]}"
    os.environ.update(LLM_PROVIDER="offline", CELERY_QUEUE=queue)
    return {"database_url": url, "redis_url": redis_url, "queue": queue}


def bench_django_setup(database: str = BENCH_DATABASE) -> str:
    """Point Django at the benchmark database ``database``, set it up and migrate; return the
    URL."""
    bench_environment()
    url = bench_database_url(database)
    os.environ["DATABASE_URL"] = url

    import django
    from django.core.management import call_command

    django.setup()
    from django.db import connection

    if connection.settings_dict["NAME"] == "beemanhoney":
        raise SystemExit("Django points at the development database; refusing to continue")
    call_command("migrate", verbosity=0)
    from django.conf import settings

    from bench.indexes import indexes_as_migrated

    indexes_as_migrated(url, settings.REDIS_URL)
    # DEBUG=1 only spares the benchmark a SECRET_KEY; do not also pay for Django's query log.
    settings.DEBUG = False
    return url


def bench_connect(url: str) -> Any:
    """A plain psycopg connection with pgvector's adapters, for loading and timing raw SQL."""
    import psycopg
    from pgvector.psycopg import register_vector

    conn = psycopg.connect(url, autocommit=True)
    # No server-side prepared statements: a cached generic plan survives a later SET, so the
    # "index" timings could silently reuse the exact scan's plan (or the other way round).
    conn.prepare_threshold = None
    register_vector(conn)
    return conn


def catalog_truncate(conn: Any) -> None:
    conn.execute("TRUNCATE catalog_product, catalog_category RESTART IDENTITY CASCADE")


def conversations_django_setup(database: str) -> None:
    """Set Django up on a chat benchmark's own database and queue, migrate it and empty its
    conversations, runs and task results, so every run starts from none."""
    if str(PROJECT_DIR) not in sys.path:
        sys.path.insert(0, str(PROJECT_DIR))
    import django
    from django.core.management import call_command

    django.setup()
    from django.db import connection

    from beemanhoney.celery import app

    if connection.settings_dict["NAME"] != database:
        raise SystemExit(f"Django points at {connection.settings_dict['NAME']}; refusing")
    app.conf.task_default_queue = os.environ["CELERY_QUEUE"]
    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE conversations_message, conversations_conversation, agents_agentrun,"
            " django_celery_results_taskresult CASCADE"
        )


# --- the synthetic catalogue -----------------------------------------------------------------


@dataclass(frozen=True)
class CategorySpec:
    name: str
    nouns: tuple[str, ...]
    sizes: tuple[str, ...]
    tag: str
    blurbs: tuple[str, ...]


CATEGORIES = (
    CategorySpec("Raw Honey", ("Raw Honey", "Unpasteurised Honey"), ("250g", "340g", "500g", "1kg"),
                 "raw", ("Cold-extracted and coarse-strained, so it keeps its natural pollen.",
                         "Never heated above hive temperature; expect it to crystallise slowly.")),
    CategorySpec("Set Honey", ("Set Honey", "Soft Set Honey"), ("227g", "340g", "454g"), "set",
                 ("Gently set to a fine, spreadable grain that will not drip off the knife.",
                  "A firm set that softens to a smooth spread at room temperature.")),
    CategorySpec("Creamed Honey", ("Creamed Honey", "Whipped Honey"), ("250g", "340g"), "creamed",
                 ("Slowly stirred for days until it is light, silky and spreadable.",
                  "Whipped to a velvety texture that children love on warm toast.")),
    CategorySpec("Comb Honey", ("Cut Comb", "Whole Honeycomb", "Chunk Honey"), ("200g", "400g"),
                 "comb", ("Cut straight from the frame and packed with the wax cappings intact.",
                          "Edible beeswax comb filled with honey exactly as the bees capped it.")),
    CategorySpec("Honeydew Honey", ("Honeydew Honey", "Forest Honey"), ("250g", "500g"),
                 "honeydew", ("Made from the sweet secretions on tree bark, not from flowers.",
                              "Dark, mineral-rich and less sweet than blossom honey.")),
    CategorySpec("Infused Honey", ("Infused Honey", "Spiced Honey", "Chilli Honey"),
                 ("200g", "250g"), "infused",
                 ("Steeped for weeks with botanicals and strained by hand.",
                  "Infused in small batches; a spoonful lifts dressings and glazes.")),
    CategorySpec("Manuka & Medicinal Honey", ("Manuka Honey MGO 263+", "Manuka Honey MGO 514+",
                 "Active Honey"), ("250g", "500g"), "medicinal",
                 ("Independently tested for methylglyoxal and sold with its certificate.",
                  "Kept by the spoonful for sore throats and winter colds.")),
    CategorySpec("Gift Sets", ("Tasting Set", "Gift Hamper", "Honey Trio"), ("3 x 113g", "4 x 50g"),
                 "gift", ("Packed in a recyclable box with tasting notes for each jar.",
                          "A ready-wrapped present with a handwritten card on request.")),
    CategorySpec("Beeswax Candles", ("Beeswax Pillar Candle", "Beeswax Tea Lights",
                 "Rolled Beeswax Taper"), ("small", "large", "pack of 12"), "candle",
                 ("Poured from pure cappings wax with a cotton wick; burns clean and slow.",
                  "Naturally honey-scented wax that gives off a warm golden light.")),
    CategorySpec("Beeswax Wraps", ("Beeswax Food Wraps", "Sandwich Wrap"), ("set of 3", "roll"),
                 "wrap", ("Organic cotton coated in beeswax, pine resin and jojoba oil.",
                          "A washable, reusable alternative to cling film.")),
    CategorySpec("Bee Pollen & Propolis", ("Bee Pollen Granules", "Propolis Tincture",
                 "Royal Jelly"), ("30ml", "100g", "200g"), "hive-product",
                 ("Collected at the hive entrance and dried at low temperature.",
                  "A concentrated hive product traditionally taken each morning.")),
    CategorySpec("Mead & Honey Drinks", ("Traditional Mead", "Sparkling Mead", "Honey Liqueur"),
                 ("375ml", "750ml"), "mead",
                 ("Fermented slowly from honey and spring water, then aged in oak.",
                  "Best served chilled as an aperitif or with a cheese course.")),
    CategorySpec("Honey Skincare", ("Honey Lip Balm", "Honey & Beeswax Hand Cream",
                 "Honey Soap Bar"), ("15g", "50ml", "100g"), "skincare",
                 ("Made with our own beeswax and honey and no synthetic fragrance.",
                  "Soothing for dry, chapped skin after a day outdoors.")),
    CategorySpec("Cooking & Condiments", ("Honey Mustard", "Honey Vinegar", "Honey Barbecue Glaze"),
                 ("190g", "250ml"), "condiment",
                 ("Made in our kitchen in small batches with whole spices.",
                  "A cupboard staple for dressings, marinades and roasting trays.")),
)  # fmt: skip
FLORAL_SOURCES = (
    "clover", "heather", "manuka", "acacia", "lavender", "orange blossom", "lime blossom",
    "sweet chestnut", "buckwheat", "eucalyptus", "wild thyme", "rosemary", "wildflower",
    "borage", "oilseed rape", "sunflower", "tupelo", "sage", "blackberry", "dandelion", "ivy",
    "sourwood", "leatherwood", "rata", "kamahi", "pohutukawa", "jarrah", "tualang", "sidr",
    "fir honeydew", "pine honeydew", "oak honeydew", "coriander", "alfalfa", "fireweed",
    "tulip poplar", "raspberry", "apple blossom", "cherry blossom", "hawthorn", "sea lavender",
    "willowherb", "bell heather", "linden", "strawberry tree",
)  # fmt: skip
ORIGINS = (
    "Yorkshire, England", "Devon, England", "Cornwall, England", "Somerset, England",
    "Norfolk, England", "Kent, England", "the Lake District, England", "the Scottish Highlands",
    "the Isle of Skye, Scotland", "Snowdonia, Wales", "County Cork, Ireland",
    "Waikato, New Zealand", "the East Cape, New Zealand", "Tasmania, Australia",
    "Western Australia", "Andalusia, Spain",
    "Crete, Greece", "the Peloponnese, Greece", "Sicily, Italy", "Tuscany, Italy",
    "Provence, France", "Corsica, France", "Transylvania, Romania", "the Black Sea coast, Turkey",
    "Yucatan, Mexico", "Minas Gerais, Brazil", "Hadramaut, Yemen", "Pahang, Malaysia",
    "Alberta, Canada", "the Florida panhandle, USA", "the Alentejo, Portugal", "Slovenia",
)  # fmt: skip
FLAVOURS = (
    "smooth", "floral", "robust", "delicate", "buttery", "malty", "earthy", "zesty", "herbal",
    "smoky", "fruity", "caramel", "minty", "peppery", "creamy", "light", "dark amber", "golden",
    "rich", "bittersweet", "tangy", "woody", "toffee", "resinous", "citrus", "nutty",
)  # fmt: skip
USES = (
    "a morning cup of tea", "porridge", "baking", "glazing a ham", "a cheese board",
    "soothing a sore throat", "cocktails", "salad dressings", "Greek yogurt", "hot buttered toast",
    "marinades", "a natural skincare routine", "gifting", "pancakes", "roast vegetables",
    "smoothies", "hot toddies", "granola", "stir-fries", "barbecue ribs",
)  # fmt: skip
PRODUCERS = (
    "Beeman", "Hive & Heath", "Old Mill Apiary", "Meadowbank", "Golden Furrow", "Wax & Wick",
    "Bramble Hill", "Sweet Valley", "Honeystone", "Linden Lane", "Northern Hives", "Queen's Acre",
    "Heather Moor", "Kingfisher Bees", "Orchard End", "Wild Comb Co.", "Saltmarsh Bees",
    "The Bee Loft", "Clover Cottage", "Foxglove Farm",
)  # fmt: skip
OPENERS = (
    "A {flavour} {noun_lower} from {origin}, gathered by our bees from {floral}.",
    "Our {floral} {noun_lower} comes from hives in {origin} and tastes {flavour} and {flavour2}.",
    "From small apiaries in {origin}: {flavour}, {flavour2} and unmistakably {floral}.",
    "{producer} brings you {floral} {noun_lower} with a {flavour} character, made in {origin}.",
)
CLOSERS = (
    "Lovely with {use} or {use2}.",
    "Customers buy it for {use}, and it is just as good with {use2}.",
    "Try it with {use}; it also shines in {use2}.",
    "A favourite in our shop for {use}.",
)
EXTRA_TAGS = ("british", "organic", "vegan-friendly", "bestseller", "limited", "award-winning")


@dataclass(frozen=True)
class SyntheticProduct:
    index: int
    sku: str
    slug: str
    name: str
    category: str
    description: str
    price: Decimal
    weight_grams: int
    stock: int
    tags: tuple[str, ...]
    origin: str
    floral_source: str


def synthetic_product(seed: int, index: int) -> SyntheticProduct:
    """Product ``index`` of the catalogue for ``seed``: the same wherever it is generated."""
    rng = random.Random(f"beeman-bench-product:{seed}:{index}")
    spec = rng.choice(CATEGORIES)
    floral, origin = rng.choice(FLORAL_SOURCES), rng.choice(ORIGINS)
    producer = rng.choice(PRODUCERS)
    flavour, flavour2 = rng.sample(FLAVOURS, 2)
    use, use2 = rng.sample(USES, 2)
    noun, size = rng.choice(spec.nouns), rng.choice(spec.sizes)
    name = f"{producer} {flavour.title()} {floral.title()} {noun} {size}"
    words = {
        "flavour": flavour, "flavour2": flavour2, "floral": floral, "origin": origin,
        "producer": producer, "noun_lower": noun.lower(), "use": use, "use2": use2,
    }  # fmt: skip
    # Two sentences, not three: the real model embeds ~100 texts/s of this length on 2 cores.
    second = rng.choice(spec.blurbs) if rng.random() < 0.5 else rng.choice(CLOSERS).format(**words)
    description = f"{rng.choice(OPENERS).format(**words)} {second}"
    tags = tuple(sorted({spec.tag, flavour.replace(" ", "-"), rng.choice(EXTRA_TAGS)}))
    return SyntheticProduct(
        index=index,
        sku=f"BENCH-{index:06d}",
        slug=f"bench-{index:06d}",
        name=name,
        category=spec.name,
        description=description,
        price=Decimal(rng.randrange(299, 4999)) / 100,
        weight_grams=rng.choice((50, 113, 227, 250, 340, 454, 500, 1000)),
        stock=rng.choice((0, 3, 12, 40, 150)),
        tags=tags,
        origin=origin,
        floral_source=floral,
    )


def synthetic_products(*, seed: int, count: int) -> list[SyntheticProduct]:
    return [synthetic_product(seed, index) for index in range(count)]


def embedding_texts(products: Sequence[SyntheticProduct]) -> list[str]:
    """The text ``Product.embedding_text()`` gives for each product (built by that very method)."""
    from catalog.models import Category, Product

    categories = {spec.name: Category(name=spec.name) for spec in CATEGORIES}
    return [
        Product(
            name=p.name,
            category=categories[p.category],
            description=p.description,
            tags=list(p.tags),
            origin=p.origin,
            floral_source=p.floral_source,
        ).embedding_text()
        for p in products
    ]


QUERY_TEMPLATES = (
    "{flavour} honey for {use}",
    "something {flavour} and {flavour2} to have with {use}",
    "{floral} honey from {origin_short}",
    "do you sell {kind}?",
    "{kind} for {use}",
    "a present for someone who loves {use}",
    "what would go well with {use}",
    "looking for a {flavour} {floral} honey",
    "honey that is not too sweet, maybe {flavour}",
    "{kind} made in {origin_short}",
    "best honey for {use} under 10 pounds",
    "which honey helps with a sore throat",
    "eco friendly {kind}",
    "i want a {flavour} honey like the ones from {origin_short}",
)
QUERY_KINDS = (
    "raw honey", "set honey", "creamed honey", "honeycomb", "forest honey", "chilli honey",
    "manuka", "gift box", "beeswax candles", "beeswax wraps", "bee pollen", "propolis", "mead",
    "lip balm", "honey mustard", "tea lights", "honey for cooking",
)  # fmt: skip


def query_texts(*, seed: int, count: int, offset: int = 0) -> list[str]:
    """Search phrases written like customers type them, from their own templates and RNG.

    They share the vocabulary with the catalogue (customers ask for what a shop sells) but are
    never copied from a product's name or description.
    """
    texts: list[str] = []
    index = offset
    while len(texts) < count:
        rng = random.Random(f"beeman-bench-query:{seed}:{index}")
        index += 1
        flavour, flavour2 = rng.sample(FLAVOURS, 2)
        text = rng.choice(QUERY_TEMPLATES).format(
            flavour=flavour,
            flavour2=flavour2,
            use=rng.choice(USES),
            floral=rng.choice(FLORAL_SOURCES),
            origin_short=rng.choice(ORIGINS).split(",")[0].removeprefix("the "),
            kind=rng.choice(QUERY_KINDS),
        )
        if text not in texts:
            texts.append(text)
    return texts


# --- vectors ----------------------------------------------------------------------------------


def document_vectors(texts: Sequence[str], *, seed: int) -> Any:
    """Vectors of ``texts`` (catalogue product 0..n-1) from the real model, cached per chunk.

    A chunk's file name carries the model, the seed, its range and a digest of its texts, so a
    changed generator or model never reads stale vectors and a 10k run reuses a 100k run's work.
    """
    import numpy as np

    from catalog.embeddings import current_model_name, get_embedding_backend

    cache_dir = BENCH_DIR / "vectors"
    cache_dir.mkdir(parents=True, exist_ok=True)
    model = current_model_name().replace(":", "_").replace("/", "_")
    parts = []
    for start in range(0, len(texts), VECTOR_CHUNK):
        end = start + VECTOR_CHUNK
        if end > len(texts):
            chunk = list(texts[start:]) + embedding_texts(
                synthetic_products_range(seed=seed, start=len(texts), stop=end)
            )
        else:
            chunk = list(texts[start:end])
        digest = hashlib.sha256("\x00".join(chunk).encode()).hexdigest()[:16]
        path = cache_dir / f"{model}-seed{seed}-{start:07d}-{end:07d}-{digest}.npy"
        if path.exists():
            vectors = np.load(path)
        else:
            log(f"embedding products {start}..{end - 1} (cache miss: {path.name})")
            started = time.perf_counter()
            backend = get_embedding_backend()
            # One call per chunk: sentence-transformers sorts a call's texts by length, so its
            # batches carry less padding than fixed slices would.
            vectors = np.asarray(backend.embed_documents(chunk), dtype=np.float32)
            seconds = time.perf_counter() - started
            log(f"  {len(chunk)} texts in {seconds:.0f} s ({len(chunk) / seconds:.0f} texts/s)")
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, vectors)
            tmp.rename(path)
        parts.append(vectors)
    return np.vstack(parts)[: len(texts)] if parts else np.zeros((0, 384), dtype=np.float32)


def synthetic_products_range(*, seed: int, start: int, stop: int) -> list[SyntheticProduct]:
    return [synthetic_product(seed, index) for index in range(start, stop)]


# --- loading ----------------------------------------------------------------------------------


# Built after the COPY rather than maintained row by row during it (GIN pending lists and HNSW
# inserts made a 100k load take minutes); the HNSW graphs by ``hnsw_index_build``.
GIN_INDEXES = ("product_search_vector_gin", "product_tags_gin")


def hnsw_index_names() -> list[str]:
    """The whole catalogue's graph, then the price ceilings' (``Product.Meta.indexes``)."""
    from catalog.models import PRODUCT_GRAPH, product_price_ceiling_indexes

    return [PRODUCT_GRAPH, *(index.name for index in product_price_ceiling_indexes())]


def product_index_sql(
    name: str, *, m: int | None = None, ef_construction: int | None = None
) -> str:
    """``CREATE INDEX`` for one of ``Product.Meta.indexes``, generated from the model itself.

    The model is what the migration was made from (``makemigrations --check`` keeps them equal),
    so a run interrupted while trying other HNSW parameters never leaves them behind.
    """
    from django.db import connection
    from pgvector.django import HnswIndex

    from catalog.models import Product

    index = next(i for i in Product._meta.indexes if i.name == name)
    if m is not None or ef_construction is not None:
        assert isinstance(index, HnswIndex)
        index = HnswIndex(
            *index.expressions,
            name=index.name,
            m=m or index.m,
            ef_construction=ef_construction or index.ef_construction,
        )
    with connection.schema_editor(collect_sql=True, atomic=False) as editor:
        return str(index.create_sql(Product, editor))


def catalog_load(
    conn: Any,
    products: Sequence[SyntheticProduct],
    vectors: Any,
    *,
    model_name: str,
    hashes: Sequence[str],
) -> float:
    """COPY the products (binary) into the emptied catalogue and rebuild its GIN indexes.

    The HNSW indexes are left dropped: build them with ``hnsw_index_build``. Returns seconds.
    """
    from datetime import UTC, datetime

    started = time.perf_counter()
    catalog_truncate(conn)
    for name in (*GIN_INDEXES, *hnsw_index_names()):
        conn.execute(f'DROP INDEX IF EXISTS "{name}"')
    now = datetime.now(tz=UTC)
    category_ids: dict[str, int] = {}
    for spec in CATEGORIES:
        row = conn.execute(
            "INSERT INTO catalog_category (created_at, updated_at, name, slug, description) "
            "VALUES (%s, %s, %s, %s, '') RETURNING id",
            [now, now, spec.name, spec.name.lower().replace(" & ", "-").replace(" ", "-")],
        ).fetchone()
        category_ids[spec.name] = row[0]
    columns = ", ".join(COPY_COLUMNS)
    statement = f"COPY catalog_product ({columns}) FROM STDIN (FORMAT BINARY)"
    with conn.transaction(), conn.cursor() as cursor, cursor.copy(statement) as copy:
        copy.set_types(list(COPY_TYPES))
        for product, vector, digest in zip(products, vectors, hashes, strict=True):
            copy.write_row(
                (
                    now, now, vector, model_name, digest, now, product.sku, product.name,
                    product.slug, product.description, product.price, "GBP",
                    product.weight_grams, product.stock, True, list(product.tags),
                    product.origin, product.floral_source, category_ids[product.category],
                )
            )  # fmt: skip
    conn.execute("SET maintenance_work_mem = '1GB'")
    for name in GIN_INDEXES:
        conn.execute(product_index_sql(name))
    conn.execute("RESET maintenance_work_mem")
    return time.perf_counter() - started


def hnsw_index_build(
    conn: Any,
    *,
    m: int | None = None,
    ef_construction: int | None = None,
    whole_only: bool = False,
) -> float:
    """(Re)create the HNSW indexes as the model defines them; seconds.

    With ``m`` or ``ef_construction`` (or ``whole_only``) only the whole catalogue's graph is
    built again, with those parameters (the unfiltered searches measured walk it alone); the
    price ceilings' graphs are left as they are. ``maintenance_work_mem``
    is raised for this session only, so a graph is built in memory (the server default of 64MB
    spills at 100k rows); the server's configuration is untouched. PostgreSQL's default
    ``max_parallel_maintenance_workers`` (2) applies.
    """
    from catalog.models import PRODUCT_GRAPH

    whole_only = whole_only or m is not None or ef_construction is not None
    names = [PRODUCT_GRAPH] if whole_only else hnsw_index_names()
    for name in names:
        conn.execute(f'DROP INDEX IF EXISTS "{name}"')
    conn.execute("SET maintenance_work_mem = '1GB'")
    started = time.perf_counter()
    conn.execute(product_index_sql(PRODUCT_GRAPH, m=m, ef_construction=ef_construction))
    for name in names[1:]:
        conn.execute(product_index_sql(name))
    seconds = time.perf_counter() - started
    conn.execute("RESET maintenance_work_mem")
    # VACUUM too, as a table in service would have been: otherwise autovacuum starts on the
    # freshly loaded rows within a minute, in the middle of what is being measured (it did, for
    # the first 9 s of a 100k exact-scan pass).
    conn.execute("VACUUM (ANALYZE) catalog_product")
    conn.execute("ANALYZE catalog_category")
    checkpoint(conn)
    return seconds


def checkpoint(conn: Any) -> None:
    """Write out what a load or a build left dirty, as a table in service would have had it
    written long ago. Otherwise PostgreSQL writes it while the benchmark measures: a load and
    build of 100k products (~550 MB of WAL) starts a checkpoint that spreads ~310 MB of writes
    over the next 270 s (``checkpoint_completion_target`` of ``checkpoint_timeout``), the very
    minutes the searches were timed in (docs/benchmarks/journal.md, "2026-12-07, 08:27")."""
    import psycopg

    try:
        conn.execute("CHECKPOINT")
    except psycopg.errors.InsufficientPrivilege:
        log("CHECKPOINT not permitted (needs pg_checkpoint): the load is written as it is measured")


# --- statistics -------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation, as numpy does."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50 / p95 / mean in milliseconds."""
    ms = [s * 1000 for s in seconds]
    return {
        "p50": percentile(ms, 50),
        "p95": percentile(ms, 95),
        "mean": statistics.fmean(ms) if ms else float("nan"),
    }


def rank_summary(found: Sequence[int]) -> list[object]:
    """Top-1, top-3 and the mean reciprocal rank of the places ``found`` (1 is first), as
    table cells."""
    count = len(found)
    return [
        f"{sum(rank == 1 for rank in found)} / {count}",
        f"{sum(rank <= 3 for rank in found)} / {count}",
        f"{sum(1 / rank for rank in found) / count:.3f}",
    ]


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


Table = tuple[Sequence[str], Sequence[Sequence[object]]]  # headers, rows


def markdown_flag(description: str, argv: Sequence[str] | None) -> bool:
    """``--markdown``, of a benchmark that takes no other argument."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--markdown", action="store_true", help="also print markdown tables")
    return parser.parse_args(argv).markdown


def tables_print(*tables: Table, markdown: bool) -> None:
    """Each table as text; then, with ``markdown``, each again as markdown."""
    for headers, rows in tables:
        print(text_table(headers, rows))
    if markdown:
        for headers, rows in tables:
            print(markdown_table(headers, rows))


def text_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
