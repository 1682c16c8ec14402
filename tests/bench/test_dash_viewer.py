"""The bench's LL-DASH viewer reads the live MPD as Strom writes it (the last ``S`` of the
timeline is the segment being written) and records frames as their bytes arrive."""

from __future__ import annotations

from bench.dash import parse_live_mpd

MPD = """<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="dynamic" minimumUpdatePeriod="PT0.5S">
  <Period id="0" start="PT0S">
    <AdaptationSet contentType="video" segmentAlignment="true">
      <Representation id="1" codecs="avc1.64001f" bandwidth="2600000">
        <SegmentTemplate timescale="100000" initialization="ab12/t$RepresentationID$-init-0.mp4"
                         media="ab12/t$RepresentationID$-seg$Number$.m4s" startNumber="3">
          <SegmentTimeline><S t="0" d="200000" r="2"/><S d="233400"/></SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
    <AdaptationSet contentType="audio" segmentAlignment="true">
      <Representation id="2" codecs="mp4a.40.2" bandwidth="128000">
        <SegmentTemplate timescale="100000" initialization="ab12/t$RepresentationID$-init-0.mp4"
                         media="ab12/t$RepresentationID$-seg$Number$.m4s" startNumber="3">
          <SegmentTimeline><S t="0" d="200000" r="2"/><S d="233400"/></SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>"""


def test_the_live_segment_is_the_last_of_the_timeline() -> None:
    mpd = parse_live_mpd(MPD)
    assert mpd.live_number == 3 + 4 - 1  # three repeated segments and the growing one
    assert mpd.representations == ("1", "2")
    assert mpd.segment("1", mpd.live_number) == "ab12/t1-seg6.m4s"
    assert mpd.init("2") == "ab12/t2-init-0.mp4"
    assert mpd.update_period == 0.5
    assert not mpd.ended
