"""Tools the agents may call: thin wrappers over catalog selectors and conversation services.

Who the customer is and which conversation this is come from the run's config
(``configurable.customer_id`` / ``conversation_id``), never from arguments the model fills in.
Every tool returns JSON data.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, tool

from agents.selectors import agent_run_cancelled
from beemanhoney.common.text import clip, storable_text
from catalog import selectors as catalog_selectors
from catalog.knowledge_passages import article_extract
from catalog.models import KnowledgeArticle, Product
from conversations.models import Conversation

MAX_PRODUCTS = 5
MAX_ARTICLES = 3
SUMMARY_CHARS = 240
# What one tool result may spend of the model's context: a full description or article body
# can run to tens of thousands of characters.
DETAIL_CHARS = 3000
# A model-filled argument quoted back in an error, which the model may have filled with anything.
ECHO_CHARS = 100
QUERY_CHARS = 300
MAX_SLUGS_LISTED = 50
# What the conversation's hand-off reason says before the model's own words: staff see who
# passed the conversation on, and no reason the model writes ("Taken over by staff.") reads as
# a staff take-over (``conversations.models.STAFF_HANDOFF_REASONS``).
ESCALATION_REASON_PREFIX = "Passed on by the assistant: "


@dataclass(frozen=True)
class TurnContext:
    customer_id: int
    conversation_id: str


def turn_run_id(config: RunnableConfig) -> str | None:
    """The run the turn answers; None for a graph run outside a turn (tests, benchmarks)."""
    return config.get("configurable", {}).get("run_id")


def turn_context(config: RunnableConfig) -> TurnContext:
    configurable = config.get("configurable", {})
    return TurnContext(
        customer_id=int(configurable["customer_id"]),
        conversation_id=str(configurable["conversation_id"]),
    )


@dataclass
class TurnEffects:
    """What a turn did to the conversation, kept outside the graph's state: an exception
    (a provider failing after a tool handed the conversation to staff) loses the state, and
    the run must still say it was handed off rather than fall silent."""

    handed_off: bool = False
    # The steps a tools node has finished while it runs (and the call that raised, if one
    # did): a node that raises returns no state, and its trace would be lost with it.
    steps_in_progress: list[dict[str, Any]] = field(default_factory=list)


def turn_effects(config: RunnableConfig) -> TurnEffects:
    """The run's ``TurnEffects`` (a throwaway one for a graph invoked without a run)."""
    effects = config.get("configurable", {}).get("turn_effects")
    return effects if isinstance(effects, TurnEffects) else TurnEffects()


def conversation_handed_off(config: RunnableConfig, *, reason: str) -> bool:
    """Hand the turn's conversation to staff; whether this call did (False: it was not
    active), recorded in the run's ``TurnEffects``."""
    from conversations.services import conversation_handoff

    run_id = turn_run_id(config)
    if run_id is not None and agent_run_cancelled(run_id=run_id):
        return False  # the customer cancelled or closed: staff are not to be called for it
    context = turn_context(config)
    handed_off = conversation_handoff(conversation_id=context.conversation_id, reason=reason)
    if handed_off:
        turn_effects(config).handed_off = True
    return handed_off


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


def article_data(article: KnowledgeArticle, *, question: str) -> dict[str, Any]:
    """A health article whole: its safety advice ("never give honey to a baby under 12
    months") must never be cut off. Any other, if long, as the extract that answers
    ``question`` best."""
    if article.topic == KnowledgeArticle.Topic.HEALTH:
        body = article.body
    else:
        body = article_extract(
            title=article.title, body=article.body, question=question, limit=DETAIL_CHARS
        )
    return {"slug": article.slug, "title": article.title, "topic": article.topic, "body": body}


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False)


def _error(message: str) -> str:
    return _json({"error": message})


def _has_nul(value: str | None) -> bool:
    """Whether a model-filled text holds a NUL character, which PostgreSQL text cannot."""
    return value is not None and "\x00" in value


def _nul_error(argument: str) -> str:
    return _error(f"invalid {argument}: it contains a NUL character")


def _query(text: str) -> str:
    return storable_text(text)[:QUERY_CHARS]


@tool
def search_products(
    query: str,
    category: str | None = None,
    max_price: float | None = None,
    in_stock_only: bool = False,
) -> str:
    """Search the Beeman Honey catalogue by meaning and keywords.

    Args:
        query: what the customer is looking for, in their words. A price said with a
            currency ("under £10") and order words ("cheapest", "biggest", "strongest
            manuka") are understood.
        category: optional category slug, e.g. "manuka-honey" or "gift-sets".
        max_price: optional highest price in GBP.
        in_stock_only: only products that can ship now.
    """
    if _has_nul(category):
        return _nul_error("category")
    if max_price is not None and not (math.isfinite(max_price) and max_price >= 0):
        return _error("invalid max_price: give a price in GBP, a finite number of 0 or more")
    if category and not catalog_selectors.category_exists(slug=category):
        slugs = [c.slug for c in catalog_selectors.category_list()[:MAX_SLUGS_LISTED]]
        return _error(
            f"unknown category {clip(category, ECHO_CHARS)!r}; valid slugs: {', '.join(slugs)}"
        )
    filters = catalog_selectors.ProductFilters(
        category=category or None,
        max_price=Decimal(str(max_price)) if max_price is not None else None,
        in_stock=True if in_stock_only else None,
    )
    hits = catalog_selectors.product_search(
        query=_query(query), filters=filters, limit=MAX_PRODUCTS
    )
    return _json({"products": [product_data(hit.item) for hit in hits]})


@tool
def get_product(sku: str) -> str:
    """Full details of one product by its sku."""
    if _has_nul(sku):
        return _nul_error("sku")
    product = catalog_selectors.product_get(sku=sku.strip())
    if product is None:
        return _error(f"no product with sku {clip(sku, ECHO_CHARS)!r}")
    description = clip(product.description, DETAIL_CHARS)
    return _json({"product": {**product_data(product), "description": description}})


@tool
def check_stock(sku: str) -> str:
    """How many of a product are in stock, by sku."""
    if _has_nul(sku):
        return _nul_error("sku")
    product = catalog_selectors.product_get(sku=sku.strip())
    if product is None:
        return _error(f"no product with sku {clip(sku, ECHO_CHARS)!r}")
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
    question = _query(query)
    hits = catalog_selectors.knowledge_search(query=question, topic=valid_topic, limit=MAX_ARTICLES)
    return _json({"articles": [article_data(hit.item, question=question) for hit in hits]})


@tool
def escalate_to_human(reason: str, config: RunnableConfig) -> str:
    """Pass this conversation to a member of staff. Use when the customer asks for a person
    or you cannot help.

    Args:
        reason: one short sentence for staff on why.
    """
    if _has_nul(reason):
        return _nul_error("reason")
    conversation_handed_off(config, reason=escalation_reason(reason))
    return _json({"escalated": True})


def escalation_reason(reason: str) -> str:
    """The model's ``reason`` as the conversation keeps it: after ``ESCALATION_REASON_PREFIX``,
    clipped to fit the field."""
    limit = Conversation._meta.get_field("handoff_reason").max_length or 200
    said = " ".join(storable_text(reason).split()) or "no reason given"
    return ESCALATION_REASON_PREFIX + clip(said, limit - len(ESCALATION_REASON_PREFIX))


SALES_TOOLS: list[BaseTool] = [search_products, get_product, check_stock, escalate_to_human]
SUPPORT_TOOLS: list[BaseTool] = [search_knowledge, escalate_to_human]
