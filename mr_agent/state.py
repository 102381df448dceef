"""What the MR agent keeps across restarts: a stable BID per care-of address and the
sequence counter (so a restarted agent neither renumbers its bindings nor reuses
sequence numbers the home agent has seen). A small JSON file, replaced atomically.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import Dict, Optional

MAX_BID = 0xFFFF


@dataclass
class AgentState:
    bids: Dict[str, int] = field(default_factory=dict)  # "uplink/care-of" -> BID
    next_sequence: int = 0

    def bid_for(self, uplink: str, care_of: str) -> int:
        """The BID of a care-of address: the one it had before, else the lowest free one."""
        key = f"{uplink}/{care_of}"
        if key not in self.bids:
            used = set(self.bids.values())
            self.bids[key] = next(b for b in range(1, MAX_BID + 1) if b not in used)
        return self.bids[key]


def load(path: Optional[str]) -> AgentState:
    """The saved state; a missing file (or no path) is a fresh state."""
    if not path or not os.path.exists(path):
        return AgentState()
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        return AgentState({str(k): int(v) for k, v in data["bids"].items()},
                          int(data["next_sequence"]) % 65536)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path}: cannot load the MR agent state: {exc}") from None


def save(path: Optional[str], state: AgentState) -> None:
    if not path:
        return
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".mr-state-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"bids": state.bids, "next_sequence": state.next_sequence}, handle)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
