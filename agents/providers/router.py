"""Routing by meaning: the customer's message against example utterances of each route."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from langchain_core.messages import BaseMessage, HumanMessage

from agents.graph.names import Route
from catalog.embeddings import embed_query, get_embedding_backend, query_embedding_errors

logger = logging.getLogger(__name__)

EXAMPLES: dict[Route, list[str]] = {
    Route.SALES: [
        "do you have a honey for sore throats",
        "what would you recommend as a gift",
        "I'm looking for a dark honey for baking",
        "how much is the manuka honey",
        "is the acacia honey in stock",
        "show me your beeswax candles",
        "which honey is best with cheese",
        "something spicy for pizza",
        "what creamed honey do you sell",
        "cheapest raw honey you have",
        "I need a present for my mum under 30 pounds",
        "do you sell bee pollen",
        "I'm looking for a birthday present for my dad",
        "I'd like to buy a jar of honey",
        "what's good on toast",
        "have you got any honey from Scotland",
    ],
    Route.SUPPORT: [
        "how long does delivery take",
        "how much is shipping to France",
        "can I return an opened jar",
        "my jar arrived broken",
        "when will I get my refund",
        "my honey has gone solid and grainy",
        "how should I store honey",
        "can I give honey to my baby",
        "is your honey safe if I have a pollen allergy",
        "what does UMF mean on manuka",
        "how do I track my order",
        "can I change my delivery address",
        "how do you look after your bees",
        "what payment methods do you accept",
    ],
    Route.HANDOFF: [
        "can I talk to a person",
        "I want to speak to a human",
        "put me through to customer service",
        "let me talk to a real person please",
        "I want to make a complaint to a manager",
        "this bot is useless, get me someone",
        "can someone from your team call me",
        "I need help from a member of staff",
    ],
}


# Routing by words, for when the embedding API is away (the very outage the offline provider
# covers): a request for a person or a policy, delivery or safety question must not get a
# product list.
HANDOFF_WORDS = re.compile(
    r"\b(?:human|person|agent|someone|somebody|staff|complain(?:t|ts|ed|ing)?|manager"
    r"|customer service|operator|representative)\b"
)
SUPPORT_WORDS = re.compile(
    r"\b(?:deliver(?:y|ies|ed)?|shipping|ship(?:ped)?|postage|posted|courier|dispatch(?:ed)?"
    r"|track(?:ing)?|my order|return(?:s|ed|ing)?|refund(?:s|ed)?|cancel(?:led|ling)?|broken"
    r"|damaged|smashed|leak(?:s|ed|ing)?|store|storing|storage|crystalli[sz](?:e|es|ed|ing|ation)"
    r"|grainy|solid|shelf life|best before|bab(?:y|ies)|infants?|toddlers?|newborns?"
    r"|allerg(?:y|ies|ic)|pregnan(?:t|cy)|breastfeeding|safe|safety|botulism|payment|customs)\b"
)


def keyword_route(text: str) -> Route:
    """The route the words of ``text`` ask for: a person first, then support, else sales."""
    lowered = text.lower()
    if HANDOFF_WORDS.search(lowered):
        return Route.HANDOFF
    if SUPPORT_WORDS.search(lowered):
        return Route.SUPPORT
    return Route.SALES


@lru_cache(maxsize=2)
def _example_matrix(model_name: str) -> tuple[np.ndarray, list[Route]]:
    routes = [route for route, examples in EXAMPLES.items() for _ in examples]
    texts = [text for examples in EXAMPLES.values() for text in examples]
    return np.asarray(get_embedding_backend().embed_documents(texts)), routes


def semantic_route(messages: Sequence[BaseMessage]) -> Route:
    """The route whose examples the latest customer message is most like (mean of the best 2)."""
    latest = next((m for m in reversed(messages) if isinstance(m, HumanMessage)), None)
    if latest is None:
        return Route.SALES
    try:
        matrix, routes = _example_matrix(get_embedding_backend().model_name)
        vector = embed_query(str(latest.content))
    except query_embedding_errors():
        # The embedding API is away: route by words; every agent's search still answers by
        # keywords.
        route = keyword_route(str(latest.content))
        logger.exception("agents.route_without_embedding", extra={"route": route})
        return route
    similarities = matrix @ np.asarray(vector)
    best: dict[Route, float] = {}
    for route in EXAMPLES:
        scores = sorted((s for s, r in zip(similarities, routes, strict=True) if r == route))
        best[route] = float(np.mean(scores[-2:]))
    return max(best, key=lambda route: best[route])


def warm_up() -> None:
    """Load the embedding model and embed the route examples (seconds, once per process)."""
    _example_matrix(get_embedding_backend().model_name)
