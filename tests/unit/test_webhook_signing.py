"""Standard Webhooks signatures and the SSRF guard (pure, no network beyond local name resolution)."""
import base64
import hashlib
import hmac

import pytest

from notifier.channels.webhook import classify_status, secret_generate, sign, verify
from notifier.netguard import UnsafeURL, address_allowed, validate_url


def test_it_signs_like_the_standard_webhooks_reference_vector():
    # Reference example of the Standard Webhooks specification.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    signature = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signature_is_hmac_sha256_of_id_timestamp_and_body_with_the_decoded_secret():
    secret = secret_generate()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    expected = base64.b64encode(hmac.new(base64.b64decode(secret[6:]), b"abc.1700000000.{}", hashlib.sha256)
                                .digest()).decode()
    assert sign(secret, "abc", 1700000000, b"{}") == f"v1,{expected}"


def test_verify_rejects_a_changed_body_another_secret_and_an_old_timestamp():
    secret = secret_generate()
    headers = {"webhook-id": "m1", "webhook-timestamp": "1700000000",
               "webhook-signature": sign(secret, "m1", 1700000000, b"{}")}
    assert verify(secret, headers, b"{}", now=lambda: 1700000010)
    assert not verify(secret, headers, b"{ }", now=lambda: 1700000010)
    assert not verify(secret_generate(), headers, b"{}", now=lambda: 1700000010)
    assert not verify(secret, headers, b"{}", now=lambda: 1700001000)


@pytest.mark.parametrize("status,permanent", [(500, False), (503, False), (429, False), (408, False),
                                              (400, True), (404, True), (410, True), (301, True)])
def test_it_retries_5xx_and_429_but_not_other_answers(status, permanent):
    assert classify_status(status, "").permanent is permanent


def test_2xx_is_success():
    assert classify_status(204, "No Content") is None


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
                                     "100.64.0.1", "0.0.0.0", "::1", "fe80::1", "fd00::1", "::ffff:127.0.0.1",
                                     "224.0.0.1"])
def test_it_refuses_non_public_addresses(address):
    assert not address_allowed(address)


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"])
def test_it_allows_public_addresses(address):
    assert address_allowed(address)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/hook", "http://localhost/hook", "http://[::1]/x",
                                 "http://169.254.169.254/latest/meta-data/", "http://10.0.0.5/"])
def test_urls_resolving_to_private_addresses_are_refused(url):
    with pytest.raises(UnsafeURL, match="non-public"):
        validate_url(url, allow_private=False)


def test_private_urls_pass_when_allowed_and_other_schemes_never():
    validate_url("http://127.0.0.1:8080/hook", allow_private=True)
    with pytest.raises(UnsafeURL, match="http"):
        validate_url("ftp://127.0.0.1/x", allow_private=True)
    with pytest.raises(UnsafeURL, match="Credentials"):
        validate_url("http://user:pw@127.0.0.1/x", allow_private=True)
