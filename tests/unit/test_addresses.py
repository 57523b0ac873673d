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


@pytest.mark.parametrize("number", ["+12025550123", "+447911123456", "+33612345678", "+4915112345678",
                                    "+8613800138000", "+5511987654321", "+919876543210"])
def test_a_valid_number_written_in_e164_is_accepted(number):
    from notifier.addresses import is_e164

    assert is_e164(number)


@pytest.mark.parametrize("number", [
    "+12",                  # the shape of E.164, but a country code and no subscriber number
    "+1202555012",          # one digit short of a North American number
    "+120255501234",        # one digit too many
    "+15550000001",         # 555 is no area code
    "+999123456789",        # no such country code
    "+9991234567890",
    "+1 2025550123",        # spaces: nothing is normalised
    "+1-202-555-0123",
    "12025550123",          # no +
    "+12025550123\n",       # a trailing newline ($ of the old regular expression let it through)
    " +12025550123",
    "+4407911123456",       # the national prefix 0 kept after the country code
    "+１２０２５５５０１２３",  # full-width digits: phonenumbers would read them, E.164 has none
    "",
    None,
    12025550123,
])
def test_a_number_that_is_not_a_valid_e164_number_is_refused(number):
    from notifier.addresses import is_e164

    assert not is_e164(number)
