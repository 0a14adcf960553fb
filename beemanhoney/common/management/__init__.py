"""What the project's management commands share."""

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from django.core.management.base import BaseCommand
from tqdm import tqdm

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


@contextmanager
def progress_bar(command: BaseCommand, description: str) -> Iterator[Callable[[int, int], None]]:
    """A bar of rows done on the command's stderr (none when it is not a terminal), and the
    ``on_progress(done, total)`` that moves it."""
    # The stream under Django's wrapper, which would style each write as an error (red on a
    # terminal) and end it with a newline, so the bar could not redraw its line.
    with tqdm(desc=description, unit="row", disable=None, file=command.stderr._out) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        yield progress
