"""Headless Chromium for the browser tests (Playwright drives Debian's Chromium)."""

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="needs Chromium: `apt-get install chromium` (Debian), as .ci/run does",
)


def chromium_page() -> Iterator[Any]:
    """A page of a new headless Chromium, closed after the test (the ``browser_page`` fixture)."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own DB calls are
    # still synchronous, so Django's async-safety guard is told so.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
            ],
        )  # fmt: skip
        page = browser.new_page(viewport={"width": 1024, "height": 800})
        yield page
        browser.close()
        # Django's connections are context-local: ones opened under Playwright's loop are
        # not the test's own and would outlive it.
        connections.close_all()
    del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
