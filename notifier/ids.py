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
