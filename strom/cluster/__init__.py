"""Several nodes as one site: the internal pull (an edge or relay following an upstream
hub: :mod:`.pull`, :mod:`.serve`), where to pull from (:mod:`.locate`), and the Redis live
map (who ingests each channel, every node's live channels and viewers) with node roles
(:mod:`.live_map`)."""

from strom.cluster.live_map import LiveMap, ViewersOnly, edge_refusal
from strom.cluster.records import LiveEntry, NodeRecord

__all__ = ["LiveEntry", "LiveMap", "NodeRecord", "ViewersOnly", "edge_refusal"]
