def storable_text(text: str) -> str:
    """``text`` without NUL characters, which PostgreSQL text and jsonb cannot hold (jsonb
    refuses even the ``\\u0000`` escape)."""
    return text.replace("\x00", "")


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[:limit] + "…"
