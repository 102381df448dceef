"""The reference vectors (copied from the project's protocol digest) and their addresses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Optional, Tuple

HA = "2001:db8:ffff::1"
HOA = "2001:db8:ffff::100"
COA1 = "2001:db8:a::100"
COA2 = "2001:db8:b::100"
MNP = "2001:db8:1000::/48"
COA4 = "192.0.2.10"
HA4 = "198.51.100.1"
TV7_KEY = bytes(range(20))
TV7_SPI = 0x100

_PATH = Path(__file__).parent / "data" / "reference_vectors.json"


def reference_vectors() -> Dict[str, Tuple[bytes, Optional[bytes]]]:
    """``{"TV1": (mh, packet or None), ...}`` keyed by the short vector name."""
    raw = json.loads(_PATH.read_text())
    out = {}
    for name, entry in raw.items():
        packet = bytes.fromhex(entry["packet"]) if entry["packet"] else None
        out[name.split()[0]] = (bytes.fromhex(entry["mh"]), packet)
    return out
