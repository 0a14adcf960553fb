import logging
import sys
import time

import pytest

from beemanhoney.common.logging import ExtraFormatter

FORMAT = "%(levelname)s %(name)s %(message)s"


def record(**extra: object) -> logging.LogRecord:
    return logging.getLogger("agents").makeRecord(
        "agents", logging.WARNING, __file__, 1, "agent_run.failed", (), None, extra=extra
    )


def test_the_details_given_in_extra_follow_the_event_name_in_their_order() -> None:
    line = ExtraFormatter(FORMAT).format(record(run_id="x", error="a b", ms=12))

    assert line == 'WARNING agents agent_run.failed run_id="x" error="a b" ms=12'


def test_a_value_cannot_end_the_line_or_forge_another_pair() -> None:
    line = ExtraFormatter(FORMAT).format(record(error='boom"\nWARNING agents forged=1'))

    assert line == r'WARNING agents agent_run.failed error="boom\"\nWARNING agents forged=1"'


def test_values_json_cannot_encode_are_written_as_text() -> None:
    line = ExtraFormatter(FORMAT).format(record(health={"database": {"ok": False}}, at={1, 2}))

    assert line.endswith(' health={"database": {"ok": false}} at="{1, 2}"')


def test_a_record_without_extras_is_formatted_as_before() -> None:
    plain = record()

    assert ExtraFormatter(FORMAT).format(plain) == logging.Formatter(FORMAT).format(plain)


def test_a_traceback_still_follows_the_line() -> None:
    try:
        raise ValueError("broken")
    except ValueError:
        failed = record(run_id="x")
        failed.exc_info = sys.exc_info()

    first, *rest = ExtraFormatter(FORMAT).format(failed).splitlines()

    assert first == 'WARNING agents agent_run.failed run_id="x"'
    assert rest[-1] == "ValueError: broken"


def test_the_console_logs_the_details() -> None:
    console = next(h for h in logging.getLogger().handlers if h.get_name() == "console")

    line = console.format(record(run_id="x", ms=12))

    assert line.endswith('agent_run.failed run_id="x" ms=12')


def test_torch_writes_only_its_warnings_beside_the_shops_info_lines() -> None:
    # Its FakeTensor cache statistics followed a command's last line as it exited.
    assert not logging.getLogger("torch._subclasses.fake_tensor").isEnabledFor(logging.INFO)
    assert logging.getLogger("torch").isEnabledFor(logging.WARNING)
    assert logging.getLogger("catalog.services").isEnabledFor(logging.INFO)


def test_a_line_s_time_is_utc_with_its_zone_whatever_the_process_s_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    entry = record()
    entry.created = 1796654101.25  # 2026-12-07 14:35:01.250 UTC

    try:
        line = ExtraFormatter("%(asctime)s %(message)s").format(entry)
    finally:
        monkeypatch.undo()
        time.tzset()

    assert line == "2026-12-07T14:35:01.250Z agent_run.failed"
