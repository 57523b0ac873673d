"""SMS segment counting: GSM-7 (160 / 153 septets per segment) or UCS-2 (70 / 67 code units)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Characters of the extension table take two septets (escape + character).
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67


@dataclass(frozen=True)
class SmsInfo:
    encoding: str  # "GSM-7" or "UCS-2"
    characters: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int

    def as_dict(self) -> dict:
        return asdict(self)


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def _units(text: str, gsm: bool) -> list[int]:
    if gsm:
        return [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    # UTF-16 code units: characters outside the BMP are a surrogate pair that is never split.
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def _count_segments(units: list[int], per_segment: int) -> int:
    segments, used = 1, 0
    for size in units:
        if used + size > per_segment:
            segments += 1
            used = 0
        used += size
    return segments


def sms_info(text: str) -> SmsInfo:
    """Encoding, length and number of segments a carrier bills for ``text``."""
    gsm = is_gsm7(text)
    units = _units(text, gsm)
    total = sum(units)
    single, multi = (GSM7_SINGLE, GSM7_MULTI) if gsm else (UCS2_SINGLE, UCS2_MULTI)
    if total == 0:
        segments = 0
    elif total <= single:
        segments = 1
    else:
        segments = _count_segments(units, multi)
    return SmsInfo(encoding="GSM-7" if gsm else "UCS-2", characters=total, segments=segments)
