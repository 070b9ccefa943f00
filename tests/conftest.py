"""Fixtures the browser tests share: a Chromium executable and one headless browser per module."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.browser_support import ARTIFACTS, CHROMIUM_ARGS, find_chromium


@pytest.fixture(scope="module")
def chromium() -> str:
    """Chromium's path; skipped when there is none, except in CI, where that is a failure."""
    path = find_chromium()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("no Chromium found in CI: install Debian's chromium (.ci/run does it)")
        pytest.skip("no Chromium browser on this machine (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    return path


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[object]:
    """A headless Chromium driven by playwright, closed after the module's tests."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
