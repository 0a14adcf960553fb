import re

# Half of a UTF-16 pair: a model's output cut mid-character ("manuka \ud83d") holds one.
SURROGATE = re.compile("[\ud800-\udfff]")


def encodable_text(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD: UTF-8 cannot encode one, so
    PostgreSQL refuses it and the Redis and OpenAI clients raise."""
    if SURROGATE.search(text) is None:
        return text
    # Through UTF-16, a surrogate pair held as two characters joins into the one it encodes.
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def storable_text(text: str) -> str:
    """``text`` without NUL characters, which PostgreSQL text and jsonb cannot hold (jsonb
    refuses even the ``\\u0000`` escape), and without lone surrogates (``encodable_text``)."""
    return encodable_text(text.replace("\x00", ""))


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, the last an ellipsis when cut: a limit is
    a column's or a payload's size, which the mark must fit in too."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def joined_notes(*notes: str) -> str:
    """The notes that say something, in order, as one: "a; b"."""
    return "; ".join(note for note in notes if note)
