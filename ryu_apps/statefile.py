"""Keep the binding cache across controller restarts (a JSON file, replaced atomically).

A restarted home agent reloads the entries, so its first reconcile finds the switch
already right and sends nothing: traffic never stops. Times are stored as wall-clock
expiry and turned back into the monotonic clock on load; expired bindings are dropped.
"""

from __future__ import annotations

import ipaddress
import json
import os
import tempfile
from typing import Any, Callable, Dict, List, Optional, Tuple

from .background import paced
from .bindings import CareOfBinding, RouterBinding
from .flowmodel import address_text

FORMAT = 1
PAUSE_EVERY = 16  # entries encoded between two pauses of a background save
PAUSE_EVERY_ITEMS = 512  # replay timestamps / group ids between two pauses


def _entry_to_json(entry: RouterBinding, now: float, wall: float) -> Dict[str, Any]:
    return {
        "router": entry.router, "home_address": address_text(entry.home_address),
        "prefixes": [str(p) for p in entry.prefixes], "explicit": entry.explicit,
        "mobile_router": entry.mobile_router, "downlink_key": entry.downlink_key,
        "last_sequence": entry.last_sequence,
        "care_of": [{"bid": b.bid, "care_of": address_text(b.care_of), "priority": b.priority,
                     "sequence": b.sequence, "registered": wall - (now - b.registered_at),
                     "expires": wall + (b.expires_at - now)} for b in entry.care_of],
    }


def _entry_from_json(raw: Dict[str, Any], now: float, wall: float) -> Optional[RouterBinding]:
    bindings = []
    for item in raw["care_of"]:
        expires_at = now + (float(item["expires"]) - wall)
        if expires_at <= now:
            continue
        bindings.append(CareOfBinding(int(item["bid"]), ipaddress.ip_address(item["care_of"]),
                                      int(item["priority"]), int(item["sequence"]),
                                      now - (wall - float(item["registered"])), expires_at))
    if not bindings:
        return None
    return RouterBinding(raw["router"], ipaddress.IPv6Address(raw["home_address"]),
                         tuple(ipaddress.IPv6Network(p) for p in raw["prefixes"]),
                         bool(raw["explicit"]), bool(raw["mobile_router"]),
                         int(raw["downlink_key"]), int(raw["last_sequence"]),
                         tuple(bindings))


def save(path: str, entries: List[RouterBinding], timestamps: Dict[str, int],
         next_hop_mac: Optional[str], now: float, wall: float,
         group_ids: Optional[Dict[str, int]] = None,
         pause: Optional[Callable[[], None]] = None,
         sync: Callable[[int], None] = os.fsync) -> None:
    """Write the state atomically (a crash leaves the old or the new file, never half).

    Entries are encoded a few at a time with ``pause`` called in between: the app
    writes in the background on its event thread, and lets Binding Updates through at
    each pause (see background.py). ``sync`` flushes the file to disk (the app hands
    that blocking call to a real thread).
    """
    head = json.dumps({"format": FORMAT, "saved": wall, "next_hop_mac": next_hop_mac})
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".ha-state-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(head[:-1] + ', "timestamps": ')
            _write_mapping(handle, timestamps, pause)
            handle.write(', "group_ids": ')
            _write_mapping(handle, group_ids or {}, pause)
            handle.write(', "entries": [')
            for i, entry in enumerate(paced(entries, PAUSE_EVERY, pause)):
                handle.write(("," if i else "") + json.dumps(_entry_to_json(entry, now, wall)))
            handle.write("]}")
            handle.flush()
            sync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _write_mapping(handle: Any, mapping: Dict[str, int],
                   pause: Optional[Callable[[], None]]) -> None:
    """A JSON object, a few hundred items at a time (one per MR: 10,000 at once took
    ~10 ms without a pause)."""
    items = list(mapping.items())
    handle.write("{")
    for start in range(0, len(items), PAUSE_EVERY_ITEMS):
        if start:
            handle.write(", ")
            if pause is not None:
                pause()
        handle.write(json.dumps(dict(items[start:start + PAUSE_EVERY_ITEMS]))[1:-1])
    handle.write("}")


def load_group_ids(path: str) -> Dict[str, int]:
    """The group id of each MR as last allocated (empty if unknown)."""
    try:
        with open(path, encoding="utf-8") as handle:
            raw = json.load(handle).get("group_ids", {})
        return {str(name): int(gid) for name, gid in raw.items()}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def load(path: str, now: float, wall: float
         ) -> Tuple[List[RouterBinding], Dict[str, int], Optional[str]]:
    """Entries still alive, replay timestamps and the resolved next-hop MAC.

    A missing file is an empty state; a damaged one raises ValueError naming the file.
    """
    if not os.path.exists(path):
        return [], {}, None
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        if data.get("format") != FORMAT:
            raise ValueError(f"unknown format {data.get('format')!r}")
        entries = [e for e in (_entry_from_json(raw, now, wall) for raw in data["entries"])
                   if e is not None]
        timestamps = {str(k): int(v) for k, v in data.get("timestamps", {}).items()}
        return entries, timestamps, data.get("next_hop_mac")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: cannot load the home agent state: {exc}") from None
