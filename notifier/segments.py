"""How many SMS segments a text needs (GSM 03.38 7-bit or UCS-2), as carriers bill them."""
from __future__ import annotations

GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENDED = frozenset("^{}\\[~]|€\f")  # each takes two septets (escape + char)


def sms_encoding(text: str) -> str:
    """``"GSM-7"`` when every character fits the GSM alphabet, else ``"UCS-2"``."""
    return "GSM-7" if all(c in GSM_BASIC or c in GSM_EXTENDED for c in text) else "UCS-2"


def sms_segments(text: str) -> int:
    """Segments needed: GSM-7 160 septets alone or 153 per part; UCS-2 70 units alone or 67 per part."""
    if not text:
        return 1
    if sms_encoding(text) == "GSM-7":
        units = sum(2 if c in GSM_EXTENDED else 1 for c in text)
        single, part = 160, 153
    else:
        # UTF-16 code units: characters outside the BMP (emoji) take two.
        units = sum(2 if ord(c) > 0xFFFF else 1 for c in text)
        single, part = 70, 67
    if units <= single:
        return 1
    return -(-units // part)
