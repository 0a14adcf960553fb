from collections.abc import Mapping
from typing import Any

from rest_framework import renderers


class _AsciiJSONRenderer(renderers.JSONRenderer):
    ensure_ascii = True


class JSONRenderer(renderers.JSONRenderer):
    """DRF's, writing non-ASCII text as it is, except where the data holds a lone surrogate
    (``"\\ud800"``), which UTF-8 cannot encode: an error that repeats what a client sent (an
    unknown key, a choice it does not offer) then writes every non-ASCII character as a ``\\u``
    escape, as JSON allows, instead of failing as a 500."""

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        try:
            return super().render(data, accepted_media_type, renderer_context)
        except UnicodeEncodeError:
            return _AsciiJSONRenderer().render(data, accepted_media_type, renderer_context)
