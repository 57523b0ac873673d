"""The inbox demo page in headless Chromium shows a new item live, without a reload."""
import pytest

from apps.recipients.models import Recipient
from tests.browser import Browser, chromium_missing_reason
from tests.stack import wait_for
from tests.webserver import start_web

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(chromium_missing_reason() is not None, reason=chromium_missing_reason() or ""),
]


@pytest.fixture
def browser():
    b = Browser()
    yield b
    b.close()


def test_demo_page_shows_a_new_inbox_item_without_reload(api, stack, browser):
    Recipient.objects.create(external_id="alice", name="Alice")
    stack.worker()
    base = start_web(stack)

    browser.navigate(f"{base}/demo/inbox/?recipient=alice")
    wait_for(lambda: browser.evaluate("!!document.body && document.body.dataset.live === '1'"), timeout=30,
             interval=0.2, message="the demo page to connect its live stream")
    assert browser.evaluate("document.querySelectorAll('#items li').length") == 0
    assert browser.evaluate("document.getElementById('unread').textContent") == "0"
    browser.evaluate("window.__sameDocument = 'yes'")  # gone if the page reloads

    response = api.post("/api/v1/notifications/in_app/",
                        {"recipient": "alice", "title": "Your parcel is here", "body": "Collect it at the desk."},
                        format="json")
    assert response.status_code == 202, response.content

    wait_for(lambda: browser.evaluate("document.querySelectorAll('#items li').length") == 1, timeout=30,
             interval=0.1, message="the item to appear on the page")
    assert browser.evaluate("document.querySelector('#items li h3').textContent") == "Your parcel is here"
    assert browser.evaluate("document.querySelector('#items li').classList.contains('unread')") is True
    assert browser.evaluate("document.getElementById('unread').textContent") == "1"
    assert browser.evaluate("window.__sameDocument") == "yes"

    # Marking it read from the page updates the item and the count, still without reload.
    browser.evaluate("document.querySelector('#items li button').click()")
    wait_for(lambda: browser.evaluate("document.getElementById('unread').textContent") == "0", timeout=30,
             interval=0.1, message="the unread count to drop")
    wait_for(lambda: not browser.evaluate("document.querySelector('#items li').classList.contains('unread')"),
             timeout=30, interval=0.1, message="the item to show as read")
    assert browser.evaluate("window.__sameDocument") == "yes"


def test_demo_page_is_not_served_without_debug_to_anonymous_users(client, settings):
    settings.DEBUG = False
    assert client.get("/demo/inbox/?recipient=alice").status_code == 404
