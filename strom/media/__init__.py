"""Pure protocol and container code: bytes in, events or bytes out. No asyncio, no sockets."""
