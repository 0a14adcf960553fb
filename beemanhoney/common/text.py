def storable_text(text: str) -> str:
    """``text`` without NUL characters, which PostgreSQL text and jsonb cannot hold (jsonb
    refuses even the ``\\u0000`` escape)."""
    return text.replace("\x00", "")


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[:limit] + "…"


def joined_notes(*notes: str) -> str:
    """The notes that say something, in order, as one: "a; b"."""
    return "; ".join(note for note in notes if note)
