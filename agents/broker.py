"""What the broker still holds: the runs' task messages waiting in Redis.

Kombu's Redis transport keeps a queue's messages in a list named after the queue and the
messages workers have taken but not yet acknowledged in the ``unacked`` hash. Each message is
JSON whose ``headers.id`` is the Celery task id (``AgentRun.celery_task_id``).
"""

import json
import logging

from celery import current_app
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

UNACKED_HASH = "unacked"


def _task_id(raw: bytes | str) -> str | None:
    try:
        message = json.loads(raw)
    except ValueError:
        return None
    # An unacknowledged entry is [message, exchange, routing key].
    if isinstance(message, list) and message:
        message = message[0]
    headers = message.get("headers") if isinstance(message, dict) else None
    return headers.get("id") if isinstance(headers, dict) else None


def broker_task_ids() -> set[str] | None:
    """The ids of the tasks waiting in the default queue or taken and not yet acknowledged;
    None when the broker cannot be asked."""
    app = current_app
    queue = app.conf.task_default_queue
    try:
        with app.connection_for_read() as connection:
            # The Redis transport's channel; the stubs type the generic one.
            client = connection.default_channel.client  # type: ignore[attr-defined]
            waiting = client.lrange(queue, 0, -1) + client.hvals(UNACKED_HASH)
    except (OperationalError, RedisError, OSError):
        logger.warning("agents.broker_unreadable", exc_info=True)
        return None
    return {task_id for raw in waiting if (task_id := _task_id(raw))}
