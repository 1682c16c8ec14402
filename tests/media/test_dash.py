"""The MPEG-DASH manifest text (strom.media.dash): well-formed MPDs whose times, numbers
and low-latency attributes are what ISO/IEC 23009-1 and the DASH-IF low-latency
guidelines ask for."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace

from strom.media.dash import (
    Alternative,
    Content,
    LiveTiming,
    Period,
    Segment,
    live_mpd,
    static_mpd,
)
from strom.media.dash.mpd import NAMESPACE, iso_duration, iso_time

NS = {"d": NAMESPACE}
TS = 100_000  # 10 µs ticks
AV = [
    Content("1", "avc1.64001f", width=1280, height=720),
    Content("2", "mp4a.40.2", sample_rate=48000),
]
EPOCH = 1_796_644_800.0  # 2026-12-07T12:00:00Z


def period(pid: str, start: int, media_start: int, *segs: tuple[int, int, int]) -> Period:
    return Period(
        id=pid,
        start=start,
        media_start=media_start,
        initialization="k3f9/t$RepresentationID$-init-0.mp4",
        media="k3f9/t$RepresentationID$-seg$Number$.m4s",
        segments=[Segment(*s) for s in segs],
    )


def timing(**changes: object) -> LiveTiming:
    base: dict[str, object] = {
        "availability_start": EPOCH,
        "publish_time": EPOCH + 7.25,
        "minimum_update_period": 0.5,
        "time_shift_buffer": 6.0,
        "target_latency": 1.0,
        "availability_time_offset": 1.967,
        "time_url": "https://watch.example.org/live/time",
    }
    base.update(changes)
    return LiveTiming(**base)  # type: ignore[arg-type]


def parse(text: str) -> ET.Element:
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    return ET.fromstring(text)


def test_a_live_mpd_is_dynamic_low_latency_and_names_the_server_clock() -> None:
    mpd = parse(
        live_mpd(timing(), AV, [period("0", 0, 0, (0, 0, 200_000), (1, 200_000, 200_000))], TS)
    )
    assert mpd.tag == f"{{{NAMESPACE}}}MPD"
    assert mpd.get("type") == "dynamic"
    assert mpd.get("availabilityStartTime") == "2026-12-07T12:00:00.000Z"
    assert mpd.get("publishTime") == "2026-12-07T12:00:07.250Z"
    assert mpd.get("minimumUpdatePeriod") == "PT0.5S"
    assert mpd.get("timeShiftBufferDepth") == "PT6S"
    assert mpd.get("mediaPresentationDuration") is None
    assert "http://www.dashif.org/guidelines/low-latency-live-v5" in mpd.get("profiles", "")
    latency = mpd.find("d:ServiceDescription/d:Latency", NS)
    assert latency is not None
    assert latency.get("target") == "1000"
    timing_el = mpd.find("d:UTCTiming", NS)
    assert timing_el is not None
    assert timing_el.get("schemeIdUri") == "urn:mpeg:dash:utc:http-iso:2014"
    assert timing_el.get("value") == "https://watch.example.org/live/time"
    # 23009-1 order: ServiceDescription, Period..., UTCTiming
    assert [c.tag.split("}")[1] for c in mpd] == ["ServiceDescription", "Period", "UTCTiming"]


def test_each_track_is_an_adaptation_set_of_one_representation() -> None:
    mpd = parse(live_mpd(timing(), AV, [period("0", 0, 0, (0, 0, 200_000))], TS))
    sets = mpd.findall("d:Period/d:AdaptationSet", NS)
    assert [(a.get("id"), a.get("contentType"), a.get("mimeType")) for a in sets] == [
        ("0", "video", "video/mp4"),
        ("1", "audio", "audio/mp4"),
    ]
    (video,) = sets[0].findall("d:Representation", NS)
    assert (video.get("id"), video.get("codecs")) == ("1", "avc1.64001f")
    assert (video.get("width"), video.get("height")) == ("1280", "720")
    (audio,) = sets[1].findall("d:Representation", NS)
    assert (audio.get("id"), audio.get("codecs")) == ("2", "mp4a.40.2")
    assert audio.get("audioSamplingRate") == "48000"
    assert audio.get("width") is None
    audio_only = [Content("2", "opus", sample_rate=48000)]
    mpd = parse(live_mpd(timing(), audio_only, [period("0", 0, 0, (0, 0, 200_000))], TS))
    (adaptation,) = mpd.findall("d:Period/d:AdaptationSet", NS)
    assert adaptation.get("mimeType") == "audio/mp4"


def test_a_ladders_renditions_are_more_representations_of_the_video() -> None:
    rendition = Alternative(
        Content("alice~480p", "avc1.42c01e", width=854, height=480, bandwidth=1_200_000),
        initialization="../alice~480p/b7c1/t1-init-0.mp4",
        media="../alice~480p/b7c1/t1-seg$Number$.m4s",
        segments=[Segment(4, 213_300, 200_000), Segment(5, 413_300, 200_000)],
    )
    source = period("0", 0, 0, (10, 0, 200_000), (11, 200_000, 200_000), (12, 400_000, 200_000))
    with_ladder = replace(source, alternatives=[rendition])
    mpd = parse(live_mpd(timing(), AV, [with_ladder], TS))
    video, audio = mpd.findall("d:Period/d:AdaptationSet", NS)
    # The audio stays the source's alone; the video set has the source and the rendition.
    assert [r.get("id") for r in audio.findall("d:Representation", NS)] == ["2"]
    source_el, rung = video.findall("d:Representation", NS)
    assert source_el.get("id") == "1"
    assert (rung.get("id"), rung.get("codecs"), rung.get("height")) == (
        "alice~480p", "avc1.42c01e", "480",
    )  # fmt: skip
    assert rung.get("bandwidth") == "1200000"
    # Its own files and numbers, on the Period's media clock.
    template = rung.find("d:SegmentTemplate", NS)
    assert template is not None
    assert template.get("media") == "../alice~480p/b7c1/t1-seg$Number$.m4s"
    assert template.get("initialization") == "../alice~480p/b7c1/t1-init-0.mp4"
    assert (template.get("startNumber"), template.get("presentationTimeOffset")) == ("4", "0")
    assert template.get("availabilityTimeComplete") == "false"
    assert [(s.get("t"), s.get("d"), s.get("r")) for s in template.findall(".//d:S", NS)] == [
        ("213300", "200000", "1")
    ]
    source_template = source_el.find("d:SegmentTemplate", NS)
    assert source_template is not None
    assert source_template.get("startNumber") == "10"
    # Their n-th segments are not the same stretch of time: not claimed aligned.
    assert video.get("segmentAlignment") == "false"
    assert audio.get("segmentAlignment") == "true"


def test_segments_start_with_a_keyframe_unless_a_long_gop_was_split() -> None:
    whole = period("0", 0, 0, (0, 0, 200_000))
    mpd = parse(live_mpd(timing(), AV, [whole], TS))
    adaptation = mpd.find("d:Period/d:AdaptationSet", NS)
    assert adaptation is not None
    assert adaptation.get("startWithSAP") == "1"
    split = Period("0", 0, 0, "i.mp4", "$Number$.m4s", [Segment(0, 0, 1_000_000)], False)
    adaptation = parse(live_mpd(timing(), AV, [split], TS)).find(".//d:AdaptationSet", NS)
    assert adaptation is not None
    assert adaptation.get("startWithSAP") is None


def test_the_template_says_segments_come_early_and_chunked() -> None:
    mpd = parse(live_mpd(timing(), AV, [period("3", 0, 4_500, (3, 4_500, 200_000))], TS))
    template = mpd.find("d:Period/d:AdaptationSet/d:Representation/d:SegmentTemplate", NS)
    assert template is not None
    assert template.attrib == {
        "timescale": "100000",
        "presentationTimeOffset": "4500",
        "initialization": "k3f9/t$RepresentationID$-init-0.mp4",
        "media": "k3f9/t$RepresentationID$-seg$Number$.m4s",
        "startNumber": "3",
        "availabilityTimeOffset": "1.967",
        "availabilityTimeComplete": "false",
    }


def test_the_timeline_states_every_duration_compactly() -> None:
    segs = [(5, 1000, 200_000), (6, 201_000, 200_000), (7, 401_000, 200_000), (8, 601_000, 150_000)]
    mpd = parse(live_mpd(timing(), AV, [period("5", 0, 1000, *segs)], TS))
    s = mpd.findall("d:Period/d:AdaptationSet[1]//d:SegmentTimeline/d:S", NS)
    assert [x.attrib for x in s] == [
        {"t": "1000", "d": "200000", "r": "2"},
        {"d": "150000"},
    ]
    # A gap in the media times restates @t.
    segs = [(5, 0, 200_000), (6, 250_000, 200_000)]
    s = parse(live_mpd(timing(), AV, [period("5", 0, 0, *segs)], TS)).findall(".//d:S", NS)
    assert [x.get("t") for x in s] == ["0", "250000"] * 2  # the same timeline for each track


def test_each_timeline_run_is_a_period_placed_on_the_wall_clock() -> None:
    first = period("0", 0, 0, (0, 0, 200_000), (1, 200_000, 200_000))
    # The publisher came back 3 s later with its clock at zero again.
    second = period("2", 700_000, 0, (2, 0, 200_000))
    mpd = parse(live_mpd(timing(), AV, [first, second], TS))
    periods = mpd.findall("d:Period", NS)
    assert [(p.get("id"), p.get("start")) for p in periods] == [("0", "PT0S"), ("2", "PT7S")]
    prt = periods[1].find(".//d:ProducerReferenceTime", NS)
    assert prt is not None
    assert prt.get("wallClockTime") == iso_time(EPOCH + 7)
    assert prt.get("presentationTime") == "0"


def test_an_ended_live_mpd_stops_updates_and_says_how_long_it_was() -> None:
    mpd = parse(live_mpd(timing(ended_duration=4.0), AV, [period("0", 0, 0, (0, 0, 400_000))], TS))
    assert mpd.get("minimumUpdatePeriod") is None
    assert mpd.get("mediaPresentationDuration") == "PT4S"


def test_a_static_mpd_lists_a_recording() -> None:
    first = period("1", 0, 3_000, (1, 3_000, 200_000), (2, 203_000, 100_000))
    second = Period(
        "7", first.end, 0, "init-2.mp4", "segments/$Number$.m4s", [Segment(7, 0, 50_000)]
    )
    mpd = parse(static_mpd(AV, [first, second], TS))
    assert mpd.get("type") == "static"
    assert mpd.get("availabilityStartTime") is None
    assert mpd.get("mediaPresentationDuration") == "PT3.5S"
    assert [p.get("start") for p in mpd.findall("d:Period", NS)] == ["PT0S", "PT3S"]
    template = mpd.find(".//d:SegmentTemplate", NS)
    assert template is not None
    assert "availabilityTimeOffset" not in template.attrib


def test_text_forms() -> None:
    assert iso_duration(0) == "PT0S"
    assert iso_duration(2.5) == "PT2.5S"
    assert iso_duration(1.0004) == "PT1S"
    assert iso_time(EPOCH + 0.1234) == "2026-12-07T12:00:00.123Z"
