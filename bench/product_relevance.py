"""How often the product search puts the product a customer means first, on the demo shop.

The demo catalogue (``catalog/demo_data/products.json``, 66 products) is written into a
database of its own (``beemanhoney_bench_demo``, so the 100k catalogue of ``bench.search``
stays), replacing its products, and embedded. Each query is searched through
``catalog.selectors.product_search``; top-1, top-3 and the mean reciprocal rank are printed per
set of queries, then every query whose product does not come first.

- ``general``: the test suite's natural-language queries (``tests/catalog/test_selectors.py``:
  described needs, queries sharing no word with the product, order words); the tests hold each
  to the top 3 (the order words to first place).
- ``exact (tuning)``: a product named by its grade, size, flower or place ("UMF 15",
  "wildflower 1kg"), written to choose how a search counts the rows holding every word of the
  query (``catalog.selectors._fuse``): its figure flatters that choice.
- ``exact (held out)``: more such queries, written after the choice; they tune nothing.
- ``order words``: "cheapest ...", "biggest ..." and the like, each with the product the order
  asks for among those the query names. Written to check which results an order sorts
  (``catalog.selectors._named_among``, 2026-12-03); the rule was made for two other queries
  (in the tests), though a few of these were looked at first.
- ``order words in a sentence``: eight of those orders said as a customer types them, with
  words around them that name no product ("actually never mind, what's the cheapest candle?").
- ``order phrasings``: fifteen more, many naming a container ("biggest jar of honey", "cheapest
  gift box"), written before any was run, to check the two sets above did not tune the rule;
  a rule was then chosen on it too (a subject that is a category's name sorts that category).
- ``order words (held out)``: twelve more, written after that choice; they tune nothing.
- ``order words across categories``: twelve whose named products span categories ("most
  expensive candle": the candles and a candle gift box), written to try one more rule (keep to
  the category most of them share), which gained nothing on them and was not kept.
- ``misspelt``: twenty products asked for with a word misspelt as customers type them
  ("lavendar honey", "propolis capsuls"), written on 2026-12-04 (16:20) before the keyword
  half corrected any spelling (``catalog.spelling``).
- ``misspelt (held out)``: sixteen more, written after the correction was made; they tune
  nothing.

    DEBUG=1 HF_HUB_OFFLINE=1 python -m bench.product_relevance [--markdown]
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from bench import BENCH_DIR, bench_django_setup, log, markdown_flag, rank_summary, tables_print

DATABASE = "beemanhoney_bench_demo"
EXACT_QUERIES: tuple[tuple[str, str], ...] = (
    ("UMF 15", "BH-MAN-003"),
    ("UMF 20", "BH-MAN-004"),
    ("umf 5", "BH-MAN-001"),
    ("UMF 10+", "BH-MAN-002"),
    ("MGO 100", "BH-MAN-005"),
    ("manuka 15+", "BH-MAN-003"),
    ("UMF 15+ manuka 250g", "BH-MAN-003"),
    ("mgo 100+ 500g", "BH-MAN-005"),
    ("heather comb honey", "BH-CMB-002"),
    ("creamed heather", "BH-CRM-006"),
    ("wildflower 1kg", "BH-RAW-002"),
    ("wildflower honey 500g", "BH-RAW-001"),
    ("lime blossom", "BH-RAW-006"),
    ("orange blossom honey", "BH-RAW-009"),
    ("chestnut honey", "BH-RAW-008"),
    ("truffle honey", "BH-INF-005"),
    ("vanilla honey", "BH-INF-007"),
    ("scotch bonnet", "BH-INF-002"),
    ("pillar candle", "BH-WAX-003"),
    ("tealights", "BH-WAX-005"),
    ("beeswax block", "BH-WAX-008"),
    ("hive tool", "BH-ACC-004"),
    ("bee hotel", "BH-ACC-008"),
    ("royal jelly", "BH-POL-005"),
    ("propolis tincture", "BH-POL-003"),
    ("bee pollen granules", "BH-POL-001"),
    ("british bee pollen", "BH-POL-002"),
    ("manuka sachets", "BH-MAN-007"),
    ("manuka lozenges", "BH-MAN-006"),
    ("cinnamon creamed honey", "BH-CRM-002"),
    ("lemon creamed honey", "BH-CRM-003"),
    ("ginger and lemon honey", "BH-INF-004"),
    ("honey from Crete", "BH-RAW-010"),
    ("Italian chestnut", "BH-RAW-008"),
    ("rapeseed honey", "BH-CRM-004"),
    ("eucalyptus", "BH-RAW-011"),
    ("glass honey pot", "BH-ACC-003"),
    ("olivewood dipper", "BH-ACC-001"),
    ("beech dipper", "BH-ACC-002"),
    ("cheese hamper", "BH-GFT-005"),
    ("wedding favours", "BH-GFT-001"),
    ("tasting trio", "BH-GFT-003"),
    ("manuka gift box", "BH-GFT-004"),
    ("furniture polish", "BH-WAX-007"),
    ("food wraps", "BH-WAX-001"),
    ("mini comb squares", "BH-CMB-005"),
    ("honeycomb frame", "BH-CMB-003"),
    ("cut comb", "BH-CMB-001"),
    ("chunk honey", "BH-CMB-004"),
    ("spoon set", "BH-ACC-006"),
    ("propolis capsules", "BH-POL-006"),
    ("raw propolis", "BH-POL-007"),
    ("acacia honey", "BH-RAW-004"),
    ("buckwheat", "BH-RAW-003"),
    ("clover honey", "BH-RAW-007"),
    ("heather honey from the moors", "BH-RAW-005"),
)
HELD_OUT_EXACT_QUERIES: tuple[tuple[str, str], ...] = (
    ("manuka 20+", "BH-MAN-004"),
    ("umf 10 manuka honey", "BH-MAN-002"),
    ("mgo100", "BH-MAN-005"),
    ("the 1kg wildflower", "BH-RAW-002"),
    ("500g acacia", "BH-RAW-004"),
    ("340g buckwheat", "BH-RAW-003"),
    ("set of 12 tealights", "BH-WAX-005"),
    ("24 wedding jars", "BH-GFT-001"),
    ("4 wooden spoons", "BH-ACC-006"),
    ("60 propolis capsules", "BH-POL-006"),
    ("20ml throat spray", "BH-POL-004"),
    ("30ml propolis drops", "BH-POL-003"),
    ("100g british pollen", "BH-POL-002"),
    ("manuka lozenges 20", "BH-MAN-006"),
    ("15cm beeswax candle", "BH-WAX-003"),
    ("200ml polish", "BH-WAX-007"),
    ("250g pure beeswax", "BH-WAX-008"),
    ("400g honeycomb slab", "BH-CMB-003"),
    ("227g heather comb", "BH-CMB-002"),
    ("comb squares 4 x 50g", "BH-CMB-005"),
    ("pair of dinner candles", "BH-WAX-004"),
    ("bread wrap", "BH-WAX-002"),
    ("sea salt honey", "BH-INF-006"),
    ("lavender honey", "BH-INF-003"),
    ("cacao honey", "BH-CRM-005"),
    ("bee suit and smoker", "BH-ACC-005"),
    ("hot honey gift set", "BH-GFT-006"),
    ("corporate gift box", "BH-GFT-002"),
    ("new zealand manuka umf 5", "BH-MAN-001"),
    ("manuka snap sachets", "BH-MAN-007"),
    ("yorkshire wildflower honey", "BH-RAW-001"),
    ("greek thyme honey", "BH-RAW-010"),
    ("spanish orange blossom", "BH-RAW-009"),
    ("romanian acacia", "BH-RAW-004"),
    ("cotswolds lime honey", "BH-RAW-006"),
    ("herefordshire clover", "BH-RAW-007"),
)
ORDER_WORD_QUERIES: tuple[tuple[str, str], ...] = (
    ("cheapest acacia honey", "BH-RAW-004"),
    ("most expensive manuka", "BH-MAN-004"),
    ("cheapest comb honey", "BH-CMB-004"),
    ("biggest comb honey", "BH-CMB-003"),
    ("cheapest beeswax candles", "BH-WAX-004"),
    ("biggest beeswax candle", "BH-WAX-003"),
    ("cheapest propolis", "BH-POL-007"),
    ("cheapest bee pollen", "BH-POL-002"),
    ("biggest bee pollen", "BH-POL-001"),
    ("cheapest hot honey", "BH-INF-001"),
    ("most expensive heather honey", "BH-CMB-002"),
    ("biggest heather honey", "BH-RAW-005"),
    ("cheapest honey dipper", "BH-ACC-002"),
    ("smallest manuka", "BH-MAN-007"),
    ("cheapest lemon honey", "BH-CRM-003"),
    ("mildest manuka", "BH-MAN-001"),
    ("cheapest wildflower honey", "BH-RAW-001"),
    ("largest raw honey", "BH-RAW-002"),
    ("cheapest gift set", "BH-GFT-006"),
    ("cheapest beeswax wrap", "BH-WAX-002"),
    # Subjects that name one product: the order has nothing to sort.
    ("biggest heather raw honey", "BH-RAW-005"),
    ("cheapest manuka lozenges", "BH-MAN-006"),
    ("cheapest vanilla honey", "BH-INF-007"),
    ("biggest truffle honey", "BH-INF-005"),
    ("cheapest lavender honey", "BH-INF-003"),
    ("biggest beeswax polish", "BH-WAX-007"),
    ("cheapest chunk honey", "BH-CMB-004"),
)
# Orders said in a sentence, with words that name no product around them.
ORDER_IN_A_SENTENCE_QUERIES: tuple[tuple[str, str], ...] = (
    ("actually never mind, what's the cheapest candle?", "BH-WAX-004"),
    ("hello! which is your cheapest bee pollen please", "BH-POL-002"),
    ("could you tell me the biggest heather honey you sell", "BH-RAW-005"),
    ("what is the most expensive manuka you stock", "BH-MAN-004"),
    ("looking for your smallest manuka for my handbag", "BH-MAN-007"),
    ("I need the cheapest honey dipper you've got", "BH-ACC-002"),
    ("my husband wants the largest raw honey", "BH-RAW-002"),
    ("hi there, cheapest lemon honey?", "BH-CRM-003"),
)
# More orders as customers phrase them, many naming a container ("jar", "pot", "pack", "box").
ORDER_PHRASINGS_QUERIES: tuple[tuple[str, str], ...] = (
    ("biggest jar of honey", "BH-RAW-002"),
    ("largest pot of honey", "BH-RAW-002"),
    ("biggest pack of manuka", "BH-MAN-005"),
    ("cheapest gift box", "BH-GFT-007"),
    ("what's your cheapest creamed honey?", "BH-CRM-004"),
    ("I'm after the strongest manuka you have", "BH-MAN-004"),
    ("which candle is the biggest?", "BH-WAX-003"),
    ("cheapest manuka honey jar", "BH-MAN-001"),
    ("priciest gift hamper", "BH-GFT-005"),
    ("mildest manuka for my kids", "BH-MAN-001"),
    ("biggest raw honey please", "BH-RAW-002"),
    ("cheapest propolis spray", "BH-POL-004"),
    ("most expensive comb honey", "BH-CMB-003"),
    ("cheapest beeswax wrap please", "BH-WAX-002"),
    ("largest bee pollen tub", "BH-POL-001"),
)
# Written after the rule for a category's name was chosen on the sets above; they tune nothing.
ORDER_HELD_OUT_QUERIES: tuple[tuple[str, str], ...] = (
    ("cheapest raw honey", "BH-RAW-007"),
    ("biggest creamed honey", "BH-CRM-004"),
    ("most expensive infused honey", "BH-INF-005"),
    ("biggest beeswax candle you sell", "BH-WAX-003"),
    ("priciest raw honey", "BH-RAW-002"),
    ("which gift set is cheapest", "BH-GFT-006"),
    ("largest heather honey", "BH-RAW-005"),
    ("cheapest thyme honey", "BH-RAW-010"),
    ("what's the biggest comb honey you have?", "BH-CMB-003"),
    ("cheapest bee pollen and propolis", "BH-POL-007"),
    ("most expensive beeswax goods", "BH-WAX-003"),
    ("smallest infused honey", "BH-INF-005"),
)
# Products named across categories; written before a rule was tried on them.
ORDER_ACROSS_CATEGORIES_QUERIES: tuple[tuple[str, str], ...] = (
    ("smallest heather honey", "BH-CMB-002"),
    ("cheapest manuka", "BH-MAN-006"),
    ("most expensive candle", "BH-WAX-003"),
    ("smallest candle", "BH-WAX-004"),
    ("biggest propolis", "BH-POL-003"),
    ("cheapest lavender", "BH-INF-003"),
    ("most expensive acacia honey", "BH-INF-005"),
    ("biggest acacia honey", "BH-RAW-004"),
    ("cheapest chilli honey", "BH-INF-001"),
    ("biggest manuka honey", "BH-MAN-005"),
    ("cheapest beeswax", "BH-WAX-006"),
    ("most expensive heather", "BH-CMB-002"),
)
LIMIT = 20  # a rank past it counts as LIMIT + 1 in the mean


MISSPELT_QUERIES = [
    ("lavendar honey", "BH-INF-003"),
    ("chesnut honey", "BH-RAW-008"),
    ("eucalyptis honey", "BH-RAW-011"),
    ("buckweat honey", "BH-RAW-003"),
    ("acaica honey", "BH-RAW-004"),
    ("rosemery and sea salt honey", "BH-INF-006"),
    ("trufle honey", "BH-INF-005"),
    ("vanila honey", "BH-INF-007"),
    ("cinammon creamed honey", "BH-CRM-002"),
    ("propolis capsuls", "BH-POL-006"),
    ("propolis tincure", "BH-POL-003"),
    ("beeswax furniture pollish", "BH-WAX-007"),
    ("olivewod honey dipper", "BH-ACC-001"),
    ("solitery bee hotel", "BH-ACC-008"),
    ("royal jely in honey", "BH-POL-005"),
    ("beeswax sandwhich wrap", "BH-WAX-002"),
    ("pilar candle", "BH-WAX-003"),
    ("manuka lozenjes", "BH-MAN-006"),
    ("scoth bonnet honey", "BH-INF-002"),
    ("lime blosom honey", "BH-RAW-006"),
]

MISSPELT_HELD_OUT_QUERIES = [
    ("wildflowr honey 1kg", "BH-RAW-002"),
    ("heathar raw honey", "BH-RAW-005"),
    ("orange blosson honey", "BH-RAW-009"),
    ("eucaliptus honey", "BH-RAW-011"),
    ("beeswax tealihgts", "BH-WAX-005"),
    ("honey & beeswax lip blam", "BH-WAX-006"),
    ("rapseed set honey", "BH-CRM-004"),
    ("ginger and lemmon honey", "BH-INF-004"),
    ("truffel honey", "BH-INF-005"),
    ("manuka snap sachetts", "BH-MAN-007"),
    ("bee polen granules", "BH-POL-001"),
    ("beekeepng starter kit", "BH-ACC-005"),
    ("honeycomb fram slab", "BH-CMB-003"),
    ("olive wood honey diper", "BH-ACC-001"),
    ("solitary bee hotell", "BH-ACC-008"),
    ("beeswax furnature polish", "BH-WAX-007"),
]


def query_sets() -> dict[str, Sequence[tuple[str, str]]]:
    from tests.catalog.test_selectors import (
        ORDERED_QUERIES,
        QUERIES,
        SEMANTIC_ONLY_QUERIES,
    )

    return {
        "general": [*QUERIES, *SEMANTIC_ONLY_QUERIES, *ORDERED_QUERIES],
        "exact (tuning)": EXACT_QUERIES,
        "exact (held out)": HELD_OUT_EXACT_QUERIES,
        "order words": ORDER_WORD_QUERIES,
        "order words in a sentence": ORDER_IN_A_SENTENCE_QUERIES,
        "order phrasings": ORDER_PHRASINGS_QUERIES,
        "order words (held out)": ORDER_HELD_OUT_QUERIES,
        "order words across categories": ORDER_ACROSS_CATEGORIES_QUERIES,
        "misspelt": MISSPELT_QUERIES,
        "misspelt (held out)": MISSPELT_HELD_OUT_QUERIES,
    }


def ranks(queries: Sequence[tuple[str, str]]) -> list[int]:
    """Each query's product's place in its search (LIMIT + 1 where it is not found)."""
    from catalog.selectors import ProductFilters, product_search

    found = []
    for query, sku in queries:
        hits = product_search(query=query, filters=ProductFilters(), limit=LIMIT)
        skus = [hit.item.sku for hit in hits]
        found.append(skus.index(sku) + 1 if sku in skus else LIMIT + 1)
    return found


def demo_products_load() -> int:
    """The demo catalogue, written directly (an import queues embedding tasks on the broker,
    which a development worker sharing it would take up), embedded; how many were embedded."""
    from django.utils.text import slugify

    from catalog.management.commands.load_demo_data import DEMO_DATA_DIR
    from catalog.models import Category, Product
    from catalog.services import catalog_statistics_refresh, embeddings_refresh

    rows = json.loads((DEMO_DATA_DIR / "products.json").read_text())
    Product.objects.all().delete()
    Category.objects.all().delete()
    categories = {
        name: Category.objects.create(name=name, slug=slugify(name))
        for name in dict.fromkeys(row["category"] for row in rows)
    }
    Product.objects.bulk_create(
        Product(**{**row, "category": categories[row["category"]], "slug": slugify(row["name"])})
        for row in rows
    )
    embedded = embeddings_refresh(kind="products").embedded
    catalog_statistics_refresh()
    return embedded


def demo_shop_ready() -> None:
    """Django set up on ``DATABASE``, holding the demo catalogue, embedded."""
    bench_django_setup(database=DATABASE)
    log(f"embedded {demo_products_load()} demo products")


def main(argv: Sequence[str] | None = None) -> int:
    markdown = markdown_flag(__doc__.split("\n\n")[0], argv)
    demo_shop_ready()
    sets = query_sets()
    found = {name: ranks(queries) for name, queries in sets.items()}

    headers = ["queries", "count", "product first", "in the top 3", "mean reciprocal rank"]
    rows = [[name, len(places), *rank_summary(places)] for name, places in found.items()]
    miss_headers = ["queries", "query", "product", "place"]
    misses = [
        [name, query, sku, place]
        for name, queries in sets.items()
        for (query, sku), place in zip(queries, found[name], strict=True)
        if place > 1
    ]
    tables_print((headers, rows), (miss_headers, misses), markdown=markdown)
    (BENCH_DIR / "product-relevance.json").write_text(json.dumps(found))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
