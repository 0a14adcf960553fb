"""How the offline assistant lists the products it recommends, and reading them back: a
follow-up about one thing ("how much is it?") asks about the first product listed."""

from __future__ import annotations

import re

_LINE = re.compile(r"^- (?P<name>.+?) — ", re.MULTILINE)


def recommendation_line(name: str, details: str) -> str:
    return f"- {name} — {details}"


def recommended_names(reply: str) -> list[str]:
    """The names of the products ``reply`` lists, in its order."""
    return [match["name"] for match in _LINE.finditer(reply)]
