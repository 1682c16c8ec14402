"""Time and memory per input byte, for inputs built to cost as much as possible: length
fields that claim gigabytes, references that multiply, counts with nothing behind them.

Memory is the ``tracemalloc`` peak while the input is fed (allocations by Python code, so
a buffer sized from a length field shows up at once); time is CPU time with a bound far
above normal (a quadratic or exponential parser misses it by orders of magnitude, a busy
machine does not).
"""

from __future__ import annotations

import struct
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from strom.errors import AmfError, LimitExceeded, ProtocolError
from strom.media.amf import decode_amf0, decode_amf3
from strom.media.containers import FlvStreamDemuxer
from strom.media.containers.mp4 import Mp4Demuxer
from strom.media.containers.mpegts import TsDemuxer
from strom.media.containers.webm import WebmDemuxer
from strom.media.rtmp import ChunkReader, RtmpServerSession
from tests.fuzz import seeds

#: Bytes of memory a parser may hold per byte it was fed, plus a constant.
MEMORY_PER_BYTE = 4
MEMORY_SLACK = 1 << 20
#: CPU seconds per byte fed (100 KB/s: slower than any parser here by 10x), plus a constant.
SECONDS_PER_BYTE = 10e-6
SECONDS_SLACK = 1.0


def _feed_all(feed: Callable[[bytes], object], chunks: list[bytes]) -> ProtocolError | None:
    try:
        for chunk in chunks:
            feed(chunk)
    except ProtocolError as exc:
        return exc
    return None


def bounded(feed: Callable[[bytes], object], chunks: list[bytes]) -> ProtocolError | None:
    """Feed ``chunks``; assert the memory and time bounds; return the protocol error, if
    any (anything else fails the test)."""
    fed = sum(len(c) for c in chunks)
    start = time.process_time()
    error = _feed_all(feed, chunks)
    seconds = time.process_time() - start
    assert seconds <= SECONDS_SLACK + SECONDS_PER_BYTE * fed, f"{seconds:.2f} s for {fed} bytes"
    return error


def peak_memory(make: Callable[[], Callable[[bytes], object]], chunks: list[bytes]) -> int:
    """The ``tracemalloc`` peak while a fresh parser from ``make`` is fed ``chunks``."""
    tracemalloc.start()
    try:
        feed = make()
        tracemalloc.reset_peak()
        _feed_all(feed, chunks)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def assert_memory(make: Callable[[], Callable[[bytes], object]], chunks: list[bytes]) -> None:
    fed = sum(len(c) for c in chunks)
    peak = peak_memory(make, chunks)
    assert peak <= MEMORY_SLACK + MEMORY_PER_BYTE * fed, f"{peak} bytes held for {fed} fed"


def trickle(head: bytes, total: int, step: int = 4096) -> list[bytes]:
    """``head``, then ``total`` zero bytes in ``step``-sized pieces: a slow sender."""
    return [head] + [bytes(step)] * (total // step)


# -- length fields that claim more than will ever come ---------------------------------------


def _rtmp_reader() -> Callable[[bytes], object]:
    # The largest message the RTMP format can describe (24-bit length): a server that
    # allows it must still hold only what has arrived.
    return ChunkReader(max_message_size=1 << 24, max_pending_bytes=1 << 24).receive_data


def test_rtmp_message_of_16_mib_is_held_as_it_arrives() -> None:
    # Type-0 header on csid 3: a 16 MiB - 1 video message (within the 16 MiB limit).
    head = bytes((3,)) + bytes(3) + (0xFFFFFF).to_bytes(3, "big") + b"\x09" + bytes(4)
    chunks = trickle(head, 256 * 1024, step=128 + 1)  # one chunk of 128 + its header
    assert_memory(_rtmp_reader, chunks)
    assert bounded(_rtmp_reader(), chunks) is None


def test_rtmp_message_longer_than_the_limit_is_refused_at_its_header() -> None:
    reader = ChunkReader(max_message_size=1 << 20)
    head = bytes((3,)) + bytes(3) + (2 << 20).to_bytes(3, "big") + b"\x09" + bytes(4)
    assert isinstance(bounded(reader.receive_data, [head]), LimitExceeded)


def test_rtmp_session_handshake_then_huge_messages_on_many_chunk_streams() -> None:
    """A session that claims 16 MiB on each of 64 chunk streams holds only what it got:
    before a publish is accepted such a message is refused at its header."""
    capture = seeds.rtmp_captures()[0][: seeds.RTMP_HANDSHAKE_BYTES]
    heads = b"".join(
        # 2-byte basic header (fmt 0, csid 64..127), a 16 MiB - 1 video message, one chunk
        bytes((0, csid - 64)) + bytes(3) + (0xFFFFFF).to_bytes(3, "big") + b"\x09" + bytes(4)
        + bytes(128)
        for csid in range(64, 128)
    )  # fmt: skip
    chunks = [capture, heads]

    def make() -> Callable[[bytes], object]:
        return RtmpServerSession(random_bytes=seeds.zeros).receive_data

    assert_memory(make, chunks)
    assert isinstance(bounded(make(), chunks), LimitExceeded)


def test_flv_tag_size_beyond_the_limit_is_refused_at_its_header() -> None:
    tag = bytes((9,)) + (0xFFFFFF).to_bytes(3, "big") + bytes(7)
    demuxer = FlvStreamDemuxer(max_size=1 << 20)
    assert isinstance(bounded(demuxer.feed, [seeds.FLV_HEADER + tag]), LimitExceeded)


def test_flv_tag_trickled_is_held_as_it_arrives() -> None:
    tag = bytes((9,)) + (8 << 20).to_bytes(3, "big") + bytes(7)
    chunks = trickle(seeds.FLV_HEADER + tag, 512 * 1024)
    assert_memory(lambda: FlvStreamDemuxer().feed, chunks)


_EBML_HEADER = bytes.fromhex("1a45dfa3 8e 4282 84 7765626d 4285 81 02 ec 81 00".replace(" ", ""))
_SEGMENT = bytes.fromhex("18538067 01ffffffffffffff".replace(" ", ""))  # unknown size


def test_ebml_element_claiming_petabytes_is_skipped_as_it_streams() -> None:
    """A Void element of 2^56 - 2 bytes inside the Segment: discarded, never held."""
    void = bytes.fromhex("ec 01fffffffffffffe".replace(" ", ""))
    chunks = trickle(_EBML_HEADER + _SEGMENT + void, 1 << 20)
    assert_memory(lambda: WebmDemuxer().feed, chunks)
    assert bounded(WebmDemuxer().feed, chunks) is None


def test_ebml_block_claiming_more_than_the_limit_is_refused_at_its_header() -> None:
    cluster = bytes.fromhex("1f43b675 01ffffffffffffff".replace(" ", ""))
    block = bytes.fromhex("a3 01000000ffffffff".replace(" ", ""))  # a 4 GiB SimpleBlock
    error = bounded(WebmDemuxer().feed, [_EBML_HEADER + _SEGMENT + cluster + block])
    assert isinstance(error, LimitExceeded)


def _mp4_head() -> bytes:
    """ffmpeg's fragmented MP4 up to its first moof (ftyp + moov)."""
    data = (seeds.FUZZ_DATA / "ffmpeg_h264_aac.mp4").read_bytes()
    pos = 0
    while data[pos + 4 : pos + 8] != b"moof":
        pos += int.from_bytes(data[pos : pos + 4], "big")
    return data[:pos]


def _box(kind: bytes, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def test_mp4_moov_claiming_4_gib_is_refused_at_its_header() -> None:
    head = struct.pack(">I4sQ", 1, b"moov", 1 << 32)  # 64-bit size
    assert isinstance(bounded(Mp4Demuxer().feed, [head]), LimitExceeded)


def test_mp4_skipped_box_of_4_gib_streams_past() -> None:
    head = _mp4_head() + struct.pack(">I4sQ", 1, b"free", 1 << 32)
    chunks = trickle(head, 1 << 20)
    assert_memory(lambda: Mp4Demuxer().feed, chunks)
    assert bounded(Mp4Demuxer().feed, chunks) is None


def test_mp4_trun_counts_cost_bytes() -> None:
    """8 bytes of trun may not describe a loop of 20,000 empty samples, again and again:
    2,000 of them (32 KB) used to take minutes of CPU."""
    tfhd = _box(b"tfhd", struct.pack(">III", 0x020010, 1, 0))  # default sample size 0
    trun = _box(b"trun", struct.pack(">II", 0, 20_000))
    moof = _box(b"moof", _box(b"traf", tfhd, trun * 2000))
    assert bounded(Mp4Demuxer().feed, [_mp4_head(), moof]) is None


def test_mp4_trun_sample_count_beyond_the_limit_is_refused() -> None:
    tfhd = _box(b"tfhd", struct.pack(">III", 0x020010, 1, 100))  # default sample size 100
    trun = _box(b"trun", struct.pack(">II", 0, 0xFFFFFFFF))
    moof = _box(b"moof", _box(b"traf", tfhd, trun))
    assert isinstance(bounded(Mp4Demuxer().feed, [_mp4_head(), moof]), LimitExceeded)


def test_mpegts_unbounded_pes_is_refused_at_the_limit() -> None:
    """A video PES of unbounded length that never ends: held up to the PES limit only."""
    data = (seeds.FUZZ_DATA / "ffmpeg_h264_aac.ts").read_bytes()[: 188 * 3]  # PAT, PMT, ...
    pid = 0x100
    start = bytes((0x47, 0x40 | pid >> 8, pid & 0xFF, 0x10)) + b"\x00\x00\x01\xe0\x00\x00"
    more = bytes((0x47, pid >> 8, pid & 0xFF, 0x10))
    packets = [start + bytes(188 - len(start))]
    packets += [bytes(more[:3]) + bytes((0x10 | i % 16,)) + bytes(184) for i in range(1, 12_000)]
    chunks = [data, *packets]
    assert_memory(lambda: TsDemuxer(max_pes_size=1 << 20).feed, chunks)
    error = bounded(TsDemuxer(max_pes_size=1 << 20).feed, chunks)
    assert isinstance(error, LimitExceeded)


# -- counts and references -----------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"\x0a\xff\xff\xff\xff",  # AMF0 strict array of 4 billion items
        b"\x0c\xff\xff\xff\xff",  # AMF0 long string of 4 GiB
        b"\x11\x09\xff\xff\xff\xff\x01",  # AMF3 array (AVM+ switch) of 2^28 items
        b"\x11\x0c\xff\xff\xff\xff",  # AMF3 ByteArray of 256 MiB
    ],
)
def test_amf_counts_must_fit_the_message(data: bytes) -> None:
    assert isinstance(bounded(decode_amf0, [data]), AmfError)
    assert peak_memory(lambda: decode_amf0, [data]) < MEMORY_SLACK


def _amf0_doubling(levels: int) -> bytes:
    """A strict array holding ``{}``, then ``levels`` arrays each referring twice to the
    previous value: 11 bytes a level, 2**levels objects when written out in full."""
    parts = [b"\x0a" + struct.pack(">I", levels + 1), b"\x03\x00\x00\x09"]
    for i in range(levels):
        ref = b"\x07" + struct.pack(">H", i + 1)
        parts.append(b"\x0a" + struct.pack(">I", 2) + ref + ref)
    return b"".join(parts)


def test_amf0_references_cannot_multiply() -> None:
    """340 bytes used to decode to a value whose str() is 12 GB (a connect's ``app``)."""
    assert decode_amf0(_amf0_doubling(4))  # a few shared objects are fine
    data = _amf0_doubling(30)
    assert isinstance(bounded(decode_amf0, [data]), AmfError)


def test_amf0_references_cannot_nest_deeper_than_the_limit() -> None:
    """Each array refers to the previous one: 32 levels through references."""
    parts = [b"\x0a" + struct.pack(">I", 41), b"\x03\x00\x00\x09"]
    parts += [b"\x0a\x00\x00\x00\x01\x07" + struct.pack(">H", i + 1) for i in range(40)]
    with pytest.raises(AmfError, match="deeper"):
        decode_amf0(b"".join(parts))


def _u29(n: int) -> bytes:
    """AMF3 1.3.1 U29, for values below 2**21."""
    if n < 0x80:
        return bytes((n,))
    if n < 0x4000:
        return bytes((0x80 | n >> 7, n & 0x7F))
    return bytes((0x80 | n >> 14, 0x80 | n >> 7 & 0x7F, n & 0x7F))


def test_amf3_string_references_cannot_multiply() -> None:
    """An array of one 1 KiB string and 60,000 one-byte references to it."""
    text = b"\x06" + _u29(1024 << 1 | 1) + b"x" * 1024
    data = b"\x09" + _u29(60_001 << 1 | 1) + b"\x01" + text + b"\x06\x00" * 60_000
    assert isinstance(bounded(decode_amf3, [data]), AmfError)
    few = b"\x09" + _u29(4 << 1 | 1) + b"\x01" + text + b"\x06\x00" * 3
    assert decode_amf3(few) == [["x" * 1024] * 4]


def test_golden_captures_parse_in_linear_time() -> None:
    """The bound above, for real input: each capture in one lump and byte by byte."""
    for name, data in seeds.containers().items():
        demuxer: Callable[[bytes], object]
        if name.endswith((".webm", ".mkv")):
            demuxer = WebmDemuxer().feed
        elif name.endswith(".mp4"):
            demuxer = Mp4Demuxer().feed
        elif name.endswith(".ts"):
            demuxer = TsDemuxer().feed
        else:
            demuxer = FlvStreamDemuxer().feed
        assert bounded(demuxer, [data[i : i + 1] for i in range(len(data))]) is None, name
    assert Path(seeds.FUZZ_DATA).is_dir()
