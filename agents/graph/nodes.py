"""Graph nodes: each takes the turn state and returns the part of it that changed."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from langchain_core.messages import AIMessage, SystemMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.graph import END
from pydantic import ValidationError

from agents.graph.names import Node
from agents.graph.prompts import HANDOFF_REPLY, STEP_LIMIT_REPLY
from agents.graph.state import TurnState
from agents.graph.tools import turn_context
from agents.providers import ChatProvider

logger = logging.getLogger(__name__)

NodeFunction = Callable[[TurnState, RunnableConfig], dict[str, Any]]
RESULT_SUMMARY_CHARS = 300


def _accounting(message: AIMessage | None) -> dict[str, Any]:
    if message is None:
        return {}
    usage = message.usage_metadata or {}
    return {
        "model_calls": 1,
        "usage": {
            "prompt_tokens": usage.get("input_tokens", 0),
            "completion_tokens": usage.get("output_tokens", 0),
        },
    }


def make_supervisor(provider: ChatProvider) -> NodeFunction:
    def supervisor(state: TurnState, config: RunnableConfig) -> dict[str, Any]:
        decision = provider.route(state["messages"], config)
        return {
            "route": decision.route,
            "nodes": [Node.SUPERVISOR],
            **_accounting(decision.message),
        }

    return supervisor


def make_agent(
    node: Node, provider: ChatProvider, tools: list[BaseTool], prompt: str
) -> NodeFunction:
    def agent(state: TurnState, config: RunnableConfig) -> dict[str, Any]:
        if state.get("model_calls", 0) >= settings.AGENT_MAX_MODEL_CALLS:
            logger.warning("agents.step_limit", extra={"node": node})
            return {"messages": [AIMessage(STEP_LIMIT_REPLY, name=node)], "nodes": [node]}
        model = provider.chat_model().bind_tools(tools)
        response = model.invoke([SystemMessage(prompt), *state["messages"]], config)
        assert isinstance(response, AIMessage)
        response.name = node
        return {"messages": [response], "nodes": [node], **_accounting(response)}

    return agent


def _summary(output: str) -> str:
    return output if len(output) <= RESULT_SUMMARY_CHARS else output[:RESULT_SUMMARY_CHARS] + "…"


def make_tools_node(node: Node, tools: list[BaseTool]) -> NodeFunction:
    by_name = {tool.name: tool for tool in tools}

    def run_tools(state: TurnState, config: RunnableConfig) -> dict[str, Any]:
        last = state["messages"][-1]
        assert isinstance(last, AIMessage)
        results: list[ToolMessage] = []
        trace: list[dict[str, Any]] = []
        for call in last.tool_calls:
            tool = by_name.get(call["name"])
            if tool is None:
                output = json.dumps({"error": f"unknown tool {call['name']!r}"})
            else:
                # Only the tool's own arguments: identity comes from config, never the model.
                args = {k: v for k, v in call["args"].items() if k in tool.args}
                try:
                    output = str(tool.invoke(args, config))
                except (ValidationError, ValueError, TypeError) as exc:
                    output = json.dumps({"error": f"invalid arguments: {type(exc).__name__}"})
            results.append(ToolMessage(output, tool_call_id=call["id"] or "", name=call["name"]))
            trace.append(
                {
                    "node": node,
                    "tool": call["name"],
                    "args": call["args"],
                    "result": _summary(output),
                }
            )
        escalated = any(call["name"] == "escalate_to_human" for call in last.tool_calls)
        update: dict[str, Any] = {"messages": results, "tool_calls": trace, "nodes": [node]}
        return {**update, "handed_off": True} if escalated else update

    return run_tools


def handoff(state: TurnState, config: RunnableConfig) -> dict[str, Any]:
    from conversations.services import conversation_handoff

    context = turn_context(config)
    conversation_handoff(
        conversation_id=context.conversation_id, reason="The customer asked for a person."
    )
    return {
        "messages": [AIMessage(HANDOFF_REPLY, name=Node.HANDOFF)],
        "nodes": [Node.HANDOFF],
        "handed_off": True,
    }


def continue_to(tools_node: Node) -> Callable[[TurnState], str]:
    """After an agent: run its tools if it asked for any, else the turn is over."""

    def decide(state: TurnState) -> str:
        last = state["messages"][-1]
        return tools_node if isinstance(last, AIMessage) and last.tool_calls else END

    return decide
