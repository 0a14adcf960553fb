from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph

from agents.graph import nodes
from agents.graph.names import Node, Route
from agents.graph.prompts import SALES_PROMPT, SUPPORT_PROMPT
from agents.graph.state import TurnState
from agents.graph.tools import SALES_TOOLS, SUPPORT_TOOLS
from agents.providers import ChatProvider


def build_graph(*, provider: ChatProvider) -> Any:
    """supervisor → sales | support | handoff; each specialist loops with its tools."""
    graph = StateGraph(TurnState)
    graph.add_node(Node.SUPERVISOR, nodes.make_supervisor(provider))
    graph.add_node(Node.SALES, nodes.make_agent(Node.SALES, provider, SALES_TOOLS, SALES_PROMPT))
    graph.add_node(Node.SALES_TOOLS, nodes.make_tools_node(Node.SALES_TOOLS, SALES_TOOLS))
    graph.add_node(
        Node.SUPPORT, nodes.make_agent(Node.SUPPORT, provider, SUPPORT_TOOLS, SUPPORT_PROMPT)
    )
    graph.add_node(Node.SUPPORT_TOOLS, nodes.make_tools_node(Node.SUPPORT_TOOLS, SUPPORT_TOOLS))
    graph.add_node(Node.HANDOFF, nodes.handoff)

    graph.add_edge(START, Node.SUPERVISOR)
    graph.add_conditional_edges(
        Node.SUPERVISOR,
        lambda state: state["route"],
        {Route.SALES: Node.SALES, Route.SUPPORT: Node.SUPPORT, Route.HANDOFF: Node.HANDOFF},
    )
    graph.add_conditional_edges(
        Node.SALES, nodes.continue_to(Node.SALES_TOOLS), [Node.SALES_TOOLS, END]
    )
    graph.add_edge(Node.SALES_TOOLS, Node.SALES)
    graph.add_conditional_edges(
        Node.SUPPORT, nodes.continue_to(Node.SUPPORT_TOOLS), [Node.SUPPORT_TOOLS, END]
    )
    graph.add_edge(Node.SUPPORT_TOOLS, Node.SUPPORT)
    graph.add_edge(Node.HANDOFF, END)
    return graph.compile()
