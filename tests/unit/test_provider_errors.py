"""Which provider answers are permanent, transient, or mean the address is dead (pure)."""
import json

import pytest

from notifier.addresses import canonical_address, push_platform, web_push_endpoint
from notifier.channels.base import retry_after_seconds
from notifier.channels.push import _stringify, classify_fcm_response, classify_webpush_status
from notifier.channels.sms import classify_twilio_error


@pytest.mark.parametrize("status,code,permanent,suppress", [
    (400, 21211, True, "invalid_number"),
    (400, 21614, True, "invalid_number"),
    (400, 21610, True, "carrier_opt_out"),
    (400, 21602, True, ""),
    (401, 20003, True, ""),
    (429, 20429, False, ""),
    (500, 20500, False, ""),
    (503, None, False, ""),
])
def test_twilio_errors(status, code, permanent, suppress):
    error = classify_twilio_error(status, code, "x")
    assert (error.permanent, error.suppress) == (permanent, suppress)


def _fcm_body(status, error_code=None):
    details = [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": error_code}] \
        if error_code else []
    return {"error": {"code": status, "message": "m", "status": "S", "details": details}}


@pytest.mark.parametrize("status,error_code,permanent,suppress", [
    (404, "UNREGISTERED", True, "unregistered_device"),
    (404, None, True, "unregistered_device"),
    (403, "SENDER_ID_MISMATCH", True, "unregistered_device"),
    (400, "INVALID_ARGUMENT", True, ""),
    (401, "THIRD_PARTY_AUTH_ERROR", False, ""),
    (429, "QUOTA_EXCEEDED", False, ""),
    (500, "INTERNAL", False, ""),
    (503, "UNAVAILABLE", False, ""),
])
def test_fcm_errors(status, error_code, permanent, suppress):
    error = classify_fcm_response(status, _fcm_body(status, error_code))
    assert (error.permanent, error.suppress) == (permanent, suppress)


@pytest.mark.parametrize("status,permanent,suppress", [
    (404, True, "unregistered_device"), (410, True, "unregistered_device"), (413, True, ""),
    (400, True, ""), (429, False, ""), (500, False, ""), (502, False, ""),
])
def test_web_push_errors(status, permanent, suppress):
    error = classify_webpush_status(status, "x")
    assert (error.permanent, error.suppress) == (permanent, suppress)


def test_fcm_data_values_are_strings():
    assert _stringify({"a": 1, "b": "x", "c": {"d": [1, 2]}, "e": None, "f": False}) == {
        "a": "1", "b": "x", "c": '{"d":[1,2]}', "e": "null", "f": "false"}


def test_retry_after_takes_seconds_or_an_http_date():
    assert retry_after_seconds({"Retry-After": "12"}) == 12.0
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after_seconds({"Retry-After": "soon"}) is None
    assert retry_after_seconds({}) is None


def test_addresses_are_canonical_across_spellings():
    subscription = json.dumps({"endpoint": "https://push.example.com/abc", "keys": {"p256dh": "p", "auth": "a"}})
    assert canonical_address("email", " Alice@Example.COM ") == "alice@example.com"
    assert canonical_address("push", subscription) == "https://push.example.com/abc"
    assert canonical_address("push", "fcm-token") == "fcm-token"
    assert canonical_address("sms", "+12025550123") == "+12025550123"
    assert web_push_endpoint("{not json") is None
    assert push_platform(subscription) == "web"
    assert push_platform("fcm-token") == "android"
    assert push_platform("fcm-token", "ios") == "ios"
