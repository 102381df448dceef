"""Sequence-number arithmetic modulo 2**16 (RFC 6275 section 9.5.1)."""

from __future__ import annotations

SEQUENCE_MODULUS = 1 << 16
_HALF = SEQUENCE_MODULUS // 2


def seq_add(seq: int, step: int = 1) -> int:
    """``seq + step`` on the 16-bit circle."""
    return (seq + step) % SEQUENCE_MODULUS


def seq_is_newer(new: int, last: int) -> bool:
    """True when ``new`` comes after ``last``.

    A value is stale when it equals ``last`` or is one of the 32,767 values before it;
    so ``new`` is fresh when ``(new - last) mod 2**16`` lies in 1..32768. (UMIP treats a
    difference of exactly 32768 as stale; the RFC's example does not, and neither do we.)
    """
    return 1 <= (new - last) % SEQUENCE_MODULUS <= _HALF
