"""Graph nodes: each takes the turn state and returns the part of it that changed."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any, Protocol

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from langchain_core.messages import (
    AIMessage,
    SystemMessage,
    ToolMessage,
    message_chunk_to_message,
)
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.graph import END
from pydantic import ValidationError

from agents.graph.names import Node
from agents.graph.prompts import HANDOFF_REPLY, STEP_LIMIT_REPLY, dated
from agents.graph.state import TurnState
from agents.graph.tools import conversation_handed_off, turn_effects, turn_run_id
from agents.providers import ChatProvider, streamed_chunks
from agents.run_stream import run_event_publish, run_event_publish_many
from agents.selectors import agent_run_stopped
from beemanhoney.common.text import clip, encodable_text, storable_text

logger = logging.getLogger(__name__)


class NodeFunction(Protocol):
    """A graph node given the run's config (LangGraph passes it by the parameter's name)."""

    def __call__(self, state: TurnState, config: RunnableConfig) -> dict[str, Any]: ...


RESULT_SUMMARY_CHARS = 300
DELTA_CHARS = 24
# Bounds on what the trace (AgentRun.tool_calls) and the live events keep of a tool call,
# whose name and arguments the model fills in with anything.
TRACE_VALUE_CHARS = 500
TRACE_NAME_CHARS = 100
TRACE_MAX_ARGS = 20
# The tool calls of one model message that are run; the rest are refused (answered with an
# error, so the model sees why): sixty searches in one message all ran, and their results made
# an 82 KB prompt. With AGENT_MAX_MODEL_CALLS, this bounds a turn's tool runs.
MAX_TOOL_CALLS_PER_MESSAGE = 5
TOO_MANY_TOOL_CALLS = (
    f"refused: at most {MAX_TOOL_CALLS_PER_MESSAGE} tool calls are run per message; "
    "call again with the ones still needed"
)
INVALID_ARGUMENTS = "invalid arguments: not a JSON object; call again with an object"
# A text's words with the whitespace around them: joined, they give the text back exactly.
WORD_WITH_SPACE = re.compile(r"\s*\S+\s*|\s+")


def _accounting(message: AIMessage | None) -> dict[str, Any]:
    """The model call the step made, counted against ``AGENT_MAX_MODEL_CALLS`` (its tokens are
    counted on the run as it returns: ``agents.turns.UsageTally``)."""
    return {} if message is None else {"model_calls": 1}


def _publish(config: RunnableConfig, type: str, data: dict[str, Any]) -> None:
    if (run_id := turn_run_id(config)) is not None:
        run_event_publish(run_id=run_id, type=type, data=data)


def make_supervisor(provider: ChatProvider) -> NodeFunction:
    def supervisor(state: TurnState, config: RunnableConfig) -> dict[str, Any]:
        decision = provider.route(state["messages"], config)
        _publish(config, "route.chosen", {"route": decision.route})
        return {
            "route": decision.route,
            "route_note": decision.note,
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
            stop = AIMessage(
                STEP_LIMIT_REPLY, name=node, response_metadata={"finish_reason": "step_limit"}
            )
            return {"messages": [stop], "nodes": [node]}
        if (run_id := turn_run_id(config)) is not None and agent_run_stopped(
            run_id=run_id, handed_off=turn_effects(config).handed_off
        ):
            # The customer cancelled or closed, or staff have the conversation: no more calls
            # to pay for, no more text streamed under theirs. Nothing is posted.
            stop = AIMessage("", name=node, response_metadata={"finish_reason": "cancelled"})
            return {"messages": [stop], "nodes": [node]}
        model = provider.chat_model().bind_tools(tools)
        response = _streamed_response(
            model, [SystemMessage(dated(prompt)), *state["messages"]], config
        )
        response = _encodable_response(response)
        response.name = node
        return {"messages": [response], "nodes": [node], **_accounting(response)}

    return agent


def _pieces(text: str, size: int = DELTA_CHARS) -> list[str]:
    """Split a long chunk (the offline model answers in one) into word-aligned deltas of at
    least ``size`` characters (but the last); joined, they are ``text`` exactly."""
    pieces, current = [], ""
    for word in WORD_WITH_SPACE.findall(text):
        current += word
        if len(current) >= size:
            pieces.append(current)
            current = ""
    return [*pieces, current] if current else pieces


def _streamed_response(model: Any, messages: list[Any], config: RunnableConfig) -> AIMessage:
    """Call the model streaming, publishing its text as ``text.delta`` events as it arrives.

    Deltas stop for good if the text so far quotes the instructions: the guard in
    ``agents.turns`` then replaces the stored reply.
    """
    from agents.turns import reply_leaks_instructions

    merged: Any = None
    run_id = turn_run_id(config)
    streaming = run_id is not None
    for chunk in streamed_chunks(model.stream(messages, config)):
        merged = chunk if merged is None else merged + chunk
        calls_tools = bool(getattr(merged, "tool_call_chunks", None) or merged.tool_calls)
        if not streaming or calls_tools or not chunk.content:
            continue
        if reply_leaks_instructions(str(merged.content)):
            streaming = False
            continue
        pieces = [{"text": piece} for piece in _pieces(storable_text(str(chunk.content)))]
        run_event_publish_many(run_id=str(run_id), type="text.delta", payloads=pieces)
    response = message_chunk_to_message(merged)
    assert isinstance(response, AIMessage)
    return response


def _encodable(value: Any) -> Any:
    """``value`` with every text in it encodable as UTF-8 (``encodable_text``)."""
    if isinstance(value, str):
        return encodable_text(value)
    if isinstance(value, dict):
        return {_encodable(key): _encodable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_encodable(item) for item in value]
    return value


def _encodable_response(response: AIMessage) -> AIMessage:
    """The model's message with half characters replaced by U+FFFD: a lone surrogate in its
    text or a tool's arguments ("manuka \\ud83d") cannot be encoded as UTF-8, and sent back in
    the next prompt, stored or published, it failed the turn. NULs stay: a tool refuses them by
    name. Tool names OpenAI refuses in a request are made ones it takes (``_sendable_name``)."""
    return response.model_copy(
        update={
            "content": _encodable(response.content),
            "tool_calls": _sendable_names(_encodable(response.tool_calls)),
            "invalid_tool_calls": _sendable_names(_encodable(response.invalid_tool_calls)),
        }
    )


# What OpenAI takes as a function's name in a request, the messages' tool calls included: a
# model's call of a tool by another name ("multi_tool_use.parallel", which GPT-4o makes up) is
# answered "unknown tool", but sent back as it was, the next request would be refused.
TOOL_NAME_REFUSED_CHARACTER = re.compile(r"[^a-zA-Z0-9_-]")
TOOL_NAME_MAX_CHARS = 64


def _sendable_name(name: str | None) -> str:
    return TOOL_NAME_REFUSED_CHARACTER.sub("_", name or "")[:TOOL_NAME_MAX_CHARS] or "unnamed"


def _sendable_names(calls: list[Any]) -> list[Any]:
    return [{**call, "name": _sendable_name(call.get("name"))} for call in calls]


def _text(text: str, limit: int) -> str:
    return clip(storable_text(text), limit)


def _traced(value: Any) -> Any:
    """A model-filled argument as the trace keeps it: JSON that jsonb accepts, bounded."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float) and abs(value) < 1e15:  # not inf, NaN or huge
        return value
    if not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False, default=str)
    return _text(value, TRACE_VALUE_CHARS)


def _traced_args(args: dict[str, Any]) -> dict[str, Any]:
    kept = list(args.items())[:TRACE_MAX_ARGS]
    return {_text(str(key), TRACE_NAME_CHARS): _traced(value) for key, value in kept}


def _summary(output: str) -> str:
    return _text(output, RESULT_SUMMARY_CHARS)


def _argument_error(exc: Exception) -> str:
    """What was wrong with the model's arguments, naming the fields (never echoing values)."""
    if isinstance(exc, ValidationError):
        problems = [
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        ]
        return "invalid arguments: " + clip("; ".join(problems), TRACE_VALUE_CHARS)
    return f"invalid arguments: {type(exc).__name__}"


def make_tools_node(node: Node, tools: list[BaseTool]) -> NodeFunction:
    by_name = {tool.name: tool for tool in tools}

    def run_tools(state: TurnState, config: RunnableConfig) -> dict[str, Any]:
        last = state["messages"][-1]
        assert isinstance(last, AIMessage)
        results: list[ToolMessage] = []
        trace: list[dict[str, Any]] = []
        turn_effects(config).steps_in_progress = trace  # the same list, kept as it grows
        for call in last.tool_calls[:MAX_TOOL_CALLS_PER_MESSAGE]:
            name, traced_args = _text(call["name"], TRACE_NAME_CHARS), _traced_args(call["args"])
            _publish(config, "tool.called", {"tool": name, "args": traced_args})
            tool = by_name.get(call["name"])
            if tool is None:
                output = json.dumps({"error": f"unknown tool {name!r}"})
            else:
                # Only the tool's own arguments: identity comes from config, never the model.
                args = {k: v for k, v in call["args"].items() if k in tool.args}
                try:
                    output = str(tool.invoke(args, config))
                except (ValidationError, ValueError, TypeError) as exc:
                    output = json.dumps({"error": _argument_error(exc)})
                except (DjangoValidationError, DataError) as exc:
                    # A value the tool did not check that the database refused: the model
                    # can try again, the turn goes on.
                    logger.warning(
                        "agents.tool_arguments_refused",
                        extra={"tool": name, "error": type(exc).__name__},
                    )
                    output = json.dumps({"error": _argument_error(exc)})
                except Exception as exc:
                    step = {"node": node, "tool": name, "args": traced_args}
                    trace.append({**step, "result": f"raised {type(exc).__name__}"})
                    raise
            results.append(ToolMessage(output, tool_call_id=call["id"] or "", name=call["name"]))
            summary = _summary(output)
            trace.append({"node": node, "tool": name, "args": traced_args, "result": summary})
            _publish(config, "tool.result", {"tool": name, "summary": summary})
        if refused := last.tool_calls[MAX_TOOL_CALLS_PER_MESSAGE:]:
            logger.warning("agents.tool_calls_refused", extra={"node": node, "count": len(refused)})
        for call in refused:
            # Every call needs its answer; a refused one did nothing to show live.
            output = json.dumps({"error": TOO_MANY_TOOL_CALLS})
            results.append(ToolMessage(output, tool_call_id=call["id"] or "", name=call["name"]))
            name, traced_args = _text(call["name"], TRACE_NAME_CHARS), _traced_args(call["args"])
            refusal = {"node": node, "tool": name, "args": traced_args, "result": output}
            trace.append({**refusal, "refused": True})
        for invalid in last.invalid_tool_calls:
            # Arguments that are not a JSON object: answered too, or the model's next request
            # is refused (OpenAI wants an answer to every call) and the turn lost.
            output = json.dumps({"error": INVALID_ARGUMENTS})
            name = invalid.get("name") or ""
            results.append(ToolMessage(output, tool_call_id=invalid.get("id") or "", name=name))
            traced_name = _text(name, TRACE_NAME_CHARS)
            _publish(config, "tool.called", {"tool": traced_name, "args": {}})
            trace.append({"node": node, "tool": traced_name, "args": {}, "result": output})
            _publish(config, "tool.result", {"tool": traced_name, "summary": output})
        turn_effects(config).steps_in_progress = []
        update: dict[str, Any] = {"messages": results, "tool_calls": trace, "nodes": [node]}
        # What the tools did, not what the model asked for: an escalation finding staff already
        # with the conversation (or it closed) handed nothing off, and this turn's reply must
        # then not be posted after theirs.
        return {**update, "handed_off": True} if turn_effects(config).handed_off else update

    return run_tools


def handoff(state: TurnState, config: RunnableConfig) -> dict[str, Any]:
    # False when staff already had the conversation (or closed it): this turn did not hand it
    # off, so its reply is not posted after theirs.
    handed_off = conversation_handed_off(config, reason="The customer asked for a person.")
    # Written whole: ``agents.turns`` takes a reply that does not say it finished for one cut
    # short.
    reply = AIMessage(HANDOFF_REPLY, name=Node.HANDOFF, response_metadata={"finish_reason": "stop"})
    return {
        "messages": [reply],
        "nodes": [Node.HANDOFF],
        "handed_off": handed_off,
    }


def continue_to(tools_node: Node) -> Callable[[TurnState], str]:
    """After an agent: run its tools if it asked for any, else the turn is over."""

    def decide(state: TurnState) -> str:
        last = state["messages"][-1]
        asked = isinstance(last, AIMessage) and (last.tool_calls or last.invalid_tool_calls)
        return tools_node if asked else END

    return decide
