"""One turn: the conversation's history in, the graph's reply and trace out."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import openai
from django.conf import settings
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig

from agents.graph.builder import build_graph
from agents.graph.prompts import PROMPT_FINGERPRINTS, STEP_LIMIT_REPLY, WITHHELD_REPLY
from agents.models import AgentRun
from agents.providers import get_chat_provider
from conversations.models import Message
from conversations.selectors import conversation_history

logger = logging.getLogger(__name__)


@dataclass
class TurnResult:
    reply: str
    route: str
    agent: str
    provider: str
    model_name: str
    nodes: list[str] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model_calls: int = 0
    note: str = ""  # for staff: a fallback taken, a reply withheld, a budget hit
    cards: list[dict[str, Any]] = field(default_factory=list)


@lru_cache(maxsize=2)
def _graph(provider_name: str) -> Any:
    return build_graph(provider=get_chat_provider(provider_name))


def history_messages(messages: list[Message]) -> list[BaseMessage]:
    converted: list[BaseMessage] = []
    for message in messages:
        if message.role == Message.Role.USER:
            converted.append(HumanMessage(message.content))
        else:
            converted.append(AIMessage(message.content, name=message.agent or message.role))
    return converted


def _reply(state: dict[str, Any]) -> tuple[str, str]:
    for message in reversed(state["messages"]):
        if isinstance(message, AIMessage) and not message.tool_calls and message.content:
            return str(message.content), message.name or ""
    return STEP_LIMIT_REPLY, ""


CARD_FIELDS = ("sku", "name", "price", "currency", "stock", "in_stock")


def product_cards(messages: list[BaseMessage], reply: str) -> list[dict[str, Any]]:
    """The products this turn's tools returned that the reply names, in the reply's order."""
    found: dict[str, dict[str, Any]] = {}
    for message in messages:
        if not isinstance(message, ToolMessage):
            continue
        try:
            data = json.loads(str(message.content))
        except ValueError:
            continue
        products = data.get("products") or ([data["product"]] if "product" in data else [])
        for product in products:
            if product.get("name") and product["name"] in reply:
                found.setdefault(product["sku"], {key: product[key] for key in CARD_FIELDS})
    return sorted(found.values(), key=lambda card: reply.index(card["name"]))


def reply_leaks_instructions(reply: str) -> bool:
    lowered = reply.lower()
    return any(fingerprint.lower() in lowered for fingerprint in PROMPT_FINGERPRINTS)


def run_turn(*, run: AgentRun) -> TurnResult:
    """Answer the run's message with the configured provider, or the fallback if it fails."""
    history = conversation_history(
        conversation=run.conversation,
        up_to=run.user_message,
        limit=settings.AGENT_HISTORY_MESSAGES,
    )
    config: RunnableConfig = {
        "configurable": {
            "customer_id": run.conversation.owner_id,
            "conversation_id": str(run.conversation_id),
            "run_id": str(run.pk),
        },
        "recursion_limit": 4 * settings.AGENT_MAX_MODEL_CALLS + 8,
    }
    messages = history_messages(history)
    try:
        return _invoke(settings.LLM_PROVIDER, messages, config)
    except openai.APIError as exc:
        fallback = settings.LLM_FALLBACK_PROVIDER
        if not fallback or fallback == settings.LLM_PROVIDER:
            raise
        logger.warning(
            "agent_run.provider_fallback",
            extra={"run_id": str(run.pk), "error": type(exc).__name__, "fallback": fallback},
        )
        result = _invoke(fallback, messages, config)
        reason = f"{settings.LLM_PROVIDER} failed ({type(exc).__name__}); answered by {fallback}"
        result.note = "; ".join(filter(None, [reason, result.note]))
        return result


def _invoke(provider_name: str, messages: list[BaseMessage], config: RunnableConfig) -> TurnResult:
    provider = get_chat_provider(provider_name)
    state = _graph(provider_name).invoke({"messages": messages}, config)
    reply, agent = _reply(state)
    note = ""
    if reply_leaks_instructions(reply):
        reply, note = WITHHELD_REPLY, "reply withheld: it quoted the assistant's instructions"
    usage = state.get("usage", {})
    return TurnResult(
        note=note,
        cards=product_cards(state["messages"], reply),
        reply=reply,
        route=state.get("route", ""),
        agent=agent or state.get("route", ""),
        provider=provider.name,
        model_name=provider.model_name,
        nodes=[str(node) for node in state.get("nodes", [])],
        tool_calls=state.get("tool_calls", []),
        prompt_tokens=usage.get("prompt_tokens", 0),
        completion_tokens=usage.get("completion_tokens", 0),
        model_calls=state.get("model_calls", 0),
    )
