"""NTP-format timestamps of the RFC 4285 replay protection option."""

from __future__ import annotations

#: Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01).
NTP_UNIX_OFFSET = 2_208_988_800


def ntp_from_unix(seconds: float) -> int:
    """64-bit NTP timestamp (32-bit seconds, 32-bit fraction) for a Unix time."""
    whole = int(seconds)
    fraction = int((seconds - whole) * (1 << 32)) & 0xFFFFFFFF
    return (((whole + NTP_UNIX_OFFSET) & 0xFFFFFFFF) << 32) | fraction


def unix_from_ntp(timestamp: int) -> float:
    """Unix time of a 64-bit NTP timestamp (era 0, i.e. before 2036)."""
    return (timestamp >> 32) - NTP_UNIX_OFFSET + (timestamp & 0xFFFFFFFF) / (1 << 32)
