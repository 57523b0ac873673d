import pytest
from django.core.exceptions import ValidationError
from django.core.validators import validate_email as django_validate_email

from notifier.addresses import validate_email

ADDRESSES = ["a@example.com", "first.last+tag@sub.example.co.uk", "x@[127.0.0.1]", "user@localhost",
             "no-at-sign", "a@b", "a@-example.com", "\"quoted\"@example.com", "a@exa_mple.com", "",
             "a" * 65 + "@example.com", "a@" + "b" * 64 + ".com", "ünï@example.com", "a@xn--ls8h.la"]


@pytest.mark.parametrize("address", ADDRESSES)
def test_compiled_email_validator_answers_like_djangos(address):
    def verdict(validate):
        try:
            validate(address)
        except ValidationError as exc:
            return exc.messages
        return "valid"

    assert verdict(validate_email) == verdict(django_validate_email)
