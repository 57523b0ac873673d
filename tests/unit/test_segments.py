"""SMS segment counting (GSM-7 vs UCS-2)."""
import pytest

from notifier.segments import sms_encoding, sms_segments


@pytest.mark.parametrize("text, encoding, segments", [
    ("a" * 160, "GSM-7", 1),
    ("a" * 161, "GSM-7", 2),
    ("a" * 306, "GSM-7", 2),
    ("a" * 307, "GSM-7", 3),
    ("€" * 80, "GSM-7", 1),  # two septets each
    ("€" * 81, "GSM-7", 2),
    ("ж" * 70, "UCS-2", 1),
    ("ж" * 71, "UCS-2", 2),
    ("😀" * 35, "UCS-2", 1),  # two UTF-16 units each
    ("😀" * 36, "UCS-2", 2),
    ("", "GSM-7", 1),
])
def test_it_counts_segments_as_carriers_bill_them(text, encoding, segments):
    assert sms_encoding(text) == encoding
    assert sms_segments(text) == segments
