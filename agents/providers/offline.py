"""The offline provider: no network, no invention.

The supervisor routes by meaning (``router.semantic_route``). The agents' "model" is a
deterministic chat model: on the customer's message it calls the agent's search tool, and on the
tool's result it composes the reply from templates, so every product, price, stock level and
policy it states comes from the catalogue.
"""

from __future__ import annotations

import json
import re
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableConfig
from langchain_core.utils.function_calling import convert_to_openai_tool

from agents.graph.prompts import HANDOFF_REPLY
from agents.providers import RouteDecision
from agents.providers.router import semantic_route

PRICE_LIMIT = re.compile(r"(?:under|below|less than|max(?:imum)?|up to)\s*£?\s*(\d+(?:\.\d{1,2})?)")
IN_STOCK = re.compile(r"\b(in stock|available now|ship (?:now|today))\b")
WORD = re.compile(r"[a-z0-9]+")
MAX_RECOMMENDATIONS = 3


def _latest_question(messages: list[BaseMessage]) -> str:
    latest = next((m for m in reversed(messages) if isinstance(m, HumanMessage)), None)
    return str(latest.content) if latest else ""


def _money(amount: str, currency: str) -> str:
    return f"£{amount}" if currency == "GBP" else f"{amount} {currency}"


def compose_product_reply(products: list[dict[str, Any]]) -> str:
    if not products:
        return (
            "I couldn't find anything in our shop that matches that. Could you tell me a little "
            "more about what you're after, or would you like me to pass you to our team?"
        )
    lines = ["Here's what I'd suggest from our shop:"]
    for product in products[:MAX_RECOMMENDATIONS]:
        stock = f"{product['stock']} in stock" if product["in_stock"] else "currently sold out"
        summary = product["summary"].split(". ")[0].rstrip(".")
        lines.append(
            f"- {product['name']} — {_money(product['price'], product['currency'])} "
            f"({stock}). {summary}."
        )
    return "\n".join(lines)


def _best_paragraph(body: str, question: str) -> str:
    asked = set(WORD.findall(question.lower()))
    paragraphs = [p.strip() for p in body.split("\n\n") if p.strip()]
    return max(paragraphs, key=lambda p: len(asked & set(WORD.findall(p.lower()))), default="")


def compose_article_reply(articles: list[dict[str, Any]], question: str) -> str:
    if not articles:
        return (
            "I couldn't find an answer to that in our help articles. Would you like me to pass "
            "you to a member of our team?"
        )
    article = articles[0]
    extract = _best_paragraph(article["body"], question)
    return f'From our help article "{article["title"]}":\n\n{extract}'


class OfflineChatModel(BaseChatModel):
    """Calls the bound search tool for the customer's question, then answers from its result."""

    @property
    def _llm_type(self) -> str:
        return "beeman-offline"

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        tool_names = {tool["function"]["name"] for tool in kwargs.get("tools", [])}
        question = _latest_question(messages)
        if isinstance(messages[-1], ToolMessage):
            message = AIMessage(content=self._compose(messages[-1], question))
        elif "search_products" in tool_names:
            message = AIMessage(content="", tool_calls=[self._product_search_call(question)])
        elif "search_knowledge" in tool_names:
            call = {"name": "search_knowledge", "args": {"query": question}, "id": "offline-1"}
            message = AIMessage(content="", tool_calls=[call])
        else:
            message = AIMessage(content="")
        return ChatResult(generations=[ChatGeneration(message=message)])

    @staticmethod
    def _product_search_call(question: str) -> dict[str, Any]:
        lowered = question.lower()
        args: dict[str, Any] = {"query": question}
        if match := PRICE_LIMIT.search(lowered):
            args["max_price"] = float(match.group(1))
        if IN_STOCK.search(lowered):
            args["in_stock_only"] = True
        return {"name": "search_products", "args": args, "id": "offline-1"}

    @staticmethod
    def _compose(result: ToolMessage, question: str) -> str:
        data = json.loads(str(result.content))
        if data.get("escalated"):
            return HANDOFF_REPLY
        if "products" in data:
            return compose_product_reply(data["products"])
        return compose_article_reply(data.get("articles", []), question)


class OfflineProvider:
    name = "offline"
    model_name = "offline-templates"

    def chat_model(self) -> BaseChatModel:
        return OfflineChatModel()

    def route(self, messages: list[BaseMessage], config: RunnableConfig) -> RouteDecision:
        return RouteDecision(route=semantic_route(messages))
