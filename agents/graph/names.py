from enum import StrEnum


class Node(StrEnum):
    SUPERVISOR = "supervisor"
    SALES = "sales"
    SALES_TOOLS = "sales_tools"
    SUPPORT = "support"
    SUPPORT_TOOLS = "support_tools"
    HANDOFF = "handoff"


class Route(StrEnum):
    SALES = "sales"
    SUPPORT = "support"
    HANDOFF = "handoff"
