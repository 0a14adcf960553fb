def storable_text(text: str) -> str:
    """``text`` without NUL characters, which PostgreSQL text and jsonb cannot hold (jsonb
    refuses even the ``\\u0000`` escape)."""
    return text.replace("\x00", "")
