"""Shared test helpers, imported by tests as a normal package (``from tests.helpers
import make_media``); conftest files only declare fixtures built from them.

- :mod:`tests.helpers.media`: real ffmpeg media and running real tools.
- :mod:`tests.helpers.servers`: settings for a test node, and a migrated template
  database so a node starts without running the migrations again.
- :mod:`tests.helpers.chat`: a chat client speaking the documented protocol, people.
- :mod:`tests.helpers.store`: opening stores on the configured databases, dumps.
- :mod:`tests.helpers.nodes`: real ``strom serve`` processes on loopback (started, logged,
  stopped, killed, restarted on the same ports and data dir).
- :mod:`tests.helpers.cluster`: several nodes as one site: the test Redis and a key prefix
  per test, a PostgreSQL database per test.
"""

from tests.helpers.media import MediaFile, make_media, need_tool, publish_args, run_process
from tests.helpers.servers import CHANNEL, STREAM_KEY, make_settings

__all__ = [
    "CHANNEL",
    "STREAM_KEY",
    "MediaFile",
    "make_media",
    "make_settings",
    "need_tool",
    "publish_args",
    "run_process",
]
