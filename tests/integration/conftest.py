"""Start the local gateway (the README's run command) on a free loopback port, and stop it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, LOCAL_HOSTS, SCREENSHOTS, WAIT_MS, _unavailable
from tests.support.gateway import Gateway
from tests.support.webhooks import Receiver


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gw = Gateway(tmp_path_factory.mktemp("gateway"))
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        _unavailable(f"{CHROMIUM} not found (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[dev]')")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        # Debian's Chromium, never a downloaded one.
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, timeout=60_000)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-US", service_workers="block")

    def local_only(route: Any) -> None:
        if urlsplit(route.request.url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            route.abort()

    context.route("**/*", local_only)
    tab = context.new_page()
    tab.set_default_timeout(WAIT_MS)
    tab.set_default_navigation_timeout(WAIT_MS)
    tab.console_messages = []  # type: ignore[attr-defined]
    tab.on("console", lambda msg: tab.console_messages.append(msg.text))  # type: ignore[attr-defined]
    yield tab
    context.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()
