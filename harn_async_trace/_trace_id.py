"""Trace ids: ``trace_`` + a UUIDv7, deterministic under a mock clock."""

from __future__ import annotations

import hashlib
import os
import uuid

from .clock import Clock, MockClock

__all__ = ("fresh_id_base", "new_trace_id", "trace_id_from_hex", "trace_id_hex")


def _uuid7(unix_ms: int, rand: bytes) -> uuid.UUID:
    # RFC 9562: 48-bit ms timestamp, version 7, 74 random bits, variant 10.
    value = (unix_ms & 0xFFFF_FFFF_FFFF) << 80
    value |= int.from_bytes(rand[:10], "big") & ((1 << 80) - 1)
    value = (value & ~(0xF << 76)) | (0x7 << 76)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    return uuid.UUID(int=value)


def new_trace_id(clock: Clock) -> str:
    """A new ``trace_<uuid7>``; under a :class:`MockClock` it depends only on the clock.

    Example:
        >>> new_trace_id(MockClock()) == new_trace_id(MockClock())
        True
    """
    if isinstance(clock, MockClock):
        seq = clock.next_trace_seq()
        wall_ms = clock.now_wall_ms()
        rand = hashlib.blake2b(f"{wall_ms}:{seq}".encode(), digest_size=10).digest()
        return "trace_" + str(_uuid7(wall_ms, rand))
    return "trace_" + str(_uuid7(clock.wall_ns() // 1_000_000, os.urandom(10)))


def trace_id_hex(trace_id: str) -> str:
    """The 32-hex form of a trace id (W3C ``traceparent``), e.g. for OTel export.

    Example:
        >>> len(trace_id_hex(new_trace_id(MockClock())))
        32
    """
    raw = trace_id.removeprefix("trace_")
    try:
        return uuid.UUID(raw).hex
    except ValueError:
        # Foreign ids: hash to a stable 128-bit value rather than fail an export.
        return hashlib.blake2b(trace_id.encode(), digest_size=16).hexdigest()


def trace_id_from_hex(trace_hex: str) -> str:
    """Our form (``trace_<uuid>``) of a 32-hex W3C/OTel trace id; ``trace_id_hex`` maps it back.

    How a trace continued from elsewhere (a ``traceparent``, a foreign OTel
    span) is named in the harn trace.

    Example:
        >>> trace_id_from_hex("0af7651916cd43dd8448eb211c80319c")
        'trace_0af76519-16cd-43dd-8448-eb211c80319c'
        >>> trace_id_hex(trace_id_from_hex("0af7651916cd43dd8448eb211c80319c"))
        '0af7651916cd43dd8448eb211c80319c'
    """
    return "trace_" + str(uuid.UUID(hex=trace_hex))


def fresh_id_base(seed: str, clock: Clock) -> int:
    """A random 62-bit first span id for a collector joining a trace other processes share.

    Harn ids count from 1 in every process and the OTel span id is a hash of
    (trace id, harn id), so two processes in one trace must not both count
    from 1. Under a :class:`MockClock` it comes from ``seed`` and the clock
    instead, so replays are stable.

    Example:
        >>> seed = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        >>> 0 < fresh_id_base(seed, MockClock()) < 2**62
        True
        >>> fresh_id_base(seed, MockClock()) == fresh_id_base(seed, MockClock())
        True
    """
    if isinstance(clock, MockClock):
        mixed = f"{seed}:{clock.now_wall_ms()}:{clock.next_trace_seq()}".encode()
        raw = hashlib.blake2b(mixed, digest_size=8).digest()
    else:
        raw = os.urandom(8)
    return (int.from_bytes(raw, "big") >> 2) | 1
