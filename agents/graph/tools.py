"""Tools the agents may call: thin wrappers over catalog selectors and conversation services.

Who the customer is and which conversation this is come from the run's config
(``configurable.customer_id`` / ``conversation_id``), never from arguments the model fills in.
Every tool returns JSON data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, tool

from catalog import selectors as catalog_selectors
from catalog.models import KnowledgeArticle, Product

MAX_PRODUCTS = 5
MAX_ARTICLES = 3
SUMMARY_CHARS = 240


@dataclass(frozen=True)
class TurnContext:
    customer_id: int
    conversation_id: str


def turn_context(config: RunnableConfig) -> TurnContext:
    configurable = config.get("configurable", {})
    return TurnContext(
        customer_id=int(configurable["customer_id"]),
        conversation_id=str(configurable["conversation_id"]),
    )


def product_data(product: Product) -> dict[str, Any]:
    return {
        "sku": product.sku,
        "name": product.name,
        "category": product.category.name,
        "price": str(product.price),
        "currency": product.currency,
        "stock": product.stock,
        "in_stock": product.in_stock,
        "summary": product.description[:SUMMARY_CHARS],
    }


def article_data(article: KnowledgeArticle) -> dict[str, Any]:
    return {
        "slug": article.slug,
        "title": article.title,
        "topic": article.topic,
        "body": article.body,
    }


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False)


@tool
def search_products(
    query: str,
    category: str | None = None,
    max_price: float | None = None,
    in_stock_only: bool = False,
) -> str:
    """Search the Beeman Honey catalogue by meaning and keywords.

    Args:
        query: what the customer is looking for, in their words.
        category: optional category slug, e.g. "manuka-honey" or "gift-sets".
        max_price: optional highest price in GBP.
        in_stock_only: only products that can ship now.
    """
    filters = catalog_selectors.ProductFilters(
        category=category or None,
        max_price=Decimal(str(max_price)) if max_price is not None and max_price >= 0 else None,
        in_stock=True if in_stock_only else None,
    )
    hits = catalog_selectors.product_search(query=query[:300], filters=filters, limit=MAX_PRODUCTS)
    return _json({"products": [product_data(hit.item) for hit in hits]})


@tool
def get_product(sku: str) -> str:
    """Full details of one product by its sku."""
    product = catalog_selectors.product_get(sku=sku.strip())
    if product is None:
        return _json({"error": f"no product with sku {sku!r}"})
    return _json({"product": {**product_data(product), "description": product.description}})


@tool
def check_stock(sku: str) -> str:
    """How many of a product are in stock, by sku."""
    product = catalog_selectors.product_get(sku=sku.strip())
    if product is None:
        return _json({"error": f"no product with sku {sku!r}"})
    return _json({"sku": product.sku, "name": product.name, "stock": product.stock,
                  "in_stock": product.in_stock})  # fmt: skip


@tool
def search_knowledge(query: str, topic: str | None = None) -> str:
    """Search Beeman Honey's help articles (shipping, returns, storage, health, orders...).

    Args:
        query: the customer's question.
        topic: optional: shipping, returns, storage, health, beekeeping, orders or products.
    """
    valid_topic = topic if topic in KnowledgeArticle.Topic.values else None
    hits = catalog_selectors.knowledge_search(
        query=query[:300], topic=valid_topic, limit=MAX_ARTICLES
    )
    return _json({"articles": [article_data(hit.item) for hit in hits]})


@tool
def escalate_to_human(reason: str, config: RunnableConfig) -> str:
    """Pass this conversation to a member of staff. Use when the customer asks for a person
    or you cannot help.

    Args:
        reason: one short sentence for staff on why.
    """
    from conversations.services import conversation_handoff

    context = turn_context(config)
    conversation_handoff(conversation_id=context.conversation_id, reason=reason[:200])
    return _json({"escalated": True})


SALES_TOOLS: list[BaseTool] = [search_products, get_product, check_stock, escalate_to_human]
SUPPORT_TOOLS: list[BaseTool] = [search_knowledge, escalate_to_human]
