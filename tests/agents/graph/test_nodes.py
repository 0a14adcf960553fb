"""The graph's nodes, in-process, with scripted chat models: streaming and tool errors."""

import json
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import RunnableConfig

from agents.graph.builder import build_graph
from agents.graph.names import Route
from agents.graph.nodes import MAX_TOOL_CALLS_PER_MESSAGE
from agents.models import AgentRun
from agents.providers import RouteDecision
from agents.run_stream import run_events_read
from tests.agents.factories import AgentRunFactory

pytestmark = pytest.mark.django_db

# As a real model streams: most pieces start with the space before their word.
STREAMED = [
    "Hello",
    " there",
    ",",
    " our",
    " Supercalifragilisticexpialidocious-honey",
    " is",
    " lovely.",
    "\n\nTwo  spaces",
    " and a long chunk that the node must cut into several text deltas for the client",
    "  ",
    "end.",
]


class StreamingModel(BaseChatModel):
    """Answers with ``pieces``, piece by piece."""

    pieces: list[str] = STREAMED

    @property
    def _llm_type(self) -> str:
        return "streaming-script"

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        message = AIMessage("".join(self.pieces))
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self, messages: list[BaseMessage], *args: Any, **kwargs: Any
    ) -> Iterator[ChatGenerationChunk]:
        for piece in self.pieces:
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))


class BadArgumentsModel(BaseChatModel):
    """Calls ``search_products`` with a price that is not a number, then answers."""

    @property
    def _llm_type(self) -> str:
        return "bad-arguments-script"

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        if isinstance(messages[-1], ToolMessage):
            message = AIMessage("Sorry, I couldn't search just now.")
        else:
            calls = [
                {"name": "search_products", "args": {"query": "honey", "max_price": "cheap"},
                 "id": "call-1"},
                {"name": "get_orders" + "s" * 5000, "args": {}, "id": "call-2"},
            ]  # fmt: skip
            message = AIMessage("", tool_calls=calls)
        return ChatResult(generations=[ChatGeneration(message=message)])


class ManyCallsModel(BaseChatModel):
    """Checks the stock of ``calls`` products in one message, then answers."""

    calls: int = 8

    @property
    def _llm_type(self) -> str:
        return "many-calls-script"

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        if isinstance(messages[-1], ToolMessage):
            message = AIMessage("That's all I could check.")
        else:
            calls = [
                {"name": "check_stock", "args": {"sku": f"SKU-{i}"}, "id": f"call-{i}"}
                for i in range(self.calls)
            ]
            message = AIMessage("", tool_calls=calls)
        return ChatResult(generations=[ChatGeneration(message=message)])


class ScriptedProvider:
    name = "scripted"
    model_name = "scripted"

    def __init__(self, model: BaseChatModel) -> None:
        self.model = model

    def chat_model(self) -> BaseChatModel:
        return self.model

    def route(self, messages: Sequence[BaseMessage], config: RunnableConfig) -> RouteDecision:
        return RouteDecision(route=Route.SALES)


def _config(run_id: str) -> RunnableConfig:
    """A turn's config for a run of ``run_id``, running (a turn whose run is gone stops)."""
    run = AgentRunFactory.create(id=run_id, status=AgentRun.Status.RUNNING)
    conversation = run.conversation
    return {
        "configurable": {
            "customer_id": conversation.owner_id,
            "conversation_id": str(conversation.id),
            "run_id": run_id,
        }
    }


def test_streamed_text_deltas_join_to_exactly_the_reply() -> None:
    run_id = str(uuid.uuid4())
    graph = build_graph(provider=ScriptedProvider(StreamingModel()))

    state = graph.invoke({"messages": [HumanMessage("Hi")]}, _config(run_id))

    deltas = [e.data["text"] for e in run_events_read(run_id=run_id) if e.type == "text.delta"]
    assert state["messages"][-1].content == "".join(STREAMED)
    assert "".join(deltas) == "".join(STREAMED)
    assert len(deltas) > 1


def test_streamed_text_deltas_leave_out_nul_characters() -> None:
    run_id = str(uuid.uuid4())
    model = StreamingModel(pieces=["Hello\x00", " there,", " \x00", "friend"])
    graph = build_graph(provider=ScriptedProvider(model))

    graph.invoke({"messages": [HumanMessage("Hi")]}, _config(run_id))

    deltas = [e.data["text"] for e in run_events_read(run_id=run_id) if e.type == "text.delta"]
    assert "".join(deltas) == "Hello there, friend"


def test_bad_tool_arguments_go_back_to_the_model_as_errors_naming_the_field() -> None:
    graph = build_graph(provider=ScriptedProvider(BadArgumentsModel()))

    state = graph.invoke(
        {"messages": [HumanMessage("Honey under a tenner?")]}, _config(str(uuid.uuid4()))
    )

    results = [json.loads(m.text) for m in state["messages"] if isinstance(m, ToolMessage)]
    assert "max_price" in results[0]["error"]
    assert "get_orders" in results[1]["error"]
    assert len(results[1]["error"]) < 200
    assert state["messages"][-1].content == "Sorry, I couldn't search just now."


def test_tool_calls_past_the_cap_in_one_message_are_refused_and_traced() -> None:
    run_id = str(uuid.uuid4())
    graph = build_graph(
        provider=ScriptedProvider(ManyCallsModel(calls=MAX_TOOL_CALLS_PER_MESSAGE + 3))
    )

    state = graph.invoke({"messages": [HumanMessage("Is any of it in stock?")]}, _config(run_id))

    results = [json.loads(m.text) for m in state["messages"] if isinstance(m, ToolMessage)]
    ran, refused = results[:MAX_TOOL_CALLS_PER_MESSAGE], results[MAX_TOOL_CALLS_PER_MESSAGE:]
    assert len(results) == MAX_TOOL_CALLS_PER_MESSAGE + 3  # every call is answered
    assert all("no product with sku" in result["error"] for result in ran)
    refusal = f"refused: at most {MAX_TOOL_CALLS_PER_MESSAGE} tool calls"
    assert [result["error"][: len(refusal)] for result in refused] == [refusal] * 3
    refused_flags = [call.get("refused", False) for call in state["tool_calls"]]
    assert refused_flags == [False] * MAX_TOOL_CALLS_PER_MESSAGE + [True] * 3
    assert state["tool_calls"][-1]["args"] == {"sku": f"SKU-{MAX_TOOL_CALLS_PER_MESSAGE + 2}"}
    called = [e for e in run_events_read(run_id=run_id) if e.type == "tool.called"]
    assert len(called) == MAX_TOOL_CALLS_PER_MESSAGE
    assert state["messages"][-1].content == "That's all I could check."
