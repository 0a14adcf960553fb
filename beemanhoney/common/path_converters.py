"""Path converters the API's URLs share, registered once when this module is imported."""

import uuid

from django.urls import register_converter


class AnyCaseUUIDConverter:
    """A UUID in either case, as RFC 9562 lets one be written (Swift's ``uuidString`` is
    upper-case); Django's ``uuid`` converter matches lower case alone, and answered 404."""

    regex = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

    def to_python(self, value: str) -> uuid.UUID:
        return uuid.UUID(value)

    def to_url(self, value: uuid.UUID | str) -> str:
        return str(value)


register_converter(AnyCaseUUIDConverter, "any_case_uuid")
