"""Time-ordered UUIDs (version 7, RFC 9562).

Notification ids sort by creation time, which keeps the primary-key index
append-mostly under bulk inserts and lets cursor pagination order by id.
"""
from __future__ import annotations

import os
import time
import uuid


def uuid7() -> uuid.UUID:
    ms = time.time_ns() // 1_000_000
    raw = bytearray(os.urandom(16))
    raw[0:6] = ms.to_bytes(6, "big")
    raw[6] = 0x70 | (raw[6] & 0x0F)
    raw[8] = 0x80 | (raw[8] & 0x3F)
    return uuid.UUID(bytes=bytes(raw))


def uuid7_many(count: int) -> list[uuid.UUID]:
    """``count`` version-7 UUIDs for the same millisecond, with one ``urandom`` call for all of them."""
    ms = time.time_ns() // 1_000_000
    rand = os.urandom(10 * count)
    head = (ms << 80) | (0x7 << 76)
    out = []
    for offset in range(0, 10 * count, 10):
        r = int.from_bytes(rand[offset:offset + 10], "big")  # 80 random bits: 12 for rand_a, 62 for rand_b
        out.append(uuid.UUID(int=head | ((r >> 68) << 64) | (0b10 << 62) | (r & 0x3FFF_FFFF_FFFF_FFFF)))
    return out


def uuid7_millisecond_range(value: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID]:
    """The lowest and highest version-7 UUIDs of ``value``'s millisecond: every id of a
    ``uuid7_many`` call lies between them."""
    ms = value.int >> 80
    return uuid.UUID(int=ms << 80), uuid.UUID(int=((ms + 1) << 80) - 1)


def uuid7_before(seconds: float) -> uuid.UUID:
    """A UUID below every version-7 UUID made at or after ``seconds`` (a Unix time)."""
    return uuid.UUID(int=int(seconds * 1000) << 80)
