"""Text that ends up in a mail header: no control characters.

Python's email package (and other mail software) breaks header lines not only
at CR and LF but at every character ``str.splitlines()`` splits on: U+000B,
U+000C, U+001C..U+001E, U+0085, U+2028 and U+2029. One of them in a subject or
an address ends the header line early and starts a raw new line, which is a
header injection. The other C0 and C1 controls (and DEL) are not allowed in a
header either (RFC 5322). ``UNSAFE`` matches all of them: Unicode category Cc
(U+0000..U+001F, U+007F..U+009F, tab included) plus U+2028 and U+2029.
"""
from __future__ import annotations

import re

UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_UNSAFE_RUN = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")

# The message of a 400 under the field (the single, batch and express endpoints share it).
MESSAGE = "Control characters (line breaks, tabs and the like) are not allowed."


def unsafe_char(text: str) -> str | None:
    """The first control character in ``text`` as ``U+XXXX``, or None when there is none."""
    match = UNSAFE.search(text)
    return f"U+{ord(match.group()):04X}" if match else None


def one_line(text: str) -> str:
    """``text`` with every run of control characters (and the whitespace around it) as one space, trimmed.

    Linear in the text (no backtracking regular expression: a rendered subject can be long)."""
    if not UNSAFE.search(text):
        return text.strip()
    return " ".join(part for part in (piece.strip() for piece in _UNSAFE_RUN.split(text)) if part)
