"""JSON log lines: valid JSON, structured fields on top, personal data masked."""
import json
import logging

from notifier.context import reset_request_id, set_request_id
from notifier.logs import JsonFormatter, RequestIdFilter


def _format(record_msg, *args, extra=None, exc_info=None):
    logger = logging.getLogger("notifier.test")
    record = logger.makeRecord("notifier.test", logging.INFO, __file__, 1, record_msg, args, exc_info, extra=extra)
    RequestIdFilter().filter(record)
    return JsonFormatter().format(record)


def test_it_writes_one_json_object_with_extra_fields_on_top():
    line = _format("notification %s", "sent", extra={"notification_id": "0193-abc", "channel": "email",
                                                     "priority": "high", "attempt": 2, "provider": "smtp"})
    entry = json.loads(line)
    assert "\n" not in line
    assert entry["message"] == "notification sent"
    assert entry["level"] == "info"
    assert entry["logger"] == "notifier.test"
    assert (entry["notification_id"], entry["channel"], entry["priority"], entry["attempt"], entry["provider"]) == (
        "0193-abc", "email", "high", 2, "smtp")


def test_it_masks_addresses_in_the_message_and_in_fields():
    line = _format("could not send to alice@example.com or +12025550123",
                   extra={"to": "alice@example.com", "data": {"phone": "+12025550123"}})
    assert "alice@example.com" not in line
    assert "+12025550123" not in line
    entry = json.loads(line)
    assert entry["to"] == "a***@example.com"
    assert "a***@example.com" in entry["message"]


def test_it_masks_addresses_in_tracebacks():
    try:
        raise ValueError("bad address bob@example.org")
    except ValueError:
        import sys

        line = _format("failed", exc_info=sys.exc_info())
    entry = json.loads(line)
    assert "bob@example.org" not in line
    assert "ValueError" in entry["exc_info"]


def test_it_carries_the_request_id_of_the_current_context():
    token = set_request_id("req-42")
    try:
        entry = json.loads(_format("hello"))
    finally:
        reset_request_id(token)
    assert entry["request_id"] == "req-42"
    assert "request_id" not in json.loads(_format("outside any request"))
