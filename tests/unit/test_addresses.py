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


@pytest.mark.parametrize("address", ADDRESSES)
def test_a_domain_seen_before_gets_the_same_answer(address):
    def verdict():
        try:
            validate_email(address)
        except ValidationError as exc:
            return exc.messages
        return "valid"

    first, second = verdict(), verdict()  # the second from the remembered domain
    assert first == second


def test_the_remembered_domains_are_bounded(monkeypatch):
    from notifier.addresses import CompiledEmailValidator

    monkeypatch.setattr(CompiledEmailValidator, "_known_domains", {})
    monkeypatch.setattr(CompiledEmailValidator, "MAX_KNOWN_DOMAINS", 3)
    for i in range(10):
        validate_email(f"a@host{i}.example.com")
    assert len(CompiledEmailValidator._known_domains) == 3
    with pytest.raises(ValidationError):
        validate_email("a@-bad.example.com")  # still checked when not remembered
