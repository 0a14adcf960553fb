import operator
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages


class TurnState(TypedDict, total=False):
    """What one turn of the conversation carries through the graph."""

    messages: Annotated[list[AnyMessage], add_messages]
    route: str
    route_note: str
    nodes: Annotated[list[str], operator.add]
    tool_calls: Annotated[list[dict[str, Any]], operator.add]
    model_calls: Annotated[int, operator.add]
    handed_off: bool
