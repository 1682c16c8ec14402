"""The quality ladder: lower renditions of a live channel, encoded in worker processes."""

from strom.ladder.assemble import ladder_recording, start_ladder
from strom.ladder.service import Ladder, LadderLimits, LadderService

__all__ = ["Ladder", "LadderLimits", "LadderService", "ladder_recording", "start_ladder"]
