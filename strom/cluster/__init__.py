"""Several nodes, one site: the Redis live map (who ingests each channel, every node's
live channels and viewers) and node roles (:mod:`.live_map`)."""

from strom.cluster.live_map import LiveEntry, LiveMap, NodeRecord, ViewersOnly, edge_refusal

__all__ = ["LiveEntry", "LiveMap", "NodeRecord", "ViewersOnly", "edge_refusal"]
