"""notifier.headers: what may not go into a mail header, and making a subject one line."""
import pytest

from notifier.headers import UNSAFE, one_line, unsafe_char

# Every character Python's email package (str.splitlines) breaks a header line at, besides CR and LF.
LINE_BREAKS = ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


@pytest.mark.parametrize("char", ["\r", "\n", "\t", "\x00", "\x01", "\x1f", "\x7f", "\x80", "\x9f", *LINE_BREAKS])
def test_every_control_character_and_unicode_line_break_is_unsafe_in_a_header(char):
    assert UNSAFE.search(f"Hello{char}world")
    assert unsafe_char(f"Hello{char}world") == f"U+{ord(char):04X}"
    assert one_line(f" Hello {char}\r\n {char}world{char}") == "Hello world"


@pytest.mark.parametrize("text", ["Your receipt", "Olá, Ana ☃ 😀", "a  b", "\u00a0nbsp\u00a0", "x" * 998])
def test_ordinary_text_is_safe_and_one_line_keeps_it(text):
    assert unsafe_char(text) is None
    assert one_line(text) == text.strip()


def test_every_splitlines_break_is_covered():
    breaks = {chr(c) for c in range(0x110000) if len(f"a{chr(c)}b".splitlines()) > 1}
    assert all(UNSAFE.search(c) for c in breaks)
