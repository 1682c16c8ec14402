"""The settings of Strom's heavier media work: clips, WHIP ingest, transcoding and the
quality ladder. A base of :class:`strom.settings.Settings` (one object for the operator,
its fields here only to keep each module readable)."""

from __future__ import annotations

from dataclasses import dataclass

from strom.setting_values import opt as _opt


@dataclass(frozen=True)
class MediaWorkSettings:
    # --- clips (a viewer's cut of a recording) -------------------------------------------
    clip_min_seconds: float = _opt(10.0, "shortest clip a viewer may ask for (seconds)")
    clip_max_seconds: float = _opt(60.0, "longest clip a viewer may ask for (seconds)")
    clips_per_hour: int = _opt(20, "clips one account may make per hour (a few at once)")
    clip_cuts_at_once: int = _opt(2, "clips cut at the same time (each a remux in a thread)")
    clips_max_gb: float = _opt(10.0, "delete the oldest clips beyond this many GB (0: no cap)")
    clips_keep_days: float = _opt(0.0, "delete clips older than this (0: keep forever)")
    # --- WHIP (WebRTC) ingest: OBS 30+ and browsers, docs/whip.md ---------------------------
    whip_max_offer_bytes: int = _opt(
        32 << 10, "largest SDP offer a WHIP client may POST (bytes); larger: 413"
    )
    whip_max_sessions: int = _opt(50, "WHIP publishers at once; more: 503")
    whip_max_sessions_per_address: int = _opt(
        3, "WHIP sessions from one address at once, counted before the key is checked; "
        "more: 429 (0: no limit)",
    )  # fmt: skip
    whip_connect_timeout: float = _opt(
        10.0, "seconds a WHIP client has to connect (ICE and DTLS) after its offer is answered"
    )
    whip_keyframe_interval: float = _opt(
        2.0, "seconds without a keyframe before a WHIP publisher is asked for one (RTCP PLI)"
    )
    whip_ice_addresses: str = _opt(
        "", "addresses WHIP offers for ICE, comma-separated (default: every interface's "
        "but loopback)",
    )  # fmt: skip
    whip_stun_servers: str = _opt(
        "", "STUN servers WHIP's ICE asks for this server's public address behind NAT "
        "(stun:HOST:PORT, comma-separated; default: none)",
    )  # fmt: skip
    # --- transcoding (VP8 pushes, the original desktop app's JPEG frames) -------------------
    transcode_bitrate: int = _opt(
        0, "H.264 bitrate (bit/s) when Strom encodes video itself; 0: chosen from the picture size"
    )
    transcode_queue_frames: int = _opt(
        30, "frames waiting for a stream's H.264 encoder; beyond it frames are dropped"
    )
    transcode_preset: str = _opt(
        "veryfast", "x264 preset when Strom encodes video itself (ultrafast: ~1/3 the CPU)"
    )
    transcode_max_pixels: int = _opt(
        3840 * 2160, "largest picture (width x height) Strom decodes to re-encode it"
    )
    transcode_max_streams: int = _opt(
        4, "pushed VP8 streams transcoded at once (each ~0.4 core at 720p30); more: refused"
    )
    # --- quality ladder: lower renditions for viewers on weak connections -------------------
    ladder: str = _opt(
        "off",
        "quality ladder: off; on (channels whose streamer switched it on get lower "
        "renditions); all (every channel). Each ladder costs CPU: see docs/ladder.md",
    )
    ladder_renditions: str = _opt(
        "720p,480p,360p",
        "the ladder's renditions below the source: HEIGHTp, or HEIGHTp=BITRATEk for its "
        "video bitrate (e.g. 720p=2500k,480p=1200k,360p=700k)",
    )
    ladder_preset: str = _opt("veryfast", "x264 preset of the ladder's renditions")
    ladder_max: int = _opt(
        2, "ladders encoding at once on this node (one worker process each); more: none"
    )
    ladder_queue_bytes: int = _opt(
        1 << 20,
        "source bytes waiting for a ladder's worker; beyond it the worker skips to the "
        "next keyframe (it falls behind real time)",
    )
    ladder_max_lag: float = _opt(
        1.0,
        "seconds a ladder's worker may fall behind its source; beyond it the renditions "
        "skip to the next keyframe (and the node logs it: too many ladders for its CPU)",
    )
    ladder_record: bool = _opt(False, "record the ladder's renditions too (off: the source only)")
