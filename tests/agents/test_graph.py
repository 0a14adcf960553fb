"""The graph on its own, in-process: routing, offline replies, and the step limit."""

from collections.abc import Sequence
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableConfig

from agents.graph.builder import build_graph
from agents.graph.names import Route
from agents.graph.prompts import STEP_LIMIT_REPLY
from agents.providers import RouteDecision
from agents.providers.offline import compose_product_reply
from agents.providers.recommendations import recommended_names
from agents.providers.router import semantic_route
from tests.conversations.factories import ConversationFactory
from tests.support.fake_openai import FakeOpenAIServer, HttpError


class AlwaysSearchingModel(BaseChatModel):
    """A scripted model that never stops asking for a tool."""

    @property
    def _llm_type(self) -> str:
        return "always-searching"

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        call = {"name": "search_knowledge", "args": {"query": "again"}, "id": "loop"}
        return ChatResult(generations=[ChatGeneration(message=AIMessage("", tool_calls=[call]))])


class LoopingProvider:
    name = "looping"
    model_name = "looping"

    def chat_model(self) -> BaseChatModel:
        return AlwaysSearchingModel()

    def route(self, messages: Sequence[BaseMessage], config: RunnableConfig) -> RouteDecision:
        return RouteDecision(route=Route.SUPPORT)


@pytest.mark.django_db
def test_a_model_that_keeps_asking_for_tools_stops_at_the_step_limit(settings) -> None:
    settings.AGENT_MAX_MODEL_CALLS = 3
    conversation = ConversationFactory.create()
    config = {"configurable": {"customer_id": conversation.owner_id,
                               "conversation_id": str(conversation.id)}}  # fmt: skip

    state = build_graph(provider=LoopingProvider()).invoke(
        {"messages": [HumanMessage("Where is my order?")]}, config
    )

    assert state["messages"][-1].content == STEP_LIMIT_REPLY
    assert state["model_calls"] == 3
    assert len(state["tool_calls"]) == 3


# Also read by bench.routing.
OFFLINE_ROUTES = [
    ("I'm after a jar of honey to give my dad for his birthday", Route.SALES),
    ("how much does it cost to send an order to Germany?", Route.SUPPORT),
    ("my jar smashed in the post", Route.SUPPORT),
    ("please let me speak with a real human being", Route.HANDOFF),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("message", "route"), OFFLINE_ROUTES)
def test_the_offline_supervisor_routes_by_meaning(message: str, route: Route) -> None:
    assert semantic_route([HumanMessage(message)]) == route


def test_the_offline_supervisor_routes_by_keywords_while_the_embedding_api_is_away(
    openai_embeddings: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    openai_embeddings.script_embedding_errors(HttpError(503), HttpError(503))

    route = semantic_route([HumanMessage("a real human being, please")])

    assert route == Route.HANDOFF
    assert "agents.route_without_embedding" in caplog.text


def test_offline_product_replies_use_only_catalogue_facts() -> None:
    products = [
        {"name": "Heather Honey 340g", "price": "12.95", "currency": "GBP", "stock": 4,
         "in_stock": True, "summary": "Jelly-like heather honey. From the moors."},
        {"name": "Acacia Honey 500g", "price": "13.25", "currency": "GBP", "stock": 0,
         "in_stock": False, "summary": "Mild and runny."},
    ]  # fmt: skip

    reply = compose_product_reply(products)

    assert "- Heather Honey 340g — £12.95 (4 in stock). Jelly-like heather honey." in reply
    assert "- Acacia Honey 500g — £13.25 (currently sold out). Mild and runny." in reply
    assert recommended_names(reply) == ["Heather Honey 340g", "Acacia Honey 500g"]


def test_a_stock_question_whose_first_product_is_sold_out_says_so_first() -> None:
    products = [
        {"name": "Acacia Honey 500g", "price": "13.25", "currency": "GBP", "stock": 0,
         "in_stock": False, "summary": "Mild and runny."},
        {"name": "Lime Honey 340g", "price": "9.95", "currency": "GBP", "stock": 0,
         "in_stock": False, "summary": "Pale and minty."},
        {"name": "Heather Honey 340g", "price": "12.95", "currency": "GBP", "stock": 4,
         "in_stock": True, "summary": "Jelly-like heather honey. From the moors."},
    ]  # fmt: skip

    reply = compose_product_reply(products, question="Is the acacia honey in stock?")

    assert reply.splitlines()[0] == "Sorry, the Acacia Honey 500g is sold out at the moment."
    assert "- Acacia Honey 500g — £13.25 (currently sold out). Mild and runny." in reply
    # Offered instead: the in-stock products found, not another sold-out one.
    assert recommended_names(reply) == ["Acacia Honey 500g", "Heather Honey 340g"]
    assert "back in stock" not in reply  # no restock date is known, and none is asked for
