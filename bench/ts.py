"""Just enough MPEG-2 TS (ISO/IEC 13818-1) to date an HLS segment: the decode times of the
video access units in it (PAT -> PMT -> the H.264 elementary stream -> PES headers)."""

from __future__ import annotations

PACKET = 188
SYNC = 0x47
STREAM_TYPE_H264 = 0x1B


class TsError(ValueError):
    """Not the transport stream expected."""


def _pes_time(b: bytes, pos: int) -> int:
    """A 33-bit PTS/DTS in its 5-byte PES encoding (2.4.3.7)."""
    return (
        ((b[pos] >> 1) & 0x07) << 30
        | b[pos + 1] << 22
        | (b[pos + 2] >> 1) << 15
        | b[pos + 3] << 7
        | b[pos + 4] >> 1
    )


def video_decode_times(data: bytes) -> list[int]:
    """DTS (or PTS when no DTS is given) of every video PES start, in 90 kHz units."""
    if len(data) % PACKET:
        data = data[: len(data) - len(data) % PACKET]
    pmt_pid: int | None = None
    video_pid: int | None = None
    times: list[int] = []
    for pos in range(0, len(data), PACKET):
        if data[pos] != SYNC:
            raise TsError(f"lost sync at byte {pos}")
        pid = (data[pos + 1] & 0x1F) << 8 | data[pos + 2]
        start = bool(data[pos + 1] & 0x40)
        afc = (data[pos + 3] >> 4) & 0x3
        p = pos + 4
        if afc & 0x2:
            p += 1 + data[p]
        if not afc & 0x1 or p >= pos + PACKET or not start:
            continue
        if pid == 0:
            pmt_pid = _pat_pmt_pid(data, p + 1 + data[p])
        elif pid == pmt_pid:
            video_pid = _pmt_video_pid(data, p + 1 + data[p], pos + PACKET)
        elif pid == video_pid and data[p : p + 3] == b"\x00\x00\x01":
            flags = data[p + 7] >> 6
            if flags == 3:
                times.append(_pes_time(data, p + 14))
            elif flags == 2:
                times.append(_pes_time(data, p + 9))
    return times


def _pat_pmt_pid(b: bytes, p: int) -> int:
    # 2.4.4.3: table_id, section_length, ts_id, version, numbers; then program loops
    section_length = (b[p + 1] & 0x0F) << 8 | b[p + 2]
    end = p + 3 + section_length - 4
    q = p + 8
    while q + 4 <= end:
        program = b[q] << 8 | b[q + 1]
        pid = (b[q + 2] & 0x1F) << 8 | b[q + 3]
        if program != 0:
            return pid
        q += 4
    raise TsError("PAT without a program")


def _pmt_video_pid(b: bytes, p: int, limit: int) -> int | None:
    # 2.4.4.8: ... PCR_PID, program_info_length, then elementary stream loops
    section_length = (b[p + 1] & 0x0F) << 8 | b[p + 2]
    end = min(p + 3 + section_length - 4, limit)
    info_len = (b[p + 10] & 0x0F) << 8 | b[p + 11]
    q = p + 12 + info_len
    while q + 5 <= end:
        stream_type = b[q]
        pid = (b[q + 1] & 0x1F) << 8 | b[q + 2]
        if stream_type == STREAM_TYPE_H264:
            return pid
        q += 5 + ((b[q + 3] & 0x0F) << 8 | b[q + 4])
    return None
