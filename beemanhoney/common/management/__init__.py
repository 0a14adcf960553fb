"""What the project's management commands share."""

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

INTERRUPTED_EXIT_CODE = 130  # as a shell reports a command Ctrl-C stopped

# A closed terminal or SSH session (SIGHUP), `kill` or a container's stop (SIGTERM).
STOPPING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def database_failure(error: Exception) -> str:
    """A command's words for a database error: its first line (psycopg's go on for lines)."""
    first = (str(error).strip().splitlines() or [""])[0]
    return f"the database failed ({type(error).__name__}: {first})"


@contextmanager
def stops_as_interrupts() -> Iterator[None]:
    """Within the block, ``STOPPING_SIGNALS`` raise ``KeyboardInterrupt`` as Ctrl-C does, so a
    command stopped that way cleans up as it does for Ctrl-C (a transaction rolled back, HNSW
    indexes a backfill dropped built again) and says what was kept. Their default ends the
    process at once: a backfill so stopped left its indexes dropped. Signals reach only the
    main thread; elsewhere (a command called from a thread) the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {stopping: signal.signal(stopping, interrupt) for stopping in STOPPING_SIGNALS}
    try:
        yield
    finally:
        for stopping, handler in previous.items():
            signal.signal(stopping, handler)
