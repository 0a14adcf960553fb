"""A log line that keeps what the call passed in ``extra=``, not only its event name."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

# What every record has before ``extra=`` adds to it, and what formatting adds.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
}


def _encoded(value: Any) -> str:
    # JSON escapes newlines and quotes: a value cannot end the line or fake another pair.
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return json.dumps(repr(value))


def _repeats_the_message(record: logging.LogRecord, key: str) -> bool:
    # Celery passes a task line's arguments again as extra={"data": ...}.
    return key == "data" and record.name.startswith("celery.")


class ExtraFormatter(logging.Formatter):
    """Appends each ``extra=`` item as ``key=<JSON>``, in the order the call gave them; times
    are UTC, in ISO 8601 (``2026-12-06T14:35:01.123Z``): Django sets the process's zone to
    ``TIME_ZONE``, whose local times carried no offset (an autumn hour read twice) beside
    gunicorn's lines in UTC."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        pairs = [
            f"{key}={_encoded(value)}"
            for key, value in vars(record).items()
            if key not in _RECORD_ATTRIBUTES
            and not key.startswith("_")
            and not _repeats_the_message(record, key)
        ]
        return " ".join([line, *pairs])
