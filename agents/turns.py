"""One turn: the conversation's history in, the graph's reply and trace out."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from django.conf import settings
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from agents.graph.builder import build_graph
from agents.graph.prompts import STEP_LIMIT_REPLY
from agents.models import AgentRun
from agents.providers import get_chat_provider
from conversations.models import Message
from conversations.selectors import conversation_history


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


@lru_cache(maxsize=2)
def _graph(provider_name: str) -> Any:
    return build_graph(provider=get_chat_provider())


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


def run_turn(*, run: AgentRun) -> TurnResult:
    provider = get_chat_provider()
    history = conversation_history(
        conversation=run.conversation,
        up_to=run.user_message,
        limit=settings.AGENT_HISTORY_MESSAGES,
    )
    config = {
        "configurable": {
            "customer_id": run.conversation.owner_id,
            "conversation_id": str(run.conversation_id),
            "run_id": str(run.pk),
        },
        "recursion_limit": 4 * settings.AGENT_MAX_MODEL_CALLS + 8,
    }
    state = _graph(provider.name).invoke({"messages": history_messages(history)}, config)
    reply, agent = _reply(state)
    usage = state.get("usage", {})
    return TurnResult(
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
