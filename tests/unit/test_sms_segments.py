"""SMS segment counting (pure)."""
from notifier.sms import sms_info


def test_160_gsm_characters_are_one_segment_and_161_are_two():
    assert sms_info("a" * 160).as_dict() == {"encoding": "GSM-7", "characters": 160, "segments": 1}
    assert sms_info("a" * 161).segments == 2
    assert sms_info("a" * 306).segments == 2
    assert sms_info("a" * 307).segments == 3


def test_extension_characters_take_two_septets():
    info = sms_info("€" * 80)
    assert (info.encoding, info.characters, info.segments) == ("GSM-7", 160, 1)
    assert sms_info("€" * 81).segments == 2


def test_an_extension_character_is_not_split_across_segments():
    # 152 septets then '€' (2 septets) does not fit in the first 153-septet segment.
    info = sms_info("a" * 152 + "€" + "a" * 10)
    assert info.characters == 164
    assert info.segments == 2
    assert sms_info("a" * 152 + "€" + "a" * 152).segments == 3


def test_non_gsm_text_is_ucs2_with_70_and_67_per_segment():
    assert sms_info("ç" * 70).as_dict() == {"encoding": "UCS-2", "characters": 70, "segments": 1}
    assert sms_info("ç" * 71).segments == 2
    assert sms_info("ç" * 134).segments == 2
    assert sms_info("ç" * 135).segments == 3


def test_one_non_gsm_character_switches_the_whole_message_to_ucs2():
    assert sms_info("Olà, ÄÖÑÜ " + "a" * 100).encoding == "GSM-7"
    assert sms_info("Olá, " + "a" * 100).encoding == "UCS-2"  # á is not in the GSM-7 alphabet
    info = sms_info("Your code is 1234 ✅")
    assert info.encoding == "UCS-2"
    assert info.segments == 1


def test_emoji_count_as_two_utf16_units_and_are_never_split():
    info = sms_info("😀" * 35)
    assert (info.encoding, info.characters, info.segments) == ("UCS-2", 70, 1)
    assert sms_info("a" + "😀" * 34).segments == 1  # 69 units fit one segment
    # 134 units would be 2 segments of 67, but the pair after 66 units moves to the next segment.
    assert sms_info("a" * 66 + "😀" + "a" * 66).segments == 3


def test_empty_text_is_no_segment():
    assert sms_info("").segments == 0
