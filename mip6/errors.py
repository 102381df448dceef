"""The one exception type the codec raises for bytes it cannot decode."""

from __future__ import annotations

from typing import Any, Optional


class DecodeError(ValueError):
    """Bytes that are not a well-formed Mobility Header (or signalling packet).

    ``what`` says what is wrong and ``offset`` where (octets from the first octet of
    the Mobility Header, or of the packet for :func:`mip6.packet.decode_packet`).
    ``status`` is the Binding Acknowledgement status an RFC assigns to this defect,
    when one does (e.g. 164 MCOA MALFORMED for a Binding Identifier option with a bad
    length). ``partial`` is the message as far as it was decoded (fixed fields and the
    options before the defect), so a home agent can still answer with a sequence number.
    """

    def __init__(self, what: str, offset: int = 0, status: Optional[int] = None,
                 partial: Any = None) -> None:
        super().__init__(f"{what} (at octet {offset})")
        self.what = what
        self.offset = offset
        self.status = status
        self.partial = partial
