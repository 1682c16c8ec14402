"""``strom stream``: Strom's own streaming client (capture, encode, publish over RTMP)."""

from strom.client.app import main, stream
from strom.client.config import ClientConfig, ClientError, add_arguments, config_from_args
from strom.client.gui import main as gui_main

__all__ = [
    "ClientConfig",
    "ClientError",
    "add_arguments",
    "config_from_args",
    "gui_main",
    "main",
    "stream",
]
