from notifier.pii import mask_address, mask_email, mask_phone, scrub_data, scrub_text


def test_email_keeps_first_letter_and_domain():
    assert mask_email("alice@example.com") == "a***@example.com"


def test_phone_keeps_country_prefix_and_last_two_digits():
    assert mask_phone("+12025550123") == "+1********23"


def test_scrub_text_masks_every_address_and_number():
    text = "sent to bob.smith@example.org and +447911123456 ok"
    scrubbed = scrub_text(text)
    assert "bob.smith@example.org" not in scrubbed and "+447911123456" not in scrubbed
    assert "b***@example.org" in scrubbed


def test_scrub_data_walks_nested_structures():
    data = {"a": ["x carol@example.net"], "b": {"c": "+33612345678"}, "n": 3}
    out = scrub_data(data)
    assert "carol@example.net" not in str(out) and "+33612345678" not in str(out)
    assert out["n"] == 3


def test_mask_address_by_channel():
    assert mask_address("sms", "+12025550123").endswith("23")
    assert mask_address("push", "abcdefghijklmnop") == "abcd…mnop"
