"""Bit-level readers and writers, Annex-B NAL splitting and RBSP escaping (BPG, HEVC, VVC).

All readers raise CorruptStreamError instead of reading past the end, so a truncated or
random input can never index out of bounds or loop.
"""

from __future__ import annotations

from shared.codecs.errors import CorruptStreamError

#: libbpg refuses ue7 values above this so that size computations cannot overflow.
UE7_MAX = (1 << 30) - 1


def read_ue7(data: bytes, pos: int, what: str) -> tuple[int, int]:
    """Read a big-endian 7-bit-group varint (0x80 = continue); shortest form only."""
    end = len(data)
    if pos >= end:
        raise CorruptStreamError(f"truncated BPG header: missing {what}")
    first = data[pos]
    if first == 0x80:
        raise CorruptStreamError(f"non-canonical ue7 encoding of {what}")
    value = first & 0x7F
    pos += 1
    if first & 0x80:
        for _ in range(4):
            if pos >= end:
                raise CorruptStreamError(f"truncated BPG header: incomplete {what}")
            byte = data[pos]
            pos += 1
            value = (value << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
        else:
            raise CorruptStreamError(f"ue7 {what} is longer than 5 bytes")
    if value > UE7_MAX:
        raise CorruptStreamError(f"{what} = {value} exceeds the format limit {UE7_MAX}")
    return value, pos


def write_ue7(value: int) -> bytes:
    if not 0 <= value <= UE7_MAX:
        raise ValueError(f"ue7 value out of range: {value}")
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


class BitReader:
    """MSB-first bit reader over a byte string (RBSP, i.e. emulation prevention removed)."""

    __slots__ = ("_bits", "_nbits", "pos", "what")

    def __init__(self, data: bytes, what: str = "bitstream") -> None:
        self._bits = int.from_bytes(data, "big")
        self._nbits = 8 * len(data)
        self.pos = 0
        self.what = what

    def u(self, n: int) -> int:
        if n == 0:
            return 0
        if self.pos + n > self._nbits:
            raise CorruptStreamError(f"truncated {self.what}")
        shift = self._nbits - self.pos - n
        self.pos += n
        return (self._bits >> shift) & ((1 << n) - 1)

    def flag(self) -> bool:
        return bool(self.u(1))

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise CorruptStreamError(f"invalid Exp-Golomb code in {self.what}")
        return (1 << zeros) - 1 + self.u(zeros)


class BitWriter:
    """MSB-first bit writer."""

    __slots__ = ("_n", "_v")

    def __init__(self) -> None:
        self._v = 0
        self._n = 0

    def u(self, n: int, value: int) -> None:
        if value < 0 or value >> n:
            raise ValueError(f"value {value} does not fit in {n} bits")
        self._v = (self._v << n) | value
        self._n += n

    def flag(self, value: bool) -> None:
        self.u(1, int(bool(value)))

    @property
    def nbits(self) -> int:
        return self._n

    def ue(self, value: int) -> None:
        code = value + 1
        length = code.bit_length()
        self.u(2 * length - 1, code)

    def align_zero(self) -> bytes:
        """Pad with zero bits to a byte boundary (BPG's compact SPS)."""
        pad = (-self._n) % 8
        return (self._v << pad).to_bytes((self._n + pad) // 8, "big")

    def rbsp_trailing(self) -> bytes:
        """rbsp_stop_one_bit then zero bits to a byte boundary (H.265 7.3.2.11)."""
        self.u(1, 1)
        return self.align_zero()


def escape_rbsp(rbsp: bytes) -> bytes:
    """Insert emulation-prevention bytes (00 00 0x → 00 00 03 0x for x ≤ 3)."""
    if b"\x00\x00" not in rbsp:
        return rbsp
    out = bytearray()
    zeros = 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def unescape_rbsp(ebsp: bytes) -> bytes:
    """Remove emulation-prevention bytes."""
    if b"\x00\x00\x03" not in ebsp:
        return ebsp
    out = bytearray()
    i = 0
    n = len(ebsp)
    while i < n:
        j = ebsp.find(b"\x00\x00\x03", i)
        if j < 0:
            out += ebsp[i:]
            break
        out += ebsp[i : j + 2]
        i = j + 3
    return bytes(out)


def split_annexb(stream: bytes) -> list[tuple[int, int]]:
    """Return (payload_start, end) of each NAL in an Annex-B stream; start codes excluded.

    A trailing zero byte before a 4-byte start code belongs to the start code.
    """
    spans: list[tuple[int, int]] = []
    i = stream.find(b"\x00\x00\x01")
    if i < 0:
        return spans
    start = i + 3
    while True:
        j = stream.find(b"\x00\x00\x01", start)
        if j < 0:
            spans.append((start, len(stream)))
            return spans
        end = j - 1 if stream[j - 1] == 0 and j - 1 >= start else j
        spans.append((start, end))
        start = j + 3
