"""Browser fixtures: Playwright's sync API driving Debian's Chromium (`make system-deps`), headless.

Playwright from PyPI brings no browser of its own (only `playwright install` would download one,
and nothing here runs it): it launches /usr/bin/chromium. One browser serves the whole session;
each test gets fresh contexts, closed after it.

    def test_x(new_context):
        page = new_context(viewport={"width": 412, "height": 915}, java_script_enabled=False).new_page()
        page.goto(url)
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

EXECUTABLE = "/usr/bin/chromium"
# Run as root with no network beyond loopback: without the background-networking flags Chromium's
# own connections (updates, sync, field trials) are refused many at a time.
LAUNCH_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                # Only the local servers a test starts: every other host fails to resolve at once
                # (CDNs, YouTube) instead of hanging. The rules cover IP literals too, hence the exclusions.
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE 127.0.0.2, EXCLUDE localhost"]


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, launched once for the session; skips the test when it is not installed."""
    if not os.access(EXECUTABLE, os.X_OK):
        pytest.skip(f"needs Debian's chromium at {EXECUTABLE} (Debian package `chromium`; `make system-deps`)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=EXECUTABLE, headless=True, args=LAUNCH_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def new_context(chromium: Browser) -> Iterator[Callable[..., BrowserContext]]:
    """A factory of browser contexts (Playwright's `new_context` options: viewport, java_script_enabled...)."""
    contexts: list[BrowserContext] = []

    def make(**options) -> BrowserContext:
        contexts.append(chromium.new_context(**options))
        return contexts[-1]
    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_context: Callable[..., BrowserContext]) -> Page:
    """A blank page in a context of its own, with Playwright's default viewport."""
    return new_context().new_page()


def platform_fonts(page: Page, selector: str) -> list[dict]:
    """The platform fonts the first element matching `selector` was drawn with: [{familyName, glyphCount...}].

    Playwright has no call for this; DevTools (CSS.getPlatformFontsForNode) has.
    """
    devtools = page.context.new_cdp_session(page)
    try:
        root = devtools.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        node = devtools.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        assert node, f"no element matches {selector!r} on {page.url}"
        devtools.send("DOM.enable")
        devtools.send("CSS.enable")
        return devtools.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    finally:
        devtools.detach()
