"""A small, real, embedded catalogue for end-to-end turns."""

from decimal import Decimal

from rest_framework.test import APIClient

from catalog.models import KnowledgeArticle, Product
from catalog.services import embeddings_refresh
from conversations.models import Conversation
from tests.catalog.factories import CategoryFactory, KnowledgeArticleFactory, ProductFactory
from tests.conversations.factories import ConversationFactory


def small_shop_create() -> dict[str, Product]:
    manuka = CategoryFactory.create(name="Manuka Honey", slug="manuka-honey")
    raw = CategoryFactory.create(name="Raw Honey", slug="raw-honey")
    wax = CategoryFactory.create(name="Beeswax Goods", slug="beeswax-goods")
    products = {
        "manuka": ProductFactory.create(
            sku="MAN-15", name="Manuka Honey UMF 15+ 250g", category=manuka, price=Decimal("44.95"),
            stock=12, description="A strong Manuka honey, traditionally taken by the spoonful "
            "to soothe a sore throat in the cold season.", tags=["manuka"],
        ),
        "buckwheat": ProductFactory.create(
            sku="RAW-BUCK", name="Buckwheat Raw Honey 340g", category=raw, price=Decimal("11.50"),
            stock=30, description="Dark, malty and robust: a baker's honey for rye bread, "
            "gingerbread and marinades.", tags=["raw", "baking"],
        ),
        "acacia": ProductFactory.create(
            sku="RAW-ACA", name="Acacia Raw Honey 500g", category=raw, price=Decimal("13.25"),
            stock=0, description="Very mild and pale, stays runny for months; lovely in tea.",
        ),
        "wraps": ProductFactory.create(
            sku="WAX-WRAP", name="Beeswax Food Wraps Set of 3", category=wax,
            price=Decimal("16.00"), stock=40, description="Plastic-free wraps of cotton and "
            "beeswax to cover bowls and wrap sandwiches instead of cling film.", tags=[],
        ),
    }  # fmt: skip
    KnowledgeArticleFactory.create(
        slug="uk-delivery", title="UK delivery times and costs", topic="shipping",
        body="UK standard delivery takes 2-4 working days and costs £3.95, free over £40.\n\n"
        "Next-day delivery costs £6.95 when you order before 1pm.",
    )  # fmt: skip
    KnowledgeArticleFactory.create(
        slug="returns-policy", title="Returns policy", topic="returns",
        body="You can return unopened items within 30 days for a full refund.",
    )  # fmt: skip
    embeddings_refresh(kind="products")
    embeddings_refresh(kind="knowledge")
    assert Product.objects.filter(embedding__isnull=False).count() == 4
    assert KnowledgeArticle.objects.filter(embedding__isnull=False).count() == 2
    return products


def customer_in_small_shop() -> tuple[APIClient, Conversation]:
    """The small shop, and a client logged in as the owner of a new conversation in it."""
    small_shop_create()
    conversation = ConversationFactory.create()
    client = APIClient()
    client.force_authenticate(conversation.owner)
    return client, conversation
