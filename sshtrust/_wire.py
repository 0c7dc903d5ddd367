"""The little of the SSH wire format (RFC 4251 §5) that ``cryptography`` does not expose: the
type label at the head of a key blob, and the framing of a certificate's trailing fields."""

from __future__ import annotations

import struct


class WireError(ValueError):
    """Malformed SSH binary data (truncated, trailing bytes, bad length)."""


def string(data: bytes) -> bytes:
    """Encode an SSH ``string`` (uint32 length + bytes)."""
    return struct.pack(">I", len(data)) + data


def read_string(data: bytes, pos: int, what: str) -> tuple[bytes, int]:
    """The ``string`` at ``pos`` and the position after it; bounds checked."""
    if pos + 4 > len(data):
        raise WireError(f"{what}: truncated at byte {pos}")
    (n,) = struct.unpack_from(">I", data, pos)
    end = pos + 4 + n
    if end > len(data):
        raise WireError(f"{what}: truncated at byte {pos} (wanted {n} more)")
    return bytes(data[pos + 4 : end]), end


def blob_type(blob: bytes, what: str = "key") -> str:
    """The algorithm name a key or certificate blob starts with."""
    raw, _ = read_string(blob, 0, what)
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise WireError(f"{what}: type name is not ASCII") from exc
