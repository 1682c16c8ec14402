"""The multi-user site around the hub: who may publish where (:mod:`.keys`), the
broadcasts table kept in step with the channels' live state (:mod:`.broadcasts`), and what
the directory and channel pages show (:mod:`.directory`)."""

from strom.channels.broadcasts import Broadcasts, load_or_create_node_id
from strom.channels.directory import Directory, NoOtherNodes, OtherNodes, RemoteStream
from strom.channels.keys import ChannelNameClash, StreamKeys

__all__ = [
    "Broadcasts",
    "ChannelNameClash",
    "Directory",
    "NoOtherNodes",
    "OtherNodes",
    "RemoteStream",
    "StreamKeys",
    "load_or_create_node_id",
]
