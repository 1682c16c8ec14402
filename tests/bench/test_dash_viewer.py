"""The bench's LL-DASH viewer reads the live MPD as Strom writes it (the last ``S`` of the
timeline is the segment being written) and records frames as their bytes arrive."""

from __future__ import annotations

from bench.dash import parse_live_mpd

MPD = """<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="dynamic" minimumUpdatePeriod="PT0.5S">
  <Period id="0" start="PT0S">
    <AdaptationSet contentType="video" segmentAlignment="true">
      <Representation id="0" codecs="avc1.64001f,mp4a.40.2" bandwidth="2600000">
        <SegmentTemplate timescale="100000" initialization="ab12/init-0.mp4"
                         media="ab12/seg$Number$.m4s" startNumber="3">
          <SegmentTimeline><S t="0" d="200000" r="2"/><S d="233400"/></SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>"""


def test_the_live_segment_is_the_last_of_the_timeline() -> None:
    mpd = parse_live_mpd(MPD)
    assert mpd.live_number == 3 + 4 - 1  # three repeated segments and the growing one
    assert mpd.segment(mpd.live_number) == "ab12/seg6.m4s"
    assert mpd.initialization == "ab12/init-0.mp4"
    assert mpd.update_period == 0.5
    assert not mpd.ended
