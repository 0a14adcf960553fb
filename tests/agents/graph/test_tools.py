"""The agents' tools called as the graph calls them, with arguments a model may fill in."""

import json
from decimal import Decimal
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool

from agents.graph.tools import (
    DETAIL_CHARS,
    check_stock,
    escalate_to_human,
    escalation_reason,
    get_product,
    search_knowledge,
    search_products,
)
from catalog.models import KnowledgeArticle
from catalog.services import embeddings_refresh
from conversations.models import STAFF_HANDOFF_REASONS, STAFF_TAKE_OVER_REASON, Conversation
from tests.catalog.factories import CategoryFactory, KnowledgeArticleFactory, ProductFactory
from tests.conversations.factories import ConversationFactory

pytestmark = pytest.mark.django_db


def _config(conversation: Conversation) -> RunnableConfig:
    return {
        "configurable": {
            "customer_id": conversation.owner_id,
            "conversation_id": str(conversation.id),
        }
    }


def _call(tool: BaseTool, args: dict[str, Any]) -> dict[str, Any]:
    return json.loads(tool.invoke(args, _config(ConversationFactory.create())))


@pytest.mark.parametrize("max_price", [float("inf"), "1e999", "Infinity", "NaN", -5])
def test_a_price_limit_that_is_not_a_price_is_an_error_naming_max_price(max_price: Any) -> None:
    answer = _call(search_products, {"query": "heather honey", "max_price": max_price})

    assert "max_price" in answer["error"]
    assert "products" not in answer


@pytest.mark.parametrize(
    ("tool", "args", "field"),
    [
        (get_product, {"sku": "MAN\u000015"}, "sku"),
        (check_stock, {"sku": "\u0000"}, "sku"),
        (search_products, {"query": "honey", "category": "raw\u0000honey"}, "category"),
        (escalate_to_human, {"reason": "The customer\u0000 is upset."}, "reason"),
    ],
)
def test_a_nul_character_in_an_argument_is_an_error_naming_the_field(
    tool: BaseTool, args: dict[str, Any], field: str
) -> None:
    conversation = ConversationFactory.create()

    answer = json.loads(tool.invoke(args, _config(conversation)))

    conversation.refresh_from_db()
    assert field in answer["error"]
    assert "\u0000" not in answer["error"]
    assert conversation.status == Conversation.Status.ACTIVE


def test_an_unknown_category_is_an_error_listing_the_valid_slugs() -> None:
    raw = CategoryFactory.create(slug="raw-honey")
    CategoryFactory.create(slug="manuka-honey")
    ProductFactory.create(category=raw, name="Heather Raw Honey 340g")
    embeddings_refresh(kind="products")

    unknown = _call(search_products, {"query": "heather honey", "category": "heather"})
    known = _call(search_products, {"query": "heather honey", "category": "raw-honey"})

    assert "heather" in unknown["error"]
    assert "manuka-honey" in unknown["error"]
    assert "raw-honey" in unknown["error"]
    assert [product["name"] for product in known["products"]] == ["Heather Raw Honey 340g"]


@pytest.mark.parametrize("tool", [get_product, check_stock])
def test_an_unknown_sku_is_echoed_back_cut_short(tool: BaseTool) -> None:
    answer = _call(tool, {"sku": "NO-SUCH-SKU-" + "X" * 5000})

    assert "NO-SUCH-SKU-" in answer["error"]
    assert len(answer["error"]) < 200


def test_a_product_description_given_to_the_model_is_cut_at_a_few_thousand_characters() -> None:
    product = ProductFactory.create(description="Rich and floral. " * 580)  # 9,860 characters

    answer = _call(get_product, {"sku": product.sku})

    description = answer["product"]["description"]
    assert 1000 <= len(description) <= DETAIL_CHARS
    assert product.description.startswith(description.rstrip("…"))


def test_help_article_bodies_given_to_the_model_are_cut_at_a_few_thousand_characters() -> None:
    article = KnowledgeArticleFactory.create(
        title="Storing honey", body="Keep honey in a cool dry cupboard. " * 1400
    )
    embeddings_refresh(kind="knowledge")

    answer = _call(search_knowledge, {"query": "how should I store honey?"})

    body = answer["articles"][0]["body"]
    assert len(article.body) > 40_000
    assert 1000 <= len(body) <= DETAIL_CHARS
    assert article.body.startswith(body.rstrip("…"))


def test_a_long_help_article_gives_the_model_the_paragraphs_that_answer_the_question() -> None:
    answer_paragraph = "Parcels to Canada arrive in 7 to 10 working days."
    filler = [f"Paragraph {n} is about how we wrap jars in recycled paper. " * 12 for n in range(8)]
    KnowledgeArticleFactory.create(
        title="Shipping",
        topic=KnowledgeArticle.Topic.SHIPPING,
        body="\n\n".join([*filler, answer_paragraph, *filler]),
    )
    embeddings_refresh(kind="knowledge")

    answer = _call(search_knowledge, {"query": "How long does delivery to Canada take?"})

    body = answer["articles"][0]["body"]
    assert answer_paragraph in body
    assert len(body) <= DETAIL_CHARS


def test_a_long_health_article_is_given_to_the_model_whole() -> None:
    warning = "Never give honey to a baby under 12 months old."
    article = KnowledgeArticleFactory.create(
        title="Honey and babies",
        topic=KnowledgeArticle.Topic.HEALTH,
        body="\n\n".join(["Honey is a natural food enjoyed by children and adults. " * 10] * 8
                         + [warning]),
    )  # fmt: skip
    embeddings_refresh(kind="knowledge")

    answer = _call(search_knowledge, {"query": "is honey good for children?"})

    assert len(article.body) > DETAIL_CHARS
    assert answer["articles"][0]["body"] == article.body


def test_a_huge_but_finite_price_limit_leaves_every_price_in() -> None:
    product = ProductFactory.create(name="Heather Raw Honey 340g")
    embeddings_refresh(kind="products")

    answer = _call(search_products, {"query": "heather honey", "max_price": 1e308})

    assert [found["sku"] for found in answer["products"]] == [product.sku]


def test_the_product_search_tool_keeps_to_the_price_and_order_the_customer_says() -> None:
    manuka = CategoryFactory.create(slug="manuka-honey")
    for sku, name, price in [
        ("umf-10", "Manuka Honey UMF 10+ 250g", "29.95"),
        ("umf-20", "Manuka Honey UMF 20+ 250g", "89.00"),
        ("umf-5", "Manuka Honey UMF 5+ 250g", "19.95"),
    ]:
        ProductFactory.create(sku=sku, name=name, price=Decimal(price), category=manuka)
    embeddings_refresh(kind="products")

    strongest = _call(search_products, {"query": "your strongest manuka"})
    within = _call(search_products, {"query": "manuka under £30"})

    assert [found["sku"] for found in strongest["products"]] == ["umf-20", "umf-10", "umf-5"]
    assert {found["sku"] for found in within["products"]} == {"umf-10", "umf-5"}


def test_the_model_s_hand_off_reason_is_kept_after_saying_the_assistant_passed_it_on() -> None:
    conversation = ConversationFactory.create()

    escalate_to_human.invoke({"reason": STAFF_TAKE_OVER_REASON}, _config(conversation))

    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.NEEDS_HUMAN
    assert conversation.handoff_reason == "Passed on by the assistant: Taken over by staff."
    assert conversation.handoff_reason not in STAFF_HANDOFF_REASONS


def test_a_long_hand_off_reason_is_clipped_to_fit_after_the_prefix() -> None:
    reason = escalation_reason("The customer wants a refund. " * 20)

    assert len(reason) == 200
    assert reason.startswith("Passed on by the assistant: The customer wants a refund.")
    assert reason.endswith("…")
