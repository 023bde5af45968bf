"""The example page in Debian's Chromium (Playwright driving /usr/bin/chromium, never a browser
it downloads) against a real API process and the real worker: the bell shows the unread count,
a trigger appears in the feed and raises it, a click reads the message and lowers it. A
screenshot of the page with the live item is kept as ``inbox-example-page.png`` in
``DISPATCHER_TEST_ARTIFACTS`` (default ``var/test-artifacts/`` under the repository, ignored by
git). Without Chromium or Playwright the test skips locally and fails under CI."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dispatcher.api.inbox.secrets import rotate
from dispatcher.dev.api_process import running_api
from dispatcher.notifications.triggers import trigger
from tests.conftest import DATA_DIR, free_port
from tests.dispatcher.api.inbox.test_live_e2e import IN_APP
from tests.dispatcher.notify_support import subscriber, wait_until_terminal, workflow

pytestmark = pytest.mark.usefixtures("worker")

CHROMIUM = Path("/usr/bin/chromium")
WAIT_MS = 60_000
ARTIFACTS = Path(
    os.environ.get(
        "DISPATCHER_TEST_ARTIFACTS", Path(__file__).resolve().parents[4] / "var" / "test-artifacts"
    )
)


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"example page test: {reason}")
    pytest.skip(f"example page test: {reason}")


@pytest.fixture(scope="module")
def example_api(postgres_url: str, redis_url: str) -> Iterator[str]:
    port = free_port()
    environment = {**os.environ, "DISPATCHER_INBOX_EXAMPLE": "true"}
    with running_api(port=port, log_file=DATA_DIR / "api-example.log", environment=environment):
        yield f"http://127.0.0.1:{port}"


def test_the_bell_and_the_feed_update_live(example_api: str, organisation_id: uuid.UUID) -> None:
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _missing("playwright is not installed")
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} is missing (apt-get install chromium)")
    subscriber(organisation_id, "ada")
    workflow(organisation_id, "hello", [IN_APP])
    receipt = trigger(organisation_id, "hello", "ada", {"name": "First"})
    wait_until_terminal(organisation_id, receipt.transaction_id)
    application = rotate(organisation_id).application_identifier
    url = f"{example_api}/inbox/example?applicationIdentifier={application}&subscriberId=ada"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(url)
            count, feed = page.locator("#count"), page.locator("#feed li")
            expect(count).to_have_text("1", timeout=WAIT_MS)
            expect(feed).to_have_count(1, timeout=WAIT_MS)
            # The stream is open once it has sent its first counts; then trigger.
            page.wait_for_selector("body[data-live=yes]", timeout=WAIT_MS)
            trigger(organisation_id, "hello", "ada", {"name": "Live"})
            expect(feed.first).to_have_text("Hello: Welcome Live", timeout=WAIT_MS)
            expect(count).to_have_text("2", timeout=WAIT_MS)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shot = ARTIFACTS / "inbox-example-page.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.read_bytes().startswith(b"\x89PNG")
            feed.first.click()
            expect(count).to_have_text("1", timeout=WAIT_MS)
            expect(feed.first).to_have_class("read", timeout=WAIT_MS)
        finally:
            browser.close()
