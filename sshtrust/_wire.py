"""SSH wire-format reader (RFC 4251 §5): just what certificates, keys and KRLs need."""

from __future__ import annotations

import struct


class WireError(ValueError):
    """Malformed SSH binary data (truncated, trailing bytes, bad length)."""


class Reader:
    """Sequential reader over an SSH binary blob; every read checks bounds."""

    def __init__(self, data: bytes, what: str = "blob") -> None:
        self.data = bytes(data)
        self.pos = 0
        self.what = what

    def _take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise WireError(f"{self.what}: truncated at byte {self.pos} (wanted {n} more)")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def byte(self) -> int:
        return self._take(1)[0]

    def uint32(self) -> int:
        return struct.unpack(">I", self._take(4))[0]

    def uint64(self) -> int:
        return struct.unpack(">Q", self._take(8))[0]

    def string(self) -> bytes:
        return self._take(self.uint32())

    def text(self) -> str:
        raw = self.string()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise WireError(f"{self.what}: string at byte {self.pos} is not UTF-8") from exc

    def mpint(self) -> int:
        raw = self.string()
        return int.from_bytes(raw, "big", signed=True) if raw else 0

    def rest(self) -> bytes:
        return self._take(len(self.data) - self.pos)

    @property
    def at_end(self) -> bool:
        return self.pos == len(self.data)

    def expect_end(self) -> None:
        if not self.at_end:
            raise WireError(f"{self.what}: {len(self.data) - self.pos} trailing bytes")


def string(data: bytes) -> bytes:
    """Encode an SSH ``string`` (uint32 length + bytes)."""
    return struct.pack(">I", len(data)) + data
