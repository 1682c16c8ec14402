"""Strom's own benchmark: test media, a real-time RTMP publisher, an asyncio load
generator (WebSocket fMP4, LL-HLS, RTMP play), a /proc sampler, scenarios and reports.

Run ``python -m bench --help``. Nothing here is imported by the server.
"""
